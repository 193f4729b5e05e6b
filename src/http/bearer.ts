// RFC 6750 section 2.1: "Authorization: Bearer <token>" (the scheme is case-insensitive).
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';

export function bearerToken(request: FastifyRequest): string | undefined {
  const h = request.headers.authorization;
  if (!h) return undefined;
  const m = /^Bearer +([A-Za-z0-9\-._~+/]+=*)\s*$/i.exec(h);
  return m ? m[1] : undefined;
}

/**
 * Whether the request presents Bearer credentials at all, well-formed or not. Without them (no Authorization, or
 * another scheme) a 401's challenge carries no error code (RFC 6750 section 3.1).
 */
export function presentsBearer(request: FastifyRequest): boolean {
  return /^Bearer(\s|$)/i.test(request.headers.authorization ?? '');
}

const digest = (s: string) => createHash('sha256').update(s).digest();

/** Compares a presented secret with the expected one in constant time (equal-length digests: no length leak). */
export function secretMatches(given: string | undefined, expected: string): boolean {
  return given !== undefined && timingSafeEqual(digest(given), digest(expected));
}
