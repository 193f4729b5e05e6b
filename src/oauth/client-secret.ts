// Client secrets: 256 random bits, shown once, stored only as "sha256:<base64url of SHA-256>", compared in constant
// time.
//
// Why a plain SHA-256 and not a password hash (bcrypt, scrypt, argon2): those exist to slow down guessing of
// low-entropy secrets chosen by people. A secret of 256 random bits cannot be guessed from its hash however fast
// the hash is (2^256 tries), so a slow KDF would only make every token request slower. Secrets the operator
// supplies through CLIENTS_FILE (env:NAME) must be at least 32 characters for the same reason.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

const PREFIX = 'sha256:';
/** "sha256:" and 43 base64url characters (32 bytes, unpadded) */
export const SECRET_HASH = /^sha256:[A-Za-z0-9_-]{43}$/;
/** the shortest secret an operator may supply (env:NAME in CLIENTS_FILE) */
export const MIN_SUPPLIED_SECRET_LENGTH = 32;

/** A new client secret: 32 random bytes, base64url (43 characters). */
export function generateClientSecret(): string {
  return randomBytes(32).toString('base64url');
}

/** The stored form of a secret. */
export function hashClientSecret(secret: string): string {
  return `${PREFIX}${createHash('sha256').update(secret, 'utf8').digest('base64url')}`;
}

/** The 32-byte digest of a stored hash, or undefined when it is not one. */
export function digestOf(hash: string): Buffer | undefined {
  if (!SECRET_HASH.test(hash)) return undefined;
  const digest = Buffer.from(hash.slice(PREFIX.length), 'base64url');
  // 43 characters may carry bits beyond the 32 bytes: only the canonical encoding is accepted
  return digest.length === 32 && digest.toString('base64url') === hash.slice(PREFIX.length) ? digest : undefined;
}

/** A digest no secret has (in practice): what an unknown client's secret is compared with, so both take as long. */
const NO_DIGEST = Buffer.alloc(32);

/**
 * Does `secret` hash to `hash`? Constant time: the digests of equal length are compared with timingSafeEqual, so
 * neither the secret's length nor how much of it is right shows in the timing.
 */
export function clientSecretMatches(secret: string, hash: string | null): boolean {
  const expected = (hash && digestOf(hash)) || NO_DIGEST;
  const given = createHash('sha256').update(secret, 'utf8').digest();
  return timingSafeEqual(given, expected) && expected !== NO_DIGEST;
}
