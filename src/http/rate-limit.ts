// Per client rate limits (@fastify/rate-limit) on every route. A route sets its own with `config: perMinute(max)`;
// every other route gets the limit of its group from DEFAULT_GROUPS (a route in no group: the session limit), so
// no route is ever unlimited by omission. A client is its IPv4 address, or its IPv6 /64. With
// REDIS_URL the counters live in Redis, so several instances share them; otherwise each instance counts
// in-process.
//
// Redis down or slow: requests are neither refused (that would make Redis a single point of failure for every
// login and refresh) nor unlimited (that would turn the brake off exactly when something is failing): each
// instance counts on its own until Redis answers again, and says so once in the log.
import rateLimit, { type FastifyRateLimitStore, type RateLimitOptions } from '@fastify/rate-limit';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import { createRequire } from 'node:module';
import type * as IORedis from 'ioredis';
import type { Redis as RedisClient } from 'ioredis';
import type { Config } from '../config.js';
import { AppError } from '../errors.js';

const WINDOW_MS = 60_000;
/** most client keys one in-process counter remembers; the oldest window goes first */
const MAX_LOCAL_KEYS = 10_000;

/** Route config: at most `max` requests per minute per client IP; 0 turns the limit off. */
export function perMinute(max: number): { rateLimit: RateLimitOptions | false } {
  return { rateLimit: max > 0 ? { max, timeWindow: WINDOW_MS } : false };
}

type Group = keyof Config['rateLimits'];

/** The limit of routes that do not set their own, by route URL. */
const DEFAULT_GROUPS: Record<string, Group> = {
  // cheap, cacheable documents: generous
  '/.well-known/jwks.json': 'discovery',
  '/.well-known/openid-configuration': 'discovery',
  '/.well-known/oauth-authorization-server': 'discovery',
  '/auth/providers': 'discovery',
  '/': 'discovery',
  '/demo.js': 'discovery',
  // probes and scrapers
  '/healthz': 'operations',
  '/readyz': 'operations',
  '/metrics': 'operations',
  // '/auth/userinfo', '/auth/logout' and anything else: 'session'
};

export function registerRateLimits(app: FastifyInstance, config: Config): void {
  // before the plugin's own onRoute hook, which reads config.rateLimit
  app.addHook('onRoute', (route) => {
    const own = (route.config as { rateLimit?: unknown } | undefined)?.rateLimit;
    if (own !== undefined) return;
    const group = DEFAULT_GROUPS[route.url ?? ''] ?? 'session';
    route.config = { ...route.config, ...perMinute(config.rateLimits[group]) };
  });
  let store: (new () => FastifyRateLimitStore) | undefined;
  if (config.redisUrl) {
    // loaded only when configured: the client costs about 13 MB of memory that a single instance does not need
    const { Redis } = createRequire(import.meta.url)('ioredis') as typeof IORedis;
    const redis = new Redis(config.redisUrl, {
      // no I/O at construction: the app connects when it becomes ready
      lazyConnect: true,
      // while disconnected a command fails at once (and the request is counted in-process) instead of queueing
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: 500,
      connectTimeout: 2000,
      retryStrategy: (times) => Math.min(times * 200, 5000),
    });
    const health = new StoreHealth(app.log);
    redis.on('error', (err: Error) => health.down(err));
    redis.on('ready', () => health.up());
    redis.defineCommand('gatewayRateLimit', { numberOfKeys: 1, lua: INCR_LUA });
    const prefix = `${config.redisKeyPrefix}rl:`;
    store = class extends SharedStore {
      constructor() {
        super(redis as CountingRedis, prefix, health);
      }
    };
    app.addHook('onReady', async () => {
      // an unreachable Redis does not stop start-up: ioredis keeps reconnecting in the background
      await redis.connect().catch((err: Error) => health.down(err));
    });
    app.addHook('onClose', async () => {
      if (redis.status === 'ready') await redis.quit().catch(() => redis.disconnect());
      else redis.disconnect();
    });
  }
  void app.register(rateLimit, {
    global: false,
    hook: 'onRequest',
    store,
    // the plugin's key: an IPv4 address (an IPv4-mapped IPv6 address counts as its IPv4 address), or the /64 of
    // an IPv6 address, the smallest block a host is given (RFC 6177, RFC 7934 section 6): one host cannot dodge
    // its limit by using another of its 2^64 addresses. Pinned here so a plugin default change cannot undo it.
    ipv6Subnet: 64,
    // our store never reports an error (it falls back to counting in-process), so this is never used
    skipOnError: false,
    errorResponseBuilder: (_request, context) => {
      const seconds = Math.max(1, Math.ceil(context.ttl / 1000));
      // RFC 6585 section 4: 429 with Retry-After
      return new AppError('rate_limited', 429, `Too many requests; retry in ${seconds} s.`, {
        headers: { 'retry-after': String(seconds) },
      });
    },
  });
}

/** INCR with a window that starts at the first hit; a key left without expiry is repaired. */
const INCR_LUA = `
local current = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {current, ttl}`;

type CountingRedis = RedisClient & { gatewayRateLimit(key: string, windowMs: number): Promise<[number, number]> };
type IncrCallback = Parameters<FastifyRateLimitStore['incr']>[1];

/** Logs once when the shared store stops answering and once when it is back. */
class StoreHealth {
  #down = false;
  constructor(private readonly log: FastifyBaseLogger) {}
  down(err: Error): void {
    if (this.#down) return;
    this.#down = true;
    this.log.warn(
      { err: { message: err.message } },
      'rate-limit store (Redis) unavailable: each instance counts on its own until it is back',
    );
  }
  up(): void {
    if (!this.#down) return;
    this.#down = false;
    this.log.info('rate-limit store (Redis) available again');
  }
}

class SharedStore implements FastifyRateLimitStore {
  readonly #local = new LocalCounter();

  constructor(
    private readonly redis: CountingRedis,
    private readonly prefix: string,
    private readonly health: StoreHealth,
  ) {}

  incr(key: string, callback: IncrCallback, timeWindow: number): void {
    const local = () => callback(null, this.#local.incr(key, timeWindow));
    if (this.redis.status !== 'ready') {
      this.health.down(new Error(`Redis connection is ${this.redis.status}`));
      return local();
    }
    this.redis.gatewayRateLimit(this.prefix + key, timeWindow).then(
      ([current, ttl]) => {
        this.health.up();
        callback(null, { current, ttl });
      },
      (err: Error) => {
        this.health.down(err);
        local();
      },
    );
  }

  /** One counter per route. The plugin passes the merged route options with the route as `routeInfo`. */
  child(routeOptions: Parameters<FastifyRateLimitStore['child']>[0]): FastifyRateLimitStore {
    const { method, url } = (routeOptions as unknown as { routeInfo: { method: string | string[]; url: string } }).routeInfo;
    return new SharedStore(this.redis, `${this.prefix}${[method].flat().join(',')}:${url}:`, this.health);
  }
}

/** Fixed one-window counters in memory, bounded in size. */
class LocalCounter {
  readonly #windows = new Map<string, { count: number; resetAt: number }>();

  incr(key: string, windowMs: number): { current: number; ttl: number } {
    const now = Date.now();
    let w = this.#windows.get(key);
    if (!w || w.resetAt <= now) {
      this.#windows.delete(key);
      if (this.#windows.size >= MAX_LOCAL_KEYS) this.#windows.delete(this.#windows.keys().next().value!);
      w = { count: 0, resetAt: now + windowMs };
      this.#windows.set(key, w);
    }
    w.count++;
    return { current: w.count, ttl: w.resetAt - now };
  }
}
