// Where signing keys live: one small interface and its database implementation (Postgres or PGlite).
import { type Kysely, sql } from 'kysely';
import { type AuditInput, recordAudit } from '../audit.js';
import type { Database, SigningKeyRow } from '../storage/schema.js';

export interface NewSigningKey {
  kid: string;
  alg: string;
  state: 'next' | 'active';
  publicJwk: Record<string, unknown>;
  privateJwkEnc: string;
  publishAt: Date;
  activateAt: Date;
  activatedAt: Date | null;
}

/** Changes made while holding the rotation lock. */
export interface KeyStoreTx {
  /** an audit event in the rotation's transaction */
  audit(event: AuditInput): Promise<void>;
  list(): Promise<SigningKeyRow[]>;
  insert(key: NewSigningKey): Promise<void>;
  activate(kid: string, at: Date): Promise<void>;
  retire(kid: string, at: Date, removeAt: Date): Promise<void>;
  /** pulls a scheduled key's activation time earlier or later */
  reschedule(kid: string, activateAt: Date): Promise<void>;
  remove(kid: string): Promise<void>;
  /** replaces a key's encrypted private part (sealed again under the current SECRET_KEY) */
  reseal(kid: string, privateJwkEnc: string): Promise<void>;
}

export interface KeyStore {
  /** every stored key (next, active, retired) */
  list(): Promise<SigningKeyRow[]>;
  /** runs fn in one transaction under a lock that serialises rotations across every instance */
  withRotationLock<T>(fn: (tx: KeyStoreTx) => Promise<T>): Promise<T>;
}

/** arbitrary constant: the advisory lock id for key rotation */
const ROTATION_LOCK = 0x6b65_7973;

export class DatabaseKeyStore implements KeyStore {
  constructor(private readonly db: Kysely<Database>) {}

  list(): Promise<SigningKeyRow[]> {
    return this.db.selectFrom('signing_keys').selectAll().orderBy('created_at').execute();
  }

  withRotationLock<T>(fn: (tx: KeyStoreTx) => Promise<T>): Promise<T> {
    return this.db.transaction().execute(async (trx) => {
      await sql`select pg_advisory_xact_lock(${ROTATION_LOCK})`.execute(trx);
      return fn({
        audit: (event) => recordAudit(trx, event),
        list: () => trx.selectFrom('signing_keys').selectAll().orderBy('created_at').execute(),
        insert: async (k) => {
          await trx
            .insertInto('signing_keys')
            .values({
              kid: k.kid,
              alg: k.alg,
              state: k.state,
              public_jwk: JSON.stringify(k.publicJwk),
              private_jwk_enc: k.privateJwkEnc,
              created_at: k.publishAt,
              publish_at: k.publishAt,
              activate_at: k.activateAt,
              activated_at: k.activatedAt,
            })
            .execute();
        },
        activate: async (kid, at) => {
          await trx.updateTable('signing_keys').set({ state: 'active', activated_at: at }).where('kid', '=', kid).execute();
        },
        retire: async (kid, at, removeAt) => {
          await trx
            .updateTable('signing_keys')
            .set({ state: 'retired', retired_at: at, remove_at: removeAt })
            .where('kid', '=', kid)
            .execute();
        },
        reschedule: async (kid, activateAt) => {
          await trx.updateTable('signing_keys').set({ activate_at: activateAt }).where('kid', '=', kid).execute();
        },
        remove: async (kid) => {
          await trx.deleteFrom('signing_keys').where('kid', '=', kid).execute();
        },
        reseal: async (kid, privateJwkEnc) => {
          await trx.updateTable('signing_keys').set({ private_jwk_enc: privateJwkEnc }).where('kid', '=', kid).execute();
        },
      });
    });
  }
}
