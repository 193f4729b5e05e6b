// Removes what can no longer be used: expired login flows and expired sessions (a session holds its refresh
// tokens' chain, so they go with it; an OP grant's codes go with its browser session), and the OpenID Provider's
// expired authorization requests, codes and revoked-token entries. Retired signing keys are removed by the key
// manager's own check.
// Deletes run in small batches so no statement holds many row locks; several instances may prune at once.
import type { FastifyBaseLogger } from 'fastify';
import { type Kysely, sql } from 'kysely';
import type { Database } from '../storage/schema.js';

export interface PruneCounts {
  loginFlows: number;
  sessions: number;
  /** OpenID Provider: authorization requests that waited too long, codes past their minute, revoked access tokens past their expiry */
  authorizationRequests: number;
  authorizationCodes: number;
  revokedAccessTokens: number;
}

const BATCH = 5000;

export class Pruner {
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<PruneCounts> | undefined;

  constructor(
    private readonly db: Kysely<Database>,
    private readonly now: () => Date,
    private readonly log: FastifyBaseLogger,
    private readonly intervalMs: number,
  ) {}

  start(): void {
    if (this.intervalMs <= 0) return;
    this.#timer = setInterval(() => {
      this.run().catch((err) => this.log.error({ err }, 'pruning failed'));
    }, this.intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** One pass; concurrent calls share it. */
  run(): Promise<PruneCounts> {
    this.#running ??= this.#run().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  async #run(): Promise<PruneCounts> {
    const now = this.now();
    const counts: PruneCounts = {
      loginFlows: await this.#drain('login_flows', 'state_hash', now),
      // a session is dead once past its absolute or its idle expiry
      sessions: await this.#drain('sessions', 'id', now, 'idle_expires_at'),
      authorizationRequests: await this.#drain('authorization_requests', 'id_hash', now),
      authorizationCodes: await this.#drain('authorization_codes', 'code_hash', now),
      revokedAccessTokens: await this.#drain('revoked_access_tokens', 'jti', now),
    };
    if (Object.values(counts).some((n) => n > 0)) this.log.info(counts, 'pruned expired rows');
    return counts;
  }

  async #drain(
    table: 'login_flows' | 'sessions' | 'authorization_requests' | 'authorization_codes' | 'revoked_access_tokens',
    key: string,
    now: Date,
    alsoExpiredBy?: string,
  ): Promise<number> {
    let total = 0;
    for (;;) {
      const expired = alsoExpiredBy ? sql`expires_at <= ${now} or ${sql.ref(alsoExpiredBy)} <= ${now}` : sql`expires_at <= ${now}`;
      const result = await sql`
        delete from ${sql.table(table)} where ${sql.ref(key)} in (
          select ${sql.ref(key)} from ${sql.table(table)} where ${expired} limit ${BATCH}
        )`.execute(this.db);
      const n = Number(result.numAffectedRows ?? 0n);
      total += n;
      if (n < BATCH) return total;
    }
  }
}
