// AES-256-GCM encryption of private signing keys at rest, keyed by SECRET_KEY through HKDF. A previous
// SECRET_KEY (SECRET_KEY_PREVIOUS) can be given for reading: what it sealed opens, and is sealed again under the
// current key by whoever holds it (the key manager does so for signing keys).
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';

const VERSION = 'v1';

export class SecretBox {
  readonly #keys: Buffer[];

  /** `secretKeys`: the current SECRET_KEY, or it first and then a previous one accepted for reading. */
  constructor(secretKeys: Buffer | readonly Buffer[], purpose: string) {
    const list = Buffer.isBuffer(secretKeys) ? [secretKeys] : [...secretKeys];
    if (list.length === 0) throw new Error('a secret box needs a key');
    this.#keys = list.map((k) => Buffer.from(hkdfSync('sha256', k, Buffer.alloc(0), `auth-gateway ${purpose}`, 32)));
  }

  /** `aad` binds the ciphertext to its context (e.g. the key id), so a row cannot be swapped for another. */
  seal(plaintext: string, aad: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.#keys[0], iv);
    cipher.setAAD(Buffer.from(aad));
    const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final(), cipher.getAuthTag()]);
    return `${VERSION}.${iv.toString('base64url')}.${body.toString('base64url')}`;
  }

  /**
   * The plaintext and whether the current key sealed it (false: a previous key did, so it should be sealed
   * again); undefined when no key opens it (another SECRET_KEY, another aad, or tampered with).
   */
  tryOpen(sealed: string, aad: string): { plaintext: string; current: boolean } | undefined {
    const [version, ivText, bodyText] = sealed.split('.');
    if (version !== VERSION || !ivText || !bodyText) return undefined;
    const body = Buffer.from(bodyText, 'base64url');
    if (body.length < 16) return undefined;
    for (let i = 0; i < this.#keys.length; i++) {
      try {
        const decipher = createDecipheriv('aes-256-gcm', this.#keys[i], Buffer.from(ivText, 'base64url'));
        decipher.setAAD(Buffer.from(aad));
        decipher.setAuthTag(body.subarray(body.length - 16));
        const plaintext = Buffer.concat([decipher.update(body.subarray(0, body.length - 16)), decipher.final()]).toString('utf8');
        return { plaintext, current: i === 0 };
      } catch {
        // not this key
      }
    }
    return undefined;
  }

  /** Throws when no key opens it. */
  open(sealed: string, aad: string): string {
    const opened = this.tryOpen(sealed, aad);
    if (!opened) throw new Error('the sealed value cannot be opened with SECRET_KEY');
    return opened.plaintext;
  }
}
