// ID tokens (OIDC Core 2, 3.1.3.6) for the OpenID Provider's clients, signed with the algorithm the client
// registered (RS256 unless it said otherwise) by a key the key manager keeps for that algorithm.
import { createHash } from 'node:crypto';
import { signJws } from '../tokens/jws.js';
import type { KeyManager } from '../tokens/keys.js';

export interface IdTokenSubject {
  issuer: string;
  clientId: string;
  alg: string;
  userId: string;
  /** the browser session the grant came from (OIDC Front/Back-Channel Logout `sid`) */
  sessionId: string;
  authTime: Date;
  nonce: string | null;
  scope: readonly string[];
  accessToken: string;
  user: { email: string | null; email_verified: boolean; name: string | null; picture?: string | null };
  lifetime: number;
  now: Date;
}

/**
 * OIDC Core 3.1.3.6: at_hash is the base64url of the left half of the hash of the access token, with the hash
 * of the ID token's alg (SHA-256 for RS256 and ES256; SHA-512 for EdDSA with Ed25519).
 */
export function atHash(accessToken: string, alg: string): string {
  const digest = createHash(alg === 'EdDSA' ? 'sha512' : 'sha256')
    .update(accessToken, 'ascii')
    .digest();
  return digest.subarray(0, digest.length / 2).toString('base64url');
}

/** The claims a scope releases (OIDC Core 5.4), leaving out what the user does not have. */
export function scopedClaims(scope: readonly string[], user: IdTokenSubject['user']): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (scope.includes('email') && user.email) {
    out.email = user.email;
    out.email_verified = user.email_verified;
  }
  if (scope.includes('profile')) {
    if (user.name) out.name = user.name;
    if (user.picture) out.picture = user.picture;
  }
  return out;
}

export async function signIdToken(keys: KeyManager, s: IdTokenSubject): Promise<string> {
  const key = await keys.signingKeyFor(s.alg);
  const iat = Math.floor(s.now.getTime() / 1000);
  return signJws(key, 'JWT', {
    iss: s.issuer,
    sub: s.userId,
    // OIDC Core 2: aud contains the client_id; azp names it as the party the token was issued to
    aud: s.clientId,
    azp: s.clientId,
    exp: iat + s.lifetime,
    iat,
    auth_time: Math.floor(s.authTime.getTime() / 1000),
    ...(s.nonce ? { nonce: s.nonce } : {}),
    sid: s.sessionId,
    at_hash: atHash(s.accessToken, key.alg),
    ...scopedClaims(s.scope, s.user),
  });
}
