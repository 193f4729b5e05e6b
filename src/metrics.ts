// Prometheus metrics for one app instance (its own registry, so several apps in one process do not collide).
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Storage } from './storage/db.js';
import type { KeyManager } from './tokens/keys.js';
import type { RefreshOutcome } from './tokens/sessions.js';

export class Metrics {
  readonly registry = new Registry();
  readonly logins: Counter<'provider' | 'outcome' | 'reason'>;
  readonly refreshes: Counter<'outcome'>;
  readonly httpDuration: Histogram<'method' | 'route' | 'status_code'>;

  constructor(deps: { storage: Storage; keys: KeyManager; defaultMetrics?: boolean }) {
    const registers = [this.registry];
    if (deps.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry, prefix: 'gateway_' });
    this.logins = new Counter({
      name: 'gateway_logins_total',
      help: 'Completed logins by provider and outcome (failure reasons as in the audit log)',
      labelNames: ['provider', 'outcome', 'reason'],
      registers,
    });
    this.refreshes = new Counter({
      name: 'gateway_refreshes_total',
      help: 'Refresh token uses by outcome: ok, reuse, expired, revoked, invalid, disabled',
      labelNames: ['outcome'],
      registers,
    });
    this.httpDuration = new Histogram({
      name: 'gateway_http_request_duration_seconds',
      help: 'Request latency by route',
      labelNames: ['method', 'route', 'status_code'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
      registers,
    });
    new Gauge({
      name: 'gateway_signing_key_last_rotation_timestamp_seconds',
      help: 'When the signing key in use became active (Unix time)',
      registers,
      collect() {
        const active = deps.keys.list().find((k) => k.state === 'active');
        const at = active?.activatedAt ?? active?.activateAt;
        if (at) this.set(at.getTime() / 1000);
      },
    });
    new Gauge({
      name: 'gateway_signing_keys',
      help: 'Published signing keys by state',
      labelNames: ['state'],
      registers,
      collect() {
        this.reset();
        for (const state of ['next', 'active', 'retired'] as const) {
          this.set({ state }, deps.keys.list().filter((k) => k.state === state).length);
        }
      },
    });
    new Gauge({
      name: 'gateway_db_pool_connections',
      help: 'Database pool connections: total, idle, and requests waiting for one',
      labelNames: ['state'],
      registers,
      collect() {
        const s = deps.storage.poolStats();
        this.set({ state: 'total' }, s.total);
        this.set({ state: 'idle' }, s.idle);
        this.set({ state: 'waiting' }, s.waiting);
      },
    });
  }

  refreshOutcome(outcome: RefreshOutcome): void {
    this.refreshes.inc({ outcome });
  }
}
