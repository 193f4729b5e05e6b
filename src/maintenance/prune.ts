// Removes what can no longer be used: expired login flows and expired sessions (a session holds its refresh
// tokens' chain, so they go with it). Retired signing keys are removed by the key manager's own check.
// Deletes run in small batches so no statement holds many row locks; several instances may prune at once.
import type { FastifyBaseLogger } from 'fastify';
import { type Kysely, sql } from 'kysely';
import type { Database } from '../storage/schema.js';

export interface PruneCounts {
  loginFlows: number;
  sessions: number;
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
    };
    if (counts.loginFlows || counts.sessions) this.log.info(counts, 'pruned expired rows');
    return counts;
  }

  async #drain(table: 'login_flows' | 'sessions', key: string, now: Date, alsoExpiredBy?: string): Promise<number> {
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
