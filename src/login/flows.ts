// One-time login flows: what must survive the trip to the provider (state, nonce, PKCE verifier, return_to),
// kept server-side and bound to the browser that started it by the flow cookie.
import { createHmac, createSecretKey, type KeyObject, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Config } from '../config.js';
import type { FlowSecrets } from '../providers/types.js';
import type { Storage } from '../storage/db.js';
import { preparedQuery } from '../storage/prepared.js';
import type { Database, LoginFlow } from '../storage/schema.js';

export type FlowPurpose = 'login' | 'link' | 'reauth';

export interface NewFlow {
  provider: string;
  returnTo: string;
  /** a sign-in, linking an identity to the session's user, or that user authenticating again */
  purpose: FlowPurpose;
  /** link and reauth: the session the flow acts for */
  sessionId: string | null;
  /** link and reauth: the session's user */
  linkUserId: string | null;
  /** reauth: where the browser continues once the user authenticated again (return_to is for failures) */
  nextUrl?: string;
  /** state, nonce and PKCE verifier from newFlowSecrets(), and what the provider is asked (prompt, max_age) */
  secrets: FlowSecrets;
}

export interface Flow extends FlowSecrets {
  provider: string;
  returnTo: string;
  purpose: FlowPurpose;
  sessionId: string | null;
  linkUserId: string | null;
  nextUrl: string | null;
  createdAt: Date;
}

/** Why a callback's state was refused. */
export type FlowRefusal = 'missing_state' | 'unknown_state' | 'expired_state' | 'wrong_browser' | 'wrong_provider';

/** A callback's flow, taken once: one prepared statement (every login callback runs it). */
const consumeFlow = (db: Kysely<Database>) =>
  preparedQuery<'stateHash' | 'binding' | 'provider' | 'now', LoginFlow>('gw_consume_flow', (slot) =>
    db
      .deleteFrom('login_flows')
      .where('state_hash', '=', slot('stateHash'))
      .where('browser_binding', '=', slot('binding'))
      .where('provider', '=', slot('provider'))
      .where('expires_at', '>', slot('now'))
      .returningAll(),
  );

export class FlowStore {
  readonly #db: Kysely<Database>;
  readonly #consume: ReturnType<typeof consumeFlow>;
  // a KeyObject, not a Buffer: an HMAC keyed by a Buffer imports the key on every call (see refresh-token.ts)
  readonly #bindingKey: KeyObject;

  constructor(
    private readonly storage: Storage,
    private readonly config: Pick<Config, 'loginFlowTtl'> & { secretKey: Buffer },
    private readonly now: () => Date,
  ) {
    this.#db = storage.db;
    this.#consume = consumeFlow(this.#db);
    this.#bindingKey = createSecretKey(createHmac('sha256', config.secretKey).update('auth-gateway flow binding').digest());
  }

  /** A new value for the flow cookie (the browser's side of the binding). */
  newBrowserSecret(): string {
    return randomBytes(32).toString('base64url');
  }

  /** keyed hash: a database reader can neither forge the cookie nor use a stolen state */
  keyedHash(kind: string, value: string): string {
    return createHmac('sha256', this.#bindingKey).update(`${kind}:${value}`).digest('base64url');
  }

  async create(flow: NewFlow, browserSecret: string): Promise<Flow> {
    const now = this.now();
    // RFC 6749 section 10.12 / RFC 9700 section 4.7.1: the state is one-time and bound to this browser
    const { state, nonce, codeVerifier, prompt, maxAge, loginHint } = flow.secrets;
    await this.#db
      .insertInto('login_flows')
      .values({
        state_hash: this.keyedHash('state', state),
        provider: flow.provider,
        browser_binding: this.keyedHash('browser', browserSecret),
        nonce: nonce ?? null,
        code_verifier: codeVerifier,
        return_to: flow.returnTo,
        purpose: flow.purpose,
        session_id: flow.sessionId,
        next_url: flow.nextUrl ?? null,
        link_user_id: flow.linkUserId,
        prompt: prompt ?? null,
        max_age: maxAge ?? null,
        created_at: now,
        expires_at: new Date(now.getTime() + this.config.loginFlowTtl * 1000),
      })
      .execute();
    return {
      provider: flow.provider,
      state,
      nonce,
      codeVerifier,
      ...(prompt ? { prompt } : {}),
      ...(maxAge !== undefined ? { maxAge } : {}),
      ...(loginHint ? { loginHint } : {}),
      returnTo: flow.returnTo,
      purpose: flow.purpose,
      sessionId: flow.sessionId,
      linkUserId: flow.linkUserId,
      nextUrl: flow.nextUrl ?? null,
      createdAt: now,
    };
  }

  /**
   * Takes the flow for a callback, once: only when the state is known, unexpired, for this provider and from
   * the browser that started it. A refused state changes nothing (another browser cannot burn a victim's flow).
   */
  async consume(provider: string, state: string | undefined, browserSecret: string | undefined): Promise<Flow | FlowRefusal> {
    if (!state || state.length > 512) return 'missing_state';
    const now = this.now();
    const stateHash = this.keyedHash('state', state);
    const binding = browserSecret ? this.keyedHash('browser', browserSecret) : '';
    const [row] = await this.#consume.run(this.storage, { stateHash, binding, provider, now });
    if (row) {
      return {
        provider: row.provider,
        state,
        nonce: row.nonce ?? undefined,
        codeVerifier: row.code_verifier,
        ...(row.prompt ? { prompt: row.prompt } : {}),
        ...(row.max_age !== null ? { maxAge: row.max_age } : {}),
        returnTo: row.return_to,
        purpose: row.purpose,
        sessionId: row.session_id,
        linkUserId: row.link_user_id,
        nextUrl: row.next_url,
        createdAt: row.created_at,
      };
    }
    const known = await this.#db.selectFrom('login_flows').selectAll().where('state_hash', '=', stateHash).executeTakeFirst();
    if (!known) return 'unknown_state';
    if (known.expires_at <= now) return 'expired_state';
    if (known.provider !== provider) return 'wrong_provider';
    const a = Buffer.from(known.browser_binding);
    const b = Buffer.from(binding);
    if (a.length !== b.length || !timingSafeEqual(a, b)) return 'wrong_browser';
    return 'unknown_state';
  }

  /** Removes expired flows; returns how many. */
  async prune(): Promise<number> {
    const r = await this.#db.deleteFrom('login_flows').where('expires_at', '<=', this.now()).executeTakeFirst();
    return Number(r.numDeletedRows);
  }
}
