// The session (refresh token) cookie: HttpOnly, SameSite=Lax, Path=/, and Secure with the __Host- prefix
// when PUBLIC_URL is https (RFC 6265bis section 4.1.3.2).
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Config } from '../config.js';

export function sessionCookieName(config: Pick<Config, 'secureCookies'>): string {
  return config.secureCookies ? '__Host-gw_session' : 'gw_session';
}

export function readSessionCookie(request: FastifyRequest, config: Pick<Config, 'secureCookies'>): string | undefined {
  const v = request.cookies[sessionCookieName(config)];
  return v ? v : undefined;
}

export function setSessionCookie(reply: FastifyReply, config: Pick<Config, 'secureCookies'>, token: string, maxAgeSeconds: number): void {
  void reply.setCookie(sessionCookieName(config), token, {
    httpOnly: true,
    sameSite: 'lax',
    secure: config.secureCookies,
    path: '/',
    maxAge: Math.max(0, Math.floor(maxAgeSeconds)),
  });
}

export function clearSessionCookie(reply: FastifyReply, config: Pick<Config, 'secureCookies'>): void {
  void reply.clearCookie(sessionCookieName(config), {
    httpOnly: true,
    sameSite: 'lax',
    secure: config.secureCookies,
    path: '/',
  });
}

/**
 * The flow cookie: a random browser secret that binds login flows and pending authorization requests to the
 * browser that started them (RFC 6749 section 10.12). Lax: it must come along on the provider's redirect back.
 */
export function flowCookieName(config: Pick<Config, 'secureCookies'>): string {
  return config.secureCookies ? '__Host-gw_flow' : 'gw_flow';
}

export function readFlowCookie(request: FastifyRequest, config: Pick<Config, 'secureCookies'>): string | undefined {
  const v = request.cookies[flowCookieName(config)];
  return v ? v : undefined;
}

export function setFlowCookie(reply: FastifyReply, config: Pick<Config, 'secureCookies' | 'loginFlowTtl'>, secret: string): void {
  void reply.setCookie(flowCookieName(config), secret, {
    httpOnly: true,
    sameSite: 'lax',
    secure: config.secureCookies,
    path: '/',
    maxAge: config.loginFlowTtl,
  });
}
