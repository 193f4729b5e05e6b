// Signing key lifecycle: next → active → retired → removed. A new key is published in the JWKS at least one
// JWKS cache period (JWKS_MAX_AGE) before it signs; a retired key stays published until every token it signed
// has expired. Changes happen under the store's rotation lock, so instances sharing a database agree.
import { randomUUID } from 'node:crypto';
import { type CryptoKey, exportJWK, generateKeyPair, importJWK, type JWK } from 'jose';
import type { FastifyBaseLogger } from 'fastify';
import type { SigningAlg } from '../config.js';
import { unavailable } from '../errors.js';
import type { SigningKeyRow } from '../storage/schema.js';
import type { KeyStore, KeyStoreTx } from './key-store.js';
import type { SecretBox } from './secret-box.js';

export interface PublicJwk extends JWK {
  kty: string;
  kid: string;
  alg: string;
  use: 'sig';
}

export interface LoadedKey {
  kid: string;
  alg: string;
  state: SigningKeyRow['state'];
  publicJwk: PublicJwk;
  publicKey: CryptoKey;
  /** decrypted for the active and the next key only */
  privateKey: CryptoKey | undefined;
  publishAt: Date;
  activateAt: Date;
  activatedAt: Date | null;
  retiredAt: Date | null;
  removeAt: Date | null;
}

export interface KeyManagerOptions {
  alg: SigningAlg;
  rotationInterval: number;
  jwksMaxAge: number;
  /** the longest lifetime of any token a key signs (seconds): retired keys stay published this long */
  maxTokenLifetime: number;
  now: () => Date;
  log: FastifyBaseLogger;
  /** how often instances look for due rotations and for keys another instance made (ms) */
  tickIntervalMs?: number;
}

export type RotationEvent = { kind: 'created' | 'activated' | 'retired' | 'removed'; kid: string; alg: string };

/** What a rotation on demand did: made a next key, brought the scheduled one forward, or found it already due. */
export interface RotationRequest {
  kid: string;
  activateAt: Date;
  result: 'created' | 'brought_forward' | 'already_scheduled';
  /** brought_forward: when the key was due before */
  previousActivateAt?: Date;
}

/** margin for instances that have not reloaded yet and for clock skew (seconds) */
const SKEW = 120;

export class KeyManager {
  #keys = new Map<string, LoadedKey>();
  #active: LoadedKey | undefined;
  #loadError: string | undefined;
  #lastUnknownKidReload = 0;
  #jwks: { value: { keys: PublicJwk[] }; validUntil: number } | undefined;
  #algorithms: string[] = [];
  #timer: NodeJS.Timeout | undefined;
  #ticking: Promise<void> | undefined;
  /** the last time a rotation happened (activation), for metrics */
  lastRotationAt: Date | undefined;

  constructor(
    private readonly store: KeyStore,
    private readonly box: SecretBox,
    private readonly opts: KeyManagerOptions,
    private readonly onEvent: (e: RotationEvent, at: Date) => Promise<void> | void = () => {},
  ) {}

