// RFC 6750 section 2.1: "Authorization: Bearer <token>" (the scheme is case-insensitive).
import type { FastifyRequest } from 'fastify';

export function bearerToken(request: FastifyRequest): string | undefined {
  const h = request.headers.authorization;
  if (!h) return undefined;
  const m = /^Bearer +([A-Za-z0-9\-._~+/]+=*)\s*$/i.exec(h);
  return m ? m[1] : undefined;
}
