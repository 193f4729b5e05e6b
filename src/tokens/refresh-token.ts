// Refresh tokens are opaque to everyone but the gateway: "gwr1_" and the base64url of the session id (16 bytes),
// the generation of the token in the session's chain (4 bytes, big-endian) and an HMAC-SHA256 tag of both
// (16 bytes) under a key derived from SECRET_KEY. Not a JWT, and signed with no published key, so no resource
// server can ever accept one as an access token (RFC 9068 section 4, RFC 8725 section 3.11).
//
// Nothing about a token is stored: a session row keeps its current generation, and a valid tag proves that the
// gateway issued (session, generation). A database reader can neither forge a token nor learn a live one; the
// successor of a token is as unpredictable as the tag without the key.
import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';

const PREFIX = 'gwr1_';
const BODY = 20;
const TAG = 16;
const ENCODED_LENGTH = PREFIX.length + Math.ceil(((BODY + TAG) * 4) / 3);
const UUID_HEX = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i;

export interface RefreshTokenClaims {
  sessionId: string;
  generation: number;
}

export class RefreshTokenCodec {
  readonly #keys: Buffer[];

  /** `secretKeys`: the current SECRET_KEY first, then a previous one still accepted for reading. */
  constructor(secretKeys: readonly Buffer[]) {
    if (secretKeys.length === 0) throw new Error('a refresh token codec needs a key');
    this.#keys = secretKeys.map((k) => Buffer.from(hkdfSync('sha256', k, Buffer.alloc(0), 'auth-gateway refresh tokens', 32)));
  }

  mint(sessionId: string, generation: number): string {
    if (!UUID_HEX.test(sessionId)) throw new Error('a session id is a UUID');
    if (!Number.isInteger(generation) || generation < 0 || generation > 0xffff_ffff) throw new Error('generation out of range');
    const out = Buffer.alloc(BODY + TAG);
    out.write(sessionId.replace(/-/g, ''), 0, 16, 'hex');
    out.writeUInt32BE(generation, 16);
    this.#tag(this.#keys[0], out.subarray(0, BODY)).copy(out, BODY);
    return PREFIX + out.toString('base64url');
  }

  /** The session and generation a token names, or undefined when it is not a token the gateway issued. */
  parse(token: unknown): RefreshTokenClaims | undefined {
    if (typeof token !== 'string' || token.length !== ENCODED_LENGTH || !token.startsWith(PREFIX)) return undefined;
    const raw = Buffer.from(token.slice(PREFIX.length), 'base64url');
    if (raw.length !== BODY + TAG) return undefined;
    const body = raw.subarray(0, BODY);
    const tag = raw.subarray(BODY);
    // every key is tried, so the time taken does not say which one matched
    let valid = false;
    for (const key of this.#keys) valid = timingSafeEqual(this.#tag(key, body), tag) || valid;
    if (!valid) return undefined;
    const hex = body.toString('hex', 0, 16);
    return {
      sessionId: `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`,
      generation: body.readUInt32BE(16),
    };
  }

  #tag(key: Buffer, body: Buffer): Buffer {
    // the prefix is authenticated too: a later format cannot be confused with this one
    return createHmac('sha256', key).update(PREFIX).update(body).digest().subarray(0, TAG);
  }
}
