// Signing key lifecycle: next → active → retired → removed. A new key is published in the JWKS at least one
// JWKS cache period (JWKS_MAX_AGE) before it signs; a retired key stays published until every token it signed
// has expired. Changes happen under the store's rotation lock, so instances sharing a database agree.
import { createPrivateKey, createPublicKey, type KeyObject, randomUUID } from 'node:crypto';
import { exportJWK, generateKeyPair, type JWK } from 'jose';
import type { FastifyBaseLogger } from 'fastify';
import type { SigningAlg } from '../config.js';
import { unavailable } from '../errors.js';
import type { SigningKeyRow } from '../storage/schema.js';
import type { KeyStore, KeyStoreTx } from './key-store.js';
import type { JwsAlg } from './jws.js';
import type { SecretBox } from './secret-box.js';

export interface PublicJwk extends JWK {
  kty: string;
  kid: string;
  alg: string;
  use: 'sig';
}

export interface LoadedKey {
  kid: string;
  alg: JwsAlg;
  state: SigningKeyRow['state'];
  publicJwk: PublicJwk;
  publicKey: KeyObject;
  /** decrypted for the active and the next key only */
  privateKey: KeyObject | undefined;
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
  /** the algorithms ID tokens are asked to be signed with (the registered clients'), besides SIGNING_ALG */
  idTokenAlgs?: () => Promise<SigningAlg[]>;
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
  #activeByAlg = new Map<string, LoadedKey>();
  /** the algorithms the last rotation check kept keys for */
  #wanted: SigningAlg[];
  #loadError: string | undefined;
  #lastUnknownKidReload = 0;
  #jwks: { value: { keys: PublicJwk[] }; validUntil: number } | undefined;
  #unreadable: string[] = [];
  #reportedUnreadable = false;
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
  ) {
    this.#wanted = [opts.alg];
  }

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
        // read before the lock: the clients' query must not wait for a connection the rotation's transaction
        // holds (PGlite has exactly one)
        const wanted = await this.#wantedAlgs();
        const events = await this.store.withRotationLock((tx) => this.#applyDue(tx, wanted));
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
      const next = keys.find((k) => k.state === 'next' && k.alg === this.opts.alg);
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
        const kid = await this.#create(tx, this.opts.alg, 'next', now, activateAt);
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

  async #applyDue(tx: KeyStoreTx, wanted: SigningAlg[]): Promise<RotationEvent[]> {
    const now = this.opts.now();
    const events: RotationEvent[] = [];
    const keys = await tx.list();
    for (const k of keys) {
      if (k.state === 'retired' && k.remove_at && k.remove_at <= now) {
        await tx.remove(k.kid);
        events.push({ kind: 'removed', kid: k.kid, alg: k.alg });
      }
    }
    for (const k of keys) {
      if (k.state === 'retired') continue;
      // a key sealed under SECRET_KEY_PREVIOUS is sealed again under SECRET_KEY, so the previous one can go
      const opened = this.box.tryOpen(k.private_jwk_enc, k.kid);
      if (opened && !opened.current) {
        await tx.reseal(k.kid, this.box.seal(opened.plaintext, k.kid));
        this.opts.log.info({ kid: k.kid }, 'signing key re-encrypted under the current SECRET_KEY');
      }
    }
    const live = keys.filter((k) => !events.some((e) => e.kid === k.kid));
    this.#wanted = wanted;
    await this.#keepAccessKey(tx, live, now, events);
    for (const alg of wanted) if (alg !== this.opts.alg) await this.#keepIdTokenKey(tx, alg, live, now, events);
    await this.#dropUnwanted(tx, live, wanted, now, events);
    return events;
  }

  /** SIGNING_ALG and the algorithms of ID tokens some client asks for (OIDC Core: RS256 by default). */
  async #wantedAlgs(): Promise<SigningAlg[]> {
    const extra = this.opts.idTokenAlgs ? await this.opts.idTokenAlgs() : [];
    return [...new Set([this.opts.alg, ...extra])];
  }

  /**
   * The access-token key (SIGNING_ALG). The very first key signs at once (nothing can have cached a JWKS yet);
   * after that a new key, also one of a new SIGNING_ALG, is published one JWKS cache period before it signs,
   * while the current one goes on signing.
   */
  async #keepAccessKey(tx: KeyStoreTx, keys: SigningKeyRow[], now: Date, events: RotationEvent[]): Promise<void> {
    const alg = this.opts.alg;
    const active = keys.find((k) => k.state === 'active' && k.alg === alg);
    const next = keys.find((k) => k.state === 'next' && k.alg === alg);
    const anyActive = keys.some((k) => k.state === 'active');
    // first start, or a store emptied by hand: sign at once
    if (!active && !anyActive) return this.#signAtOnce(tx, alg, next, now, events);
    if (!active) {
      // SIGNING_ALG changed: the key of the old algorithm signs until one of the new one is safely published
      if (!next) {
        const kid = await this.#create(tx, alg, 'next', now, new Date(now.getTime() + this.opts.jwksMaxAge * 1000));
        events.push({ kind: 'created', kid, alg });
      } else if (next.activate_at <= now) {
        await tx.activate(next.kid, now);
        events.push({ kind: 'activated', kid: next.kid, alg });
      }
      return;
    }
    await this.#rotateWhenDue(tx, active, next, now, events);
  }

  /**
   * An ID-token key. The first key of an algorithm signs at once: no verifier can hold a key set it is missing
   * from yet (an RP that finds no key for a kid fetches the JWKS again, OIDC Core 10.1.1); later keys are
   * pre-published like every other.
   */
  async #keepIdTokenKey(tx: KeyStoreTx, alg: SigningAlg, keys: SigningKeyRow[], now: Date, events: RotationEvent[]): Promise<void> {
    const active = keys.find((k) => k.state === 'active' && k.alg === alg);
    const next = keys.find((k) => k.state === 'next' && k.alg === alg);
    if (!active) return this.#signAtOnce(tx, alg, next, now, events);
    await this.#rotateWhenDue(tx, active, next, now, events);
  }

  /** An algorithm without an active key that may sign at once: its next key now, or a new one. */
  async #signAtOnce(tx: KeyStoreTx, alg: SigningAlg, next: SigningKeyRow | undefined, now: Date, events: RotationEvent[]): Promise<void> {
    if (next) {
      await tx.activate(next.kid, now);
      events.push({ kind: 'activated', kid: next.kid, alg });
    } else {
      const kid = await this.#create(tx, alg, 'active', now, now);
      events.push({ kind: 'created', kid, alg }, { kind: 'activated', kid, alg });
    }
  }

  /** Every KEY_ROTATION_INTERVAL: publish the next key one JWKS cache period early, then switch to it. */
  async #rotateWhenDue(tx: KeyStoreTx, active: SigningKeyRow, next: SigningKeyRow | undefined, now: Date, events: RotationEvent[]) {
    if (next && next.activate_at <= now) {
      await tx.retire(active.kid, now, this.#removeAt(now));
      await tx.activate(next.kid, now);
      events.push({ kind: 'retired', kid: active.kid, alg: active.alg }, { kind: 'activated', kid: next.kid, alg: next.alg });
      return;
    }
    const dueAt = (active.activated_at ?? active.activate_at).getTime() + this.opts.rotationInterval * 1000;
    if (!next && now.getTime() >= dueAt - this.opts.jwksMaxAge * 1000) {
      // publish now, sign once every verifier's cached JWKS has expired
      const activateAt = new Date(Math.max(now.getTime() + this.opts.jwksMaxAge * 1000, dueAt));
      const kid = await this.#create(tx, active.alg as SigningAlg, 'next', now, activateAt);
      events.push({ kind: 'created', kid, alg: active.alg });
    }
  }

  /**
   * Keys of an algorithm no longer used: an active one retires (it stays published until what it signed has
   * expired) once SIGNING_ALG has its own active key; a next one, which never signed, goes at once.
   */
  async #dropUnwanted(tx: KeyStoreTx, keys: SigningKeyRow[], wanted: SigningAlg[], now: Date, events: RotationEvent[]) {
    const accessReady =
      keys.some((k) => k.state === 'active' && k.alg === this.opts.alg) ||
      events.some((e) => e.kind === 'activated' && e.alg === this.opts.alg);
    for (const k of keys) {
      if ((wanted as string[]).includes(k.alg)) continue;
      if (k.state === 'next') {
        await tx.remove(k.kid);
        events.push({ kind: 'removed', kid: k.kid, alg: k.alg });
      } else if (k.state === 'active' && accessReady) {
        await tx.retire(k.kid, now, this.#removeAt(now));
        events.push({ kind: 'retired', kid: k.kid, alg: k.alg });
      }
    }
  }

  #removeAt(now: Date): Date {
    return new Date(now.getTime() + (this.opts.maxTokenLifetime + SKEW) * 1000);
  }

  async #create(tx: KeyStoreTx, alg: SigningAlg, state: 'next' | 'active', now: Date, activateAt: Date): Promise<string> {
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
    const unreadable: string[] = [];
    for (const row of rows) {
      const known = this.#keys.get(row.kid);
      const publicJwk = row.public_jwk as unknown as PublicJwk;
      const publicKey = known?.publicKey ?? createPublicKey({ key: publicJwk as JWK & { kty: string }, format: 'jwk' });
      let privateKey = known?.privateKey;
      if (!privateKey && (row.state === 'active' || row.state === 'next')) {
        const jwk = this.box.tryOpen(row.private_jwk_enc, row.kid);
        if (jwk) privateKey = createPrivateKey({ key: JSON.parse(jwk.plaintext) as JWK & { kty: string }, format: 'jwk' });
        else unreadable.push(row.kid);
      }
      keys.set(row.kid, {
        kid: row.kid,
        alg: row.alg as JwsAlg,
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
    const active = [...keys.values()].filter((k) => k.state === 'active' && k.privateKey);
    this.#activeByAlg = new Map(active.map((k) => [k.alg, k]));
    // access tokens: SIGNING_ALG's key, or while a new SIGNING_ALG is being published, the old algorithm's
    // key, which is one that no ID token asks for
    this.#active =
      this.#activeByAlg.get(this.opts.alg) ??
      active
        .sort((a, b) => (b.activatedAt?.getTime() ?? 0) - (a.activatedAt?.getTime() ?? 0))
        .find((k) => !this.#wanted.includes(k.alg as SigningAlg));
    this.#unreadable = unreadable;
    if (unreadable.length > 0 && !this.#reportedUnreadable) {
      this.#reportedUnreadable = true;
      this.opts.log.error({ kids: unreadable }, UNREADABLE_KEYS_HELP);
    }
    this.#loadError = this.#active
      ? undefined
      : unreadable.length > 0
        ? 'the signing keys cannot be decrypted with SECRET_KEY (see the log for what to do)'
        : 'no active signing key';
  }

  /** The key that signs access tokens now (SIGNING_ALG's, or the old algorithm's while a new one is published); 503 when none. */
  signingKey(): LoadedKey & { privateKey: KeyObject } {
    const k = this.#active;
    if (!k?.privateKey) throw unavailable('No signing key is loaded.');
    return k as LoadedKey & { privateKey: KeyObject };
  }

  /**
   * The active key of an algorithm (ID tokens). A client may have just asked for an algorithm no key exists for
   * yet: one rotation check makes it, once; 503 when there is still none.
   */
  async signingKeyFor(alg: string): Promise<LoadedKey & { privateKey: KeyObject }> {
    let k = this.#activeByAlg.get(alg);
    if (!k) {
      await this.tick();
      k = this.#activeByAlg.get(alg);
    }
    if (!k?.privateKey) throw unavailable(`No ${alg} signing key is loaded.`);
    return k as LoadedKey & { privateKey: KeyObject };
  }

  /** kids of stored next/active keys that neither SECRET_KEY nor SECRET_KEY_PREVIOUS opens */
  unreadableKeys(): string[] {
    return this.#unreadable;
  }

  /** readiness: resolves when a signing key is loaded */
  async ready(): Promise<void> {
    if (!this.#active) throw new Error(this.#loadError ?? 'no active signing key');
  }

  /**
   * The public key for a kid. An unknown kid may be a key another instance just made: reload at most once
   * every 10 seconds before giving up. A known kid answers synchronously (no promise on the hot path).
   */
  verificationKey(kid: string | undefined): LoadedKey | undefined | Promise<LoadedKey | undefined> {
    if (!kid) return undefined;
    return this.#keys.get(kid) ?? this.#reloadForUnknownKid(kid);
  }

  /** The loaded key of a kid, if any, without reloading for an unknown one. */
  loadedKey(kid: string): LoadedKey | undefined {
    return this.#keys.get(kid);
  }

  async #reloadForUnknownKid(kid: string): Promise<LoadedKey | undefined> {
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

/** What an operator can do when SECRET_KEY no longer opens the signing keys (the README's "SECRET_KEY" section). */
export const UNREADABLE_KEYS_HELP =
  'signing keys cannot be decrypted with SECRET_KEY: was it changed? Either restore the previous SECRET_KEY, or ' +
  'set SECRET_KEY_PREVIOUS to the previous value (keys and refresh tokens are then read with it and re-encrypted ' +
  'under the new key), or, if the previous key is lost, run `npm run keys -- drop-unreadable` (production: ' +
  '`node dist/src/keys-cli.js drop-unreadable`) to delete those keys: a new key is made at the next start, tokens ' +
  'they signed stop verifying and every session must sign in again.';

const PUBLIC_MEMBERS = ['kty', 'crv', 'x', 'y', 'n', 'e', 'kid', 'alg', 'use'] as const;

/** Copies only public members, whatever the stored JWK holds. */
function publicOnly(jwk: PublicJwk): PublicJwk {
  const out: Record<string, unknown> = {};
  for (const m of PUBLIC_MEMBERS) if (jwk[m] !== undefined) out[m] = jwk[m];
  return out as unknown as PublicJwk;
}
