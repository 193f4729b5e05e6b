// Tokens an attacker could make: signed with a key we never issued, unsigned (alg none), or re-typed.
import { decodeJwt, decodeProtectedHeader, generateKeyPair, SignJWT } from 'jose';

const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');

/** Re-signs the token's claims with a fresh key; the header keeps the original kid unless told otherwise. */
export async function resignWithForeignKey(token: string, header: Record<string, unknown> = {}): Promise<string> {
  const { privateKey } = await generateKeyPair('ES256');
  const h = { ...decodeProtectedHeader(token), ...header };
  return new SignJWT(decodeJwt(token)).setProtectedHeader({ ...h, alg: 'ES256' } as { alg: string }).sign(privateKey);
}

/** The same claims with alg "none" and no signature. */
export function unsigned(token: string, claims: Record<string, unknown> = {}): string {
  const h = { ...decodeProtectedHeader(token), alg: 'none' };
  return `${b64(h)}.${b64({ ...decodeJwt(token), ...claims })}.`;
}

/** Changes claims or header but keeps the original signature (which then no longer matches). */
export function tampered(token: string, claims: Record<string, unknown>, header: Record<string, unknown> = {}): string {
  const [, , sig] = token.split('.');
  return `${b64({ ...decodeProtectedHeader(token), ...header })}.${b64({ ...decodeJwt(token), ...claims })}.${sig}`;
}
