// Our access tokens (RFC 9068 JWTs, typ at+jwt), signed with the active key and verified strictly against the
// keys we hold (RFC 8725). Refresh tokens are not JWTs: see refresh-token.ts.
import { randomUUID } from 'node:crypto';
import type { Config } from '../config.js';
import { JwsRejected, signJws, verifyJws } from './jws.js';
import type { KeyManager, LoadedKey } from './keys.js';

export interface AccessClaims {
  iss: string;
  sub: string;
  aud: string | string[];
  exp: number;
  iat: number;
  jti: string;
  /** the session (or OP grant) the token belongs to; absent on a client's own client_credentials token */
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
  /** an OP client's grant: its client_id, scope and audience instead of the gateway's */
  grant?: { clientId: string; scope: string; audience: string[] };
}

export const ACCESS_TYP = 'at+jwt';
/** RFC 9068 section 4: a resource server accepts "at+jwt" or its full media type */
const ACCESS_TYPES = [ACCESS_TYP, 'application/at+jwt'];
/** seconds of clock difference tolerated on exp, nbf and iat of our own tokens */
const CLOCK_TOLERANCE = 5;

/** How many verified access tokens TokenService remembers (about 1 KB each); the oldest is forgotten first. */
const VERIFIED_TOKENS = 2048;

/** Freezes a verified payload (and its arrays and objects): one copy is handed to every caller that presents it. */
function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

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
  // an OP client's token carries only what its scope grants (OIDC Core 5.4); the gateway's own tokens, all of it
  const scope = s.grant ? s.grant.scope.split(' ') : undefined;
  if (s.email && (!scope || scope.includes('email'))) {
    out.email = s.email;
    out.email_verified = s.emailVerified;
  }
  if (s.name && (!scope || scope.includes('profile'))) out.name = s.name;
  if (s.roles.length > 0) out.roles = s.roles;
  return out;
}