  /** Creates the first key if there is none, applies due rotations, loads keys and starts the timer. */
  async start(): Promise<void> {
    await this.tick();
    const every = this.opts.tickIntervalMs ?? 30_000;
    this.#timer = setInterval(() => {
      this.tick().catch((err) => this.opts.log.error({ err }, 'key rotation check failed'));
    }, every);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** One rotation check: apply what is due under the lock, then reload. Concurrent calls share one run. */
  tick(): Promise<void> {
    this.#ticking ??= (async () => {
      try {
        const events = await this.store.withRotationLock((tx) => this.#applyDue(tx));
        await this.#notify(events);
        await this.reload();
      } finally {
        this.#ticking = undefined;
      }
    })();
    return this.#ticking;
  }

  /**
   * Rotates now: a new key is published at once and signs after one JWKS cache period (sooner is not safe for
   * verifiers that cached the JWKS). Returns the next key's id and what was done. `inTransaction` runs under the
   * rotation lock, in the rotation's transaction (the caller's audit event commits with the rotation, or neither).
   */
  async rotateNow(inTransaction?: (request: RotationRequest, tx: KeyStoreTx) => Promise<void>): Promise<RotationRequest> {
    const now = this.opts.now();
    const activateAt = new Date(now.getTime() + this.opts.jwksMaxAge * 1000);
    const { result, events } = await this.store.withRotationLock(async (tx) => {
      const events: RotationEvent[] = [];
      const keys = await tx.list();
      const next = keys.find((k) => k.state === 'next');
      let result: RotationRequest;
      if (next) {
        // already scheduled: bring it forward to the earliest safe moment
        const earliest = new Date(Math.max(next.publish_at.getTime() + this.opts.jwksMaxAge * 1000, now.getTime()));
        if (next.activate_at > earliest) {
          await tx.reschedule(next.kid, earliest);
          result = { kid: next.kid, activateAt: earliest, result: 'brought_forward', previousActivateAt: next.activate_at };
        } else {
          result = { kid: next.kid, activateAt: next.activate_at, result: 'already_scheduled' };
        }
      } else {
        const kid = await this.#create(tx, 'next', now, activateAt);
        events.push({ kind: 'created', kid, alg: this.opts.alg });
        result = { kid, activateAt, result: 'created' };
      }
      await inTransaction?.(result, tx);
      return { result, events };
    });
    await this.#notify(events);
    await this.reload();
    return result;
  }

  async #applyDue(tx: KeyStoreTx): Promise<RotationEvent[]> {
    const now = this.opts.now();
    const events: RotationEvent[] = [];
    const keys = await tx.list();
    for (const k of keys) {
      if (k.state === 'retired' && k.remove_at && k.remove_at <= now) {
        await tx.remove(k.kid);
        events.push({ kind: 'removed', kid: k.kid, alg: k.alg });
      }
    }
    const active = keys.find((k) => k.state === 'active');
    const next = keys.find((k) => k.state === 'next');
    if (!active) {
      // first start (nothing can have cached a JWKS yet) or a store emptied by hand: sign at once
      if (next) {
        await tx.activate(next.kid, now);
        events.push({ kind: 'activated', kid: next.kid, alg: next.alg });
      } else {
        const kid = await this.#create(tx, 'active', now, now);
        events.push({ kind: 'created', kid, alg: this.opts.alg }, { kind: 'activated', kid, alg: this.opts.alg });
      }
      return events;
    }
    if (next && next.activate_at <= now) {
      const removeAt = new Date(now.getTime() + (this.opts.maxTokenLifetime + SKEW) * 1000);
      await tx.retire(active.kid, now, removeAt);
      await tx.activate(next.kid, now);
      events.push({ kind: 'retired', kid: active.kid, alg: active.alg }, { kind: 'activated', kid: next.kid, alg: next.alg });
      return events;
    }
    const activatedAt = (active.activated_at ?? active.activate_at).getTime();
    const dueAt = activatedAt + this.opts.rotationInterval * 1000;
    const algChanged = active.alg !== this.opts.alg;
    if (!next && (algChanged || now.getTime() >= dueAt - this.opts.jwksMaxAge * 1000)) {
      // publish now, sign once every verifier's cached JWKS has expired
      const activateAt = new Date(Math.max(now.getTime() + this.opts.jwksMaxAge * 1000, algChanged ? 0 : dueAt));
      const kid = await this.#create(tx, 'next', now, activateAt);
      events.push({ kind: 'created', kid, alg: this.opts.alg });
    }
    return events;
  }

  async #create(tx: KeyStoreTx, state: 'next' | 'active', now: Date, activateAt: Date): Promise<string> {
    const alg = this.opts.alg;
    const kid = randomUUID();
    const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true });
    const [publicJwk, privateJwk] = await Promise.all([exportJWK(publicKey), exportJWK(privateKey)]);
    await tx.insert({
      kid,
      alg,
      state,
      publicJwk: { ...publicJwk, kid, alg, use: 'sig' },
      privateJwkEnc: this.box.seal(JSON.stringify(privateJwk), kid),
      publishAt: now,
      activateAt,
      activatedAt: state === 'active' ? now : null,
    });
    return kid;
  }

  async #notify(events: RotationEvent[]): Promise<void> {
    const at = this.opts.now();
    for (const e of events) {
      if (e.kind === 'activated') this.lastRotationAt = at;
      this.opts.log.info({ kid: e.kid, alg: e.alg }, `signing key ${e.kind}`);
      await this.onEvent(e, at);
    }
  }

  /** Reads the keys from the store (keys made by other instances included). */
  async reload(): Promise<void> {
    const rows = await this.store.list();
    const keys = new Map<string, LoadedKey>();
    let error: string | undefined;
    for (const row of rows) {
      const known = this.#keys.get(row.kid);
      const publicJwk = row.public_jwk as unknown as PublicJwk;
      const publicKey = known?.publicKey ?? ((await importJWK(publicJwk, row.alg)) as CryptoKey);
      let privateKey = known?.privateKey;
      if (!privateKey && (row.state === 'active' || row.state === 'next')) {
        try {
          const jwk = JSON.parse(this.box.open(row.private_jwk_enc, row.kid)) as JWK;
          privateKey = (await importJWK(jwk, row.alg)) as CryptoKey;
        } catch {
          error = `signing key ${row.kid} cannot be decrypted: was SECRET_KEY changed?`;
          this.opts.log.error({ kid: row.kid }, error);
        }
      }
      keys.set(row.kid, {
        kid: row.kid,
        alg: row.alg,
        state: row.state,
        publicJwk,
        publicKey,
        privateKey,
        publishAt: row.publish_at,
        activateAt: row.activate_at,
        activatedAt: row.activated_at,
        retiredAt: row.retired_at,
        removeAt: row.remove_at,
      });
    }
    this.#keys = keys;
    this.#algorithms = [...new Set([...keys.values()].map((k) => k.alg))];
    this.#jwks = undefined;
    this.#active = [...keys.values()].find((k) => k.state === 'active' && k.privateKey);
    this.#loadError = this.#active ? undefined : (error ?? 'no active signing key');
  }

  /** The key that signs now; 503 when none is loaded. */
  signingKey(): LoadedKey & { privateKey: CryptoKey } {
    const k = this.#active;
    if (!k?.privateKey) throw unavailable('No signing key is loaded.');
    return k as LoadedKey & { privateKey: CryptoKey };
  }

  /** readiness: resolves when a signing key is loaded */
  async ready(): Promise<void> {
    if (!this.#active) throw new Error(this.#loadError ?? 'no active signing key');
  }

  /**
   * The public key for a kid. An unknown kid may be a key another instance just made: reload at most once
   * every 10 seconds before giving up.
   */
  async verificationKey(kid: string | undefined): Promise<LoadedKey | undefined> {
    if (!kid) return undefined;
    const known = this.#keys.get(kid);
    if (known) return known;
    const now = Date.now();
    if (now - this.#lastUnknownKidReload < 10_000) return undefined;
    this.#lastUnknownKidReload = now;
    await this.reload();
    return this.#keys.get(kid);
  }

  /**
   * The public JWKS: next, active and not yet removed retired keys; never private parts. The same object is
   * returned until the keys change or one of them reaches its removal time, so callers may cache by identity.
   */
  jwks(): { keys: PublicJwk[] } {
    const now = this.opts.now().getTime();
    if (this.#jwks && now < this.#jwks.validUntil) return this.#jwks.value;
    const order = { active: 0, next: 1, retired: 2 } as const;
    const live = [...this.#keys.values()].filter((k) => !(k.removeAt && k.removeAt.getTime() <= now));
    const keys = live
      .sort((a, b) => order[a.state] - order[b.state] || a.publishAt.getTime() - b.publishAt.getTime())
      .map((k) => publicOnly(k.publicJwk));
    const validUntil = Math.min(Infinity, ...live.map((k) => k.removeAt?.getTime() ?? Infinity));
    this.#jwks = { value: { keys }, validUntil };
    return this.#jwks.value;
  }

  list(): LoadedKey[] {
    return [...this.#keys.values()];
  }

  /** algorithms of the keys we hold: the allow-list for verifying our own tokens */
  algorithms(): string[] {
    return this.#algorithms;
  }
}

const PUBLIC_MEMBERS = ['kty', 'crv', 'x', 'y', 'n', 'e', 'kid', 'alg', 'use'] as const;

/** Copies only public members, whatever the stored JWK holds. */
function publicOnly(jwk: PublicJwk): PublicJwk {
  const out: Record<string, unknown> = {};
  for (const m of PUBLIC_MEMBERS) if (jwk[m] !== undefined) out[m] = jwk[m];
  return out as unknown as PublicJwk;
}
