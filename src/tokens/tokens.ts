// Our own JWTs: access tokens (RFC 9068, typ at+jwt) and refresh tokens (typ rt+jwt), signed with the active
// key and verified strictly against the keys we hold (RFC 8725).
import { randomUUID } from 'node:crypto';
import { errors as joseErrors, type JWTPayload, type JWTHeaderParameters, jwtVerify, SignJWT } from 'jose';
import type { Config } from '../config.js';
import type { KeyManager } from './keys.js';

export interface AccessClaims extends JWTPayload {
  iss: string;
  sub: string;
  aud: string | string[];
  exp: number;
  iat: number;
  jti: string;
  sid: string;
  client_id: string;
  auth_time?: number;
  email: string | null;
  email_verified: boolean;
  name: string | null;
  roles: string[];
}

export interface RefreshClaims extends JWTPayload {
  iss: string;
  sub: string;
  aud: string;
  exp: number;
  iat: number;
  jti: string;
  sid: string;
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
export const REFRESH_TYP = 'rt+jwt';

/** Why a token was refused; never echoes the token. */
export class TokenRejected extends Error {
  constructor(readonly reason: string) {
    super(reason);
    this.name = 'TokenRejected';
  }
}

export class TokenService {
  constructor(
    private readonly config: Config,
    private readonly keys: KeyManager,
    private readonly now: () => Date,
  ) {}

  async signAccess(s: AccessSubject): Promise<{ token: string; expiresIn: number; jti: string }> {
    const key = this.keys.signingKey();
    const iat = Math.floor(this.now().getTime() / 1000);
    const jti = randomUUID();
    const aud = this.config.accessTokenAudience;
    const claims = {
      // RFC 9068 section 2.2: client_id; our frontends are not registered clients, the gateway is the client
      client_id: this.config.issuer,
      sid: s.sessionId,
      auth_time: Math.floor(s.authTime.getTime() / 1000),
      email: s.email,
      email_verified: s.emailVerified,
      name: s.name,
      roles: s.roles,
    };
    const token = await new SignJWT(claims)
      // RFC 9068 section 2.1: typ "at+jwt"
      .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: ACCESS_TYP })
      .setIssuer(this.config.issuer)
      .setSubject(s.userId)
      .setAudience(aud.length === 1 ? aud[0] : aud)
      .setIssuedAt(iat)
      .setExpirationTime(iat + this.config.accessTokenTtl)
      .setJti(jti)
      .sign(key.privateKey);
    return { token, expiresIn: this.config.accessTokenTtl, jti };
  }

  async signRefresh(r: { userId: string; sessionId: string; jti: string; expiresAt: Date }): Promise<string> {
    const key = this.keys.signingKey();
    const iat = Math.floor(this.now().getTime() / 1000);
    return new SignJWT({ sid: r.sessionId })
      .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: REFRESH_TYP })
      .setIssuer(this.config.issuer)
      .setSubject(r.userId)
      .setAudience(this.config.issuer)
      .setIssuedAt(iat)
      .setExpirationTime(Math.floor(r.expiresAt.getTime() / 1000))
      .setJti(r.jti)
      .sign(key.privateKey);
  }

  /** Strict access token verification: typ at+jwt, our keys and algorithms only, iss, aud, exp. */
  async verifyAccess(token: string): Promise<AccessClaims> {
    const payload = await this.#verify(token, {
      typ: ACCESS_TYP,
      audience: this.config.accessTokenAudience,
      requiredClaims: ['sub', 'sid', 'jti', 'iat', 'exp'],
    });
    return payload as AccessClaims;
  }

  /** Refresh token verification: typ rt+jwt, iss, aud = ISSUER, exp (unless allowExpired, for logout). */
  async verifyRefresh(token: string, options: { allowExpired?: boolean } = {}): Promise<RefreshClaims> {
    const payload = await this.#verify(token, {
      typ: REFRESH_TYP,
      audience: this.config.issuer,
      requiredClaims: ['sub', 'sid', 'jti', 'iat', 'exp'],
      allowExpired: options.allowExpired,
    });
    return payload as RefreshClaims;
  }

  async #verify(
    token: string,
    o: { typ: string; audience: string | string[]; requiredClaims: string[]; allowExpired?: boolean },
  ): Promise<JWTPayload> {
    if (typeof token !== 'string' || token.length > 8192) throw new TokenRejected('malformed');
    try {
      const { payload } = await jwtVerify(
        token,
        async (header: JWTHeaderParameters) => {
          const key = await this.keys.verificationKey(header.kid);
          if (!key) throw new TokenRejected('unknown_kid');
          // RFC 8725 section 3.1: the algorithm is the key's, never the token's choice
          if (key.alg !== header.alg) throw new TokenRejected('alg_mismatch');
          return key.publicKey;
        },
        {
          // RFC 8725 section 2.1/3.1: explicit allow-list (never "none" nor HMAC with a public key)
          algorithms: this.keys.algorithms(),
          // RFC 9068 section 4 / RFC 8725 section 3.11: explicit typing keeps token kinds apart
          typ: o.typ,
          issuer: this.config.issuer,
          audience: o.audience,
          requiredClaims: o.requiredClaims,
          currentDate: o.allowExpired ? new Date(0) : this.now(),
          clockTolerance: 5,
        },
      );
      return payload;
    } catch (err) {
      if (err instanceof TokenRejected) throw err;
      if (err instanceof joseErrors.JWTExpired) throw new TokenRejected('expired');
      if (err instanceof joseErrors.JWTClaimValidationFailed) throw new TokenRejected(`claim_${err.claim}`);
      if (err instanceof joseErrors.JOSEAlgNotAllowed) throw new TokenRejected('alg_not_allowed');
      if (err instanceof joseErrors.JWSSignatureVerificationFailed) throw new TokenRejected('signature');
      throw new TokenRejected('malformed');
    }
  }
}
