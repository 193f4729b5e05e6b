// Our access tokens (RFC 9068 JWTs, typ at+jwt), signed with the active key and verified strictly against the
// keys we hold (RFC 8725). Refresh tokens are not JWTs: see refresh-token.ts.
import { randomUUID } from 'node:crypto';
import type { Config } from '../config.js';
import { JwsRejected, signJws, verifyJws } from './jws.js';
import type { KeyManager } from './keys.js';

export interface AccessClaims {
  iss: string;
  sub: string;
  aud: string | string[];
  exp: number;
  iat: number;
  jti: string;
  sid: string;
  client_id: string;
  auth_time?: number;
  scope?: string;
  email?: string;
  email_verified?: boolean;
  name?: string;
  roles?: string[];
  [claim: string]: unknown;
}

export interface AccessSubject {
  userId: string;
  sessionId: string;
  authTime: Date;
  email: string | null;
  emailVerified: boolean;
  name: string | null;
  roles: string[];
}

export const ACCESS_TYP = 'at+jwt';
/** RFC 9068 section 4: a resource server accepts "at+jwt" or its full media type */
const ACCESS_TYPES = [ACCESS_TYP, 'application/at+jwt'];
/** seconds of clock difference tolerated on exp, nbf and iat of our own tokens */
const CLOCK_TOLERANCE = 5;

/** Why a token was refused; never echoes the token. */
export class TokenRejected extends Error {
  constructor(readonly reason: string) {
    super(reason);
    this.name = 'TokenRejected';
  }
}

/**
 * The claims of an access token without empty values: RFC 9068 validators refuse a token whose optional claims
 * are null or of the wrong type, so an absent email, name or role list is left out rather than sent empty.
 */
function profileClaims(s: AccessSubject): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (s.email) {
    out.email = s.email;
    out.email_verified = s.emailVerified;
  }
  if (s.name) out.name = s.name;
  if (s.roles.length > 0) out.roles = s.roles;
  return out;
}

export class TokenService {
  readonly #audience: string | string[];

  constructor(
    private readonly config: Config,
    private readonly keys: KeyManager,
    private readonly now: () => Date,
  ) {
    const aud = config.accessTokenAudience;
    this.#audience = aud.length === 1 ? aud[0] : aud;
  }

  signAccess(s: AccessSubject): { token: string; expiresIn: number; jti: string } {
    const key = this.keys.signingKey();
    const iat = Math.floor(this.now().getTime() / 1000);
    const jti = randomUUID();
    const claims = {
      iss: this.config.issuer,
      sub: s.userId,
      aud: this.#audience,
      exp: iat + this.config.accessTokenTtl,
      iat,
      jti,
      // RFC 9068 section 2.2: client_id; our frontends are not registered clients, the gateway is the client
      client_id: this.config.issuer,
      sid: s.sessionId,
      auth_time: Math.floor(s.authTime.getTime() / 1000),
      ...profileClaims(s),
    };
    // RFC 9068 section 2.1: typ "at+jwt"
    return { token: signJws(key, ACCESS_TYP, claims), expiresIn: this.config.accessTokenTtl, jti };
  }

  /** Strict access token verification: typ at+jwt, our keys and algorithms only, iss, aud, exp, nbf, iat. */
  async verifyAccess(token: string): Promise<AccessClaims> {
    if (typeof token !== 'string' || token.length > 8192) throw new TokenRejected('malformed');
    let payload: Record<string, unknown>;
    try {
      ({ payload } = await verifyJws(token, {
        keyFor: (kid) => this.keys.verificationKey(kid),
        algorithms: this.keys.algorithms(),
        typ: ACCESS_TYPES,
      }));
    } catch (err) {
      if (err instanceof JwsRejected) throw new TokenRejected(err.reason);
      throw err;
    }
    const now = Math.floor(this.now().getTime() / 1000);
    // RFC 9068 section 4 / RFC 7519 section 4.1: iss exactly ours, aud one of ours, exp in the future
    if (payload.iss !== this.config.issuer) throw new TokenRejected('claim_iss');
    const aud = payload.aud;
    const audiences = Array.isArray(aud) ? aud : [aud];
    if (!audiences.some((a) => typeof a === 'string' && this.config.accessTokenAudience.includes(a))) throw new TokenRejected('claim_aud');
    for (const claim of ['sub', 'sid', 'jti'] as const) {
      if (typeof payload[claim] !== 'string' || payload[claim] === '') throw new TokenRejected(`claim_${claim}`);
    }
    if (typeof payload.iat !== 'number') throw new TokenRejected('claim_iat');
    if (typeof payload.exp !== 'number') throw new TokenRejected('claim_exp');
    if (payload.exp <= now - CLOCK_TOLERANCE) throw new TokenRejected('expired');
    if (payload.nbf !== undefined && (typeof payload.nbf !== 'number' || payload.nbf > now + CLOCK_TOLERANCE)) {
      throw new TokenRejected('claim_nbf');
    }
    if (payload.iat > now + CLOCK_TOLERANCE) throw new TokenRejected('claim_iat');
    return payload as AccessClaims;
  }
}