export class TokenService {
  readonly #audience: string | string[];
  /**
   * Access tokens whose signature has been verified, by their exact text, with the key that verified them: a
   * client presents the same token on every request of its lifetime, and the same bytes under the same key
   * verify the same way (ES256 verification is most of a userinfo request's CPU). An entry counts only while
   * its kid still names that same loaded key and its algorithm is still accepted; the claims (iss, aud, exp, …)
   * are checked on every use, and a revoked token is refused by its session lookup as before.
   */
  readonly #verified = new Map<string, { key: LoadedKey; payload: Record<string, unknown> }>();

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
    const grant = s.grant;
    const claims = {
      iss: this.config.issuer,
      sub: s.userId,
      aud: grant && grant.audience.length > 0 ? (grant.audience.length === 1 ? grant.audience[0] : grant.audience) : this.#audience,
      exp: iat + this.config.accessTokenTtl,
      iat,
      jti,
      // RFC 9068 section 2.2: client_id, the client the token was issued to; for the gateway's own browser
      // sessions (frontends are not registered clients) that is the gateway itself
      client_id: grant?.clientId ?? this.config.issuer,
      ...(grant?.scope ? { scope: grant.scope } : {}),
      sid: s.sessionId,
      auth_time: Math.floor(s.authTime.getTime() / 1000),
      ...profileClaims(s),
    };
    // RFC 9068 section 2.1: typ "at+jwt"
    return { token: signJws(key, ACCESS_TYP, claims), expiresIn: this.config.accessTokenTtl, jti };
  }

  /** A client's own token (client_credentials, RFC 6749 section 4.4): the client is the subject; no session. */
  signClientAccess(c: { clientId: string; scope: string; audience: string[] }): { token: string; expiresIn: number; jti: string } {
    const key = this.keys.signingKey();
    const iat = Math.floor(this.now().getTime() / 1000);
    const jti = randomUUID();
    const claims = {
      iss: this.config.issuer,
      // RFC 9068 section 2.2: for a token issued to the client itself, sub is its client_id
      sub: c.clientId,
      aud: c.audience.length === 0 ? this.#audience : c.audience.length === 1 ? c.audience[0] : c.audience,
      exp: iat + this.config.accessTokenTtl,
      iat,
      jti,
      client_id: c.clientId,
      ...(c.scope ? { scope: c.scope } : {}),
    };
    return { token: signJws(key, ACCESS_TYP, claims), expiresIn: this.config.accessTokenTtl, jti };
  }

  /**
   * Strict access token verification: typ at+jwt, our keys and algorithms only, iss, aud, exp, nbf, iat. By
   * default the token must be for the gateway's own audience (ACCESS_TOKEN_AUDIENCE: the admin API and
   * /auth/userinfo are resource servers like any other) and belong to a session; the OpenID Provider's
   * UserInfo and introspection accept any audience, and introspection a client's own tokens (no session) too.
   */
  async verifyAccess(token: string, o: { anyAudience?: boolean; sessionless?: boolean } = {}): Promise<AccessClaims> {
    if (typeof token !== 'string' || token.length > 8192) throw new TokenRejected('malformed');
    const payload = await this.#verifiedPayload(token);
    const now = Math.floor(this.now().getTime() / 1000);
    // RFC 9068 section 4 / RFC 7519 section 4.1: iss exactly ours, aud one of ours, exp in the future
    if (payload.iss !== this.config.issuer) throw new TokenRejected('claim_iss');
    const aud = payload.aud;
    const audiences = Array.isArray(aud) ? aud : [aud];
    if (!audiences.every((a) => typeof a === 'string') || audiences.length === 0) throw new TokenRejected('claim_aud');
    if (!o.anyAudience && !audiences.some((a) => this.config.accessTokenAudience.includes(a as string)))
      throw new TokenRejected('claim_aud');
    if (typeof payload.client_id !== 'string') throw new TokenRejected('claim_client_id');
    for (const claim of o.sessionless && payload.sid === undefined ? (['sub', 'jti'] as const) : (['sub', 'sid', 'jti'] as const)) {
      if (typeof payload[claim] !== 'string' || payload[claim] === '') throw new TokenRejected(`claim_${claim}`);
    }
    if (typeof payload.iat !== 'number') throw new TokenRejected('claim_iat');
    if (typeof payload.exp !== 'number') throw new TokenRejected('claim_exp');
    if (payload.exp <= now - CLOCK_TOLERANCE) {
      this.#verified.delete(token);
      throw new TokenRejected('expired');
    }
    if (payload.nbf !== undefined && (typeof payload.nbf !== 'number' || payload.nbf > now + CLOCK_TOLERANCE)) {
      throw new TokenRejected('claim_nbf');
    }
    if (payload.iat > now + CLOCK_TOLERANCE) throw new TokenRejected('claim_iat');
    return payload as AccessClaims;
  }

  /** The payload of a token signed by one of our keys: from #verified, or verified now (and remembered). */
  async #verifiedPayload(token: string): Promise<Record<string, unknown>> {
    const known = this.#verified.get(token);
    if (known) {
      if (this.keys.loadedKey(known.key.kid) === known.key && this.keys.algorithms().includes(known.key.alg)) return known.payload;
      this.#verified.delete(token);
    }
    let key: LoadedKey | undefined;
    let payload: Record<string, unknown>;
    try {
      ({ payload } = await verifyJws(token, {
        keyFor: (kid) => {
          const found = this.keys.verificationKey(kid);
          return found instanceof Promise ? found.then((k) => (key = k)) : (key = found);
        },
        algorithms: this.keys.algorithms(),
        typ: ACCESS_TYPES,
      }));
    } catch (err) {
      if (err instanceof JwsRejected) throw new TokenRejected(err.reason);
      throw err;
    }
    if (this.#verified.size >= VERIFIED_TOKENS) this.#verified.delete(this.#verified.keys().next().value!);
    this.#verified.set(token, { key: key!, payload: deepFreeze(payload) });
    return payload;
  }
}
