// The only module that reads process.env. parseConfig() is pure (env in, typed config or one ConfigError
// listing every problem out), one function per group of settings; loadConfig() adds the warnings, the checked
// DATA_DIR and the development-only generated SECRET_KEY in it.
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { join, resolve } from 'node:path';
import { parseClientsFile, type StaticClientConfig } from './oauth/clients-file.js';
import { ensureWritableDir, fsReason, StartupError } from './startup.js';

export type ProviderType = 'google' | 'microsoft' | 'github' | 'oidc';
export type SigningAlg = 'ES256' | 'EdDSA' | 'RS256';

export interface ProviderConfig {
  id: string;
  type: ProviderType;
  name: string;
  clientId: string;
  clientSecret: string | undefined;
  /** OIDC issuer (google, microsoft, oidc). For microsoft common/organizations it holds the `{tenantid}` template. */
  issuer: string | undefined;
  /** microsoft only */
  tenant: string;
  /** microsoft only: allowed `tid` values when the tenant is common/organizations/consumers (empty: any) */
  allowedTenants: string[];
  /** github only */
  baseUrl: string;
  apiUrl: string;
  scopes: string[];
  trustEmail: boolean;
  /** PUBLIC_URL + /auth/{id}/callback */
  redirectUri: string;
}

export interface Config {
  env: 'production' | 'development' | 'test';
  port: number;
  host: string;
  publicUrl: string;
  /** true when PUBLIC_URL is https: Secure and __Host- cookies */
  secureCookies: boolean;
  issuer: string;
  databaseUrl: string | undefined;
  /** seconds start-up keeps retrying a Postgres that cannot be reached before it gives up */
  databaseConnectTimeout: number;
  dataDir: string;
  /** ≥32 bytes; undefined only before loadConfig() has generated the development key */
  secretKey: Buffer | undefined;
  /** a previous SECRET_KEY still accepted for reading (signing keys, refresh tokens) during a key change */
  secretKeyPrevious: Buffer | undefined;
  providers: ProviderConfig[];
  allowedOrigins: string[];
  accessTokenTtl: number;
  accessTokenAudience: string[];
  refreshTokenTtl: number;
  sessionMaxAge: number;
  /** seconds in which a just-rotated refresh token, presented again before its successor was used, gets that successor */
  refreshGracePeriod: number;
  /** linking an identity needs an upstream authentication at most this many seconds old */
  linkMaxAuthAge: number;
  signingAlg: SigningAlg;
  keyRotationInterval: number;
  /** max-age of /.well-known/jwks.json; a new key is published at least this long before it signs */
  jwksMaxAge: number;
  /** seconds between each instance's look for due key rotations and keys made by other instances */
  keyCheckInterval: number;
  /** lifetime of a login flow (state, nonce, PKCE verifier); at most 600 s */
  loginFlowTtl: number;
  /** abort a request to an upstream provider after this many ms */
  upstreamTimeoutMs: number;
  /** seconds between background prunes of expired flows, sessions and tokens; 0 disables */
  pruneInterval: number;
  /** when set, GET /metrics requires `Authorization: Bearer <METRICS_TOKEN>` */
  metricsToken: string | undefined;
  /** serve the demo page at / */
  demoPage: boolean;
  /** `npm start` only: the port of the demo OpenID provider (on 127.0.0.1) */
  demoProviderPort: number;
  /** `npm start` only: the port of the Demo App, the demo's downstream application (on 127.0.0.1) */
  demoAppPort: number;
  /** seconds between SIGTERM (readiness turns 503) and closing the listener, for load balancers to drain */
  shutdownDelay: number;
  adminToken: string | undefined;
  /** requests per minute per client IP and route; 0 turns a limit off */
  rateLimits: { login: number; refresh: number; admin: number; session: number; discovery: number; operations: number; token: number };
  /** shared rate-limit store; in-process counting when unset */
  redisUrl: string | undefined;
  /** prefix of every Redis key, so several deployments can share one Redis */
  redisKeyPrefix: string;
  logLevel: string;
  /**
   * Fastify trustProxy: false, the number of proxies in front of the gateway, or their addresses/CIDRs. Never
   * `true`, which would take the left-most X-Forwarded-For entry: the one the client writes.
   */
  trustProxy: false | number | string[];
  /** CLIENTS_FILE: the path of the static clients file */
  clientsFile: string | undefined;
  /** the static OAuth clients of CLIENTS_FILE, validated (secrets only as hashes) */
  clients: StaticClientConfig[];
}

/** Files that settings name, read by loadConfig() so that parseConfig() stays pure. */
export interface ConfigFiles {
  /** the contents of CLIENTS_FILE, or why it could not be read */
  clientsFile?: { text: string } | { error: string };
}

/** A bad or missing setting: every problem in one message. */
export class ConfigError extends StartupError {
  constructor(
    readonly problems: string[],
    /** unknown or ignored variables, shown after the problems since a typo is often their cause */
    readonly warnings: string[] = [],
  ) {
    const lines = [`Invalid configuration:`, ...problems.map((p) => `  - ${p}`)];
    if (warnings.length) lines.push('Also:', ...warnings.map((w) => `  - ${w}`));
    super(lines.join('\n'));
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

const PROVIDER_TYPES: readonly ProviderType[] = ['google', 'microsoft', 'github', 'oidc'];
const SIGNING_ALGS: readonly SigningAlg[] = ['ES256', 'EdDSA', 'RS256'];
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
const PROVIDER_ID = /^[a-z0-9-]+$/;
const HOST_NAME = /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
/** the names proxy-addr (Fastify's trustProxy) knows besides addresses and CIDRs */
const PROXY_RANGE_NAMES = ['loopback', 'linklocal', 'uniquelocal'];

/** Decodes a hex or base64/base64url secret; undefined when it is neither. */
export function decodeSecret(value: string): Buffer | undefined {
  const v = value.trim();
  if (/^[0-9a-fA-F]+$/.test(v) && v.length % 2 === 0 && v.length >= 64) return Buffer.from(v, 'hex');
  if (/^[A-Za-z0-9+/_-]+={0,2}$/.test(v)) return Buffer.from(v.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
  return undefined;
}

/**
 * Why a decoded secret is not random enough, or undefined. A random key of 32 bytes takes about 30 different byte
 * values and never repeats itself; one typed by hand (one character over and over, a word, a short pattern) does.
 */
export function weakSecretReason(key: Buffer): string | undefined {
  const distinct = new Set(key).size;
  if (distinct < 16) return `its ${key.length} bytes take only ${distinct} different values`;
  for (let period = 1; period <= key.length / 2; period++) {
    if (key.subarray(period).equals(key.subarray(0, key.length - period))) return `it repeats itself every ${period} bytes`;
  }
  return undefined;
}

export function providerEnvPrefix(id: string): string {
  return `PROVIDER_${id.toUpperCase().replace(/-/g, '_')}_`;
}

/** localhost, 127.0.0.0/8 or ::1: this machine, where http cannot be overheard */
function isLoopbackHost(hostname: string): boolean {
  return hostname === 'localhost' || hostname === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(hostname);
}

/**
 * Reads the environment for parseConfig: typed accessors that collect every problem instead of throwing, and
 * remember every name they were asked for, which is how the unknown-variable check knows the settings (a setting
 * added later is known as soon as it is read here). Read every setting unconditionally for that reason.
 */
class Settings {
  readonly problems: string[] = [];
  readonly read = new Set<string>();

  constructor(private readonly env: Env) {}

  problem(message: string): void {
    this.problems.push(message);
  }

  str(name: string): string | undefined {
    this.read.add(name);
    const v = this.env[name];
    return v === undefined || v.trim() === '' ? undefined : v.trim();
  }

  int(name: string, def: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
    const v = this.str(name);
    if (v === undefined) return def;
    const n = Number(v);
    if (!/^\d+$/.test(v) || n < min || n > max) {
      const range = max === Number.MAX_SAFE_INTEGER ? `of at least ${min}` : `from ${min} to ${max}`;
      this.problem(`${name} must be a whole number ${range}, got "${v}"`);
      return def;
    }
    return n;
  }

  url(name: string, def: string): URL {
    const v = this.str(name) ?? def;
    try {
      const u = new URL(v);
      if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('scheme');
      return u;
    } catch {
      this.problem(`${name} must be an absolute http(s) URL, got "${v}"`);
      return new URL(def);
    }
  }

  bool(name: string, def: boolean): boolean {
    return this.optionalBool(name) ?? def;
  }

  optionalBool(name: string): boolean | undefined {
    const v = this.str(name)?.toLowerCase();
    if (v === undefined) return undefined;
    if (['1', 'true', 'yes', 'on'].includes(v)) return true;
    if (['0', 'false', 'no', 'off'].includes(v)) return false;
    this.problem(`${name} must be true or false, got "${v}"`);
    return undefined;
  }

  list(name: string): string[] | undefined {
    return this.str(name)
      ?.split(',')
      .map((s) => s.trim())
      .filter(Boolean);
  }
}

function parseNodeEnv(s: Settings): Config['env'] {
  const nodeEnv = s.str('NODE_ENV');
  return nodeEnv === 'production' ? 'production' : nodeEnv === 'test' ? 'test' : 'development';
}

/** PORT, HOST, PUBLIC_URL, ISSUER, ALLOWED_ORIGINS and TRUST_PROXY: where the gateway listens and is reached. */
function parseHttp(s: Settings, env: Config['env']) {
  const port = s.int('PORT', 3000, 1, 65535);
  const host = s.str('HOST') ?? '0.0.0.0';
  if (!isIP(host) && !HOST_NAME.test(host)) {
    s.problem(`HOST must be an IP address or a host name to listen on, without a port or scheme (the port is PORT), got "${host}"`);
  }
  const publicUrlParsed = s.url('PUBLIC_URL', `http://localhost:${port}`);
  if (publicUrlParsed.search || publicUrlParsed.hash) s.problem('PUBLIC_URL must not have a query or fragment');
  // over http the cookies lose Secure and the __Host- prefix, so a sibling subdomain could plant the flow cookie
  if (env === 'production' && publicUrlParsed.protocol === 'http:' && !isLoopbackHost(publicUrlParsed.hostname)) {
    s.problem(
      `PUBLIC_URL must be https when NODE_ENV=production (http only for localhost, 127.0.0.1 or [::1]): over http the cookies lose Secure and the __Host- prefix, got "${publicUrlParsed.href}"`,
    );
  }
  const publicUrl = publicUrlParsed.href.replace(/\/+$/, '');
  const issuer = (s.str('ISSUER') ? s.url('ISSUER', publicUrl).href : publicUrl).replace(/\/+$/, '');

  const allowedOrigins: string[] = [];
  for (const o of s.list('ALLOWED_ORIGINS') ?? [publicUrlParsed.origin]) {
    try {
      const u = new URL(o);
      if ((u.protocol !== 'http:' && u.protocol !== 'https:') || u.origin !== o.replace(/\/$/, '')) throw new Error();
      allowedOrigins.push(u.origin);
    } catch {
      s.problem(`ALLOWED_ORIGINS entries must be exact origins like https://app.example.com, got "${o}"`);
    }
  }
  return {
    port,
    host,
    publicUrl,
    secureCookies: publicUrlParsed.protocol === 'https:',
    issuer,
    allowedOrigins,
    trustProxy: parseTrustProxy(s),
  };
}

function parseTrustProxy(s: Settings): Config['trustProxy'] {
  const raw = s.str('TRUST_PROXY');
  if (raw === undefined || /^(false|0)$/i.test(raw)) return false;
  if (/^true$/i.test(raw)) {
    s.problem(
      'TRUST_PROXY=true would trust the left-most X-Forwarded-For entry, which the client writes itself (any client could choose ' +
        'its IP for the rate limits and the audit log): set the number of proxies in front of the gateway (e.g. TRUST_PROXY=1 ' +
        'behind one load balancer) or their addresses or CIDRs (e.g. TRUST_PROXY=10.0.0.0/8)',
    );
    return false;
  }
  if (/^\d+$/.test(raw)) {
    const hops = Number(raw);
    if (hops <= 100) return hops;
  }
  const entries = raw
    .split(',')
    .map((e) => e.trim())
    .filter(Boolean);
  const valid = (entry: string) => {
    if (PROXY_RANGE_NAMES.includes(entry)) return true;
    const [address = '', prefix, extra] = entry.split('/');
    const family = isIP(address);
    if (!family || extra !== undefined) return false;
    return prefix === undefined || (/^\d{1,3}$/.test(prefix) && Number(prefix) <= (family === 4 ? 32 : 128));
  };
  if (!entries.length || !entries.every(valid)) {
    s.problem(
      `TRUST_PROXY must be the number of proxies in front of the gateway (1-100) or a comma list of their addresses or CIDRs (e.g. 10.0.0.0/8,192.168.1.7; also loopback, linklocal, uniquelocal), got "${raw}"`,
    );
    return false;
  }
  return entries;
}

/** DATABASE_URL, DATABASE_EMBEDDED, DATABASE_CONNECT_TIMEOUT and DATA_DIR. */
function parseStorage(s: Settings, env: Config['env']) {
  const databaseUrl = s.str('DATABASE_URL');
  if (databaseUrl !== undefined && !/^postgres(ql)?:\/\//.test(databaseUrl)) {
    s.problem('DATABASE_URL must be a postgres:// or postgresql:// URL');
  }
  const embedded = s.optionalBool('DATABASE_EMBEDDED');
  if (embedded === true && databaseUrl !== undefined) {
    s.problem('DATABASE_EMBEDDED=true and DATABASE_URL are both set: choose one (DATABASE_URL for Postgres, or the embedded database)');
  } else if (embedded === false && databaseUrl === undefined) {
    s.problem('DATABASE_EMBEDDED=false needs DATABASE_URL (postgres://…)');
  } else if (env === 'production' && databaseUrl === undefined && embedded !== true) {
    // a production instance that silently keeps its users in a local directory loses them with its container
    s.problem(
      'NODE_ENV=production needs DATABASE_URL (postgres://…), or DATABASE_EMBEDDED=true to keep the data in the embedded database under DATA_DIR on purpose',
    );
  }
  return {
    databaseUrl,
    databaseConnectTimeout: s.int('DATABASE_CONNECT_TIMEOUT', 30, 0, 3600),
    dataDir: resolve(s.str('DATA_DIR') ?? './data'),
  };
}

/** SECRET_KEY, and during a key change the previous one (read, never written with). */
function parseSecretKeys(s: Settings, env: Config['env']): { secretKey: Buffer | undefined; secretKeyPrevious: Buffer | undefined } {
  const secretKey = parseSecretKey(s, env);
  const raw = s.str('SECRET_KEY_PREVIOUS');
  if (raw === undefined) return { secretKey, secretKeyPrevious: undefined };
  const previous = decodeSecret(raw);
  if (!previous || previous.length < 32) {
    s.problem('SECRET_KEY_PREVIOUS must be the previous SECRET_KEY, as it was set (hex or base64, at least 32 bytes)');
    return { secretKey, secretKeyPrevious: undefined };
  }
  if (s.str('SECRET_KEY') === undefined) s.problem('SECRET_KEY_PREVIOUS is only read together with a new SECRET_KEY');
  return { secretKey, secretKeyPrevious: previous };
}

function parseSecretKey(s: Settings, env: Config['env']): Buffer | undefined {
  const raw = s.str('SECRET_KEY');
  if (raw === undefined) {
    if (env === 'production') s.problem('SECRET_KEY is required when NODE_ENV=production (e.g. `openssl rand -base64 32`)');
    return undefined;
  }
  const key = decodeSecret(raw);
  if (!key || key.length < 32) {
    s.problem('SECRET_KEY must be at least 32 random bytes, hex or base64 encoded (e.g. `openssl rand -base64 32`)');
    return undefined;
  }
  const weak = weakSecretReason(key);
  if (weak) {
    s.problem(`SECRET_KEY has too little entropy (${weak}): use a random one, e.g. \`openssl rand -base64 32\``);
    return undefined;
  }
  return key;
}

/** Token lifetimes, audiences, the signing algorithm and the key life cycle. */
function parseTokens(s: Settings, issuer: string) {
  const accessTokenTtl = s.int('ACCESS_TOKEN_TTL', 600, 30, 86400);
  const accessTokenAudience = s.list('ACCESS_TOKEN_AUDIENCE') ?? [issuer];
  // SESSION_MAX_AGE below REFRESH_TOKEN_TTL is not an error: the absolute limit simply wins (README)
  const refreshTokenTtl = s.int('REFRESH_TOKEN_TTL', 1209600, 60);
  const sessionMaxAge = s.int('SESSION_MAX_AGE', 2592000, 60);
  const refreshGracePeriod = s.int('REFRESH_GRACE_PERIOD', 10, 0, 60);
  const linkMaxAuthAge = s.int('LINK_MAX_AUTH_AGE', 300, 30, 3600);

  const algRaw = s.str('SIGNING_ALG') ?? 'ES256';
  const signingAlg = (SIGNING_ALGS as readonly string[]).includes(algRaw) ? (algRaw as SigningAlg) : 'ES256';
  if (signingAlg !== algRaw) s.problem(`SIGNING_ALG must be one of ${SIGNING_ALGS.join(', ')}, got "${algRaw}"`);

  const keyRotationInterval = s.int('KEY_ROTATION_INTERVAL', 2592000, 3600);
  const jwksMaxAge = s.int('JWKS_MAX_AGE', 300, 0, 86400);
  const keyCheckInterval = s.int('KEY_CHECK_INTERVAL', 30, 1, 3600);
  if (keyRotationInterval <= jwksMaxAge) s.problem('KEY_ROTATION_INTERVAL must be longer than JWKS_MAX_AGE');
  return {
    accessTokenTtl,
    accessTokenAudience,
    refreshTokenTtl,
    sessionMaxAge,
    refreshGracePeriod,
    linkMaxAuthAge,
    signingAlg,
    keyRotationInterval,
    jwksMaxAge,
    keyCheckInterval,
    loginFlowTtl: s.int('LOGIN_FLOW_TTL', 600, 30, 600),
  };
}

/** Timeouts, background work, the operator tokens, logging and the demo. */
function parseOperations(s: Settings, port: number) {
  const upstreamTimeoutMs = s.int('UPSTREAM_TIMEOUT_MS', 10000, 100, 120000);
  const pruneInterval = s.int('PRUNE_INTERVAL', 300, 0, 86400);
  const metricsToken = s.str('METRICS_TOKEN');
  const demoPage = s.bool('DEMO_PAGE', false);
  const demoProviderPort = s.int('DEMO_PROVIDER_PORT', port < 65535 ? port + 1 : port - 1, 1, 65535);
  if (demoProviderPort === port) s.problem('DEMO_PROVIDER_PORT must differ from PORT');
  const demoAppPort = s.int('DEMO_APP_PORT', port < 65534 ? port + 2 : port - 2, 1, 65535);
  if (demoAppPort === port || demoAppPort === demoProviderPort) s.problem('DEMO_APP_PORT must differ from PORT and DEMO_PROVIDER_PORT');
  const shutdownDelay = s.int('SHUTDOWN_DELAY', 0, 0, 120);
  if (metricsToken !== undefined && metricsToken.length < 16) s.problem('METRICS_TOKEN must be at least 16 characters');

  const adminToken = s.str('ADMIN_TOKEN');
  if (adminToken !== undefined && adminToken.length < 32) s.problem('ADMIN_TOKEN must be at least 32 characters');
  // it travels as "Authorization: Bearer <token>", so it must be an RFC 6750 section 2.1 b64token
  if (adminToken !== undefined && !/^[A-Za-z0-9\-._~+/]+=*$/.test(adminToken)) {
    s.problem('ADMIN_TOKEN may only contain A-Z a-z 0-9 - . _ ~ + / (and trailing =), e.g. `openssl rand -hex 32`');
  }
  const logLevel = s.str('LOG_LEVEL') ?? 'info';
  if (!LOG_LEVELS.includes(logLevel)) s.problem(`LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}`);
  return { upstreamTimeoutMs, pruneInterval, metricsToken, demoPage, demoProviderPort, demoAppPort, shutdownDelay, adminToken, logLevel };
}

/** RATE_LIMIT_* and the Redis that shares the counters. */
function parseRateLimits(s: Settings) {
  const rateLimits = {
    login: s.int('RATE_LIMIT_LOGIN', 30, 0, 1_000_000),
    refresh: s.int('RATE_LIMIT_REFRESH', 120, 0, 1_000_000),
    admin: s.int('RATE_LIMIT_ADMIN', 300, 0, 1_000_000),
    session: s.int('RATE_LIMIT_SESSION', 300, 0, 1_000_000),
    discovery: s.int('RATE_LIMIT_DISCOVERY', 1200, 0, 1_000_000),
    operations: s.int('RATE_LIMIT_OPERATIONS', 1200, 0, 1_000_000),
    token: s.int('RATE_LIMIT_TOKEN', 1200, 0, 1_000_000),
  };
  const redisUrl = s.str('REDIS_URL');
  if (redisUrl !== undefined && !/^rediss?:\/\//.test(redisUrl)) s.problem('REDIS_URL must be a redis:// or rediss:// URL');
  const redisKeyPrefix = s.str('REDIS_KEY_PREFIX') ?? 'auth-gateway:';
  if (!/^[A-Za-z0-9:._-]{1,64}$/.test(redisKeyPrefix)) s.problem('REDIS_KEY_PREFIX may only contain A-Z a-z 0-9 : . _ - (at most 64)');
  return { rateLimits, redisUrl, redisKeyPrefix };
}

/** AUTH_PROVIDERS and each listed provider's PROVIDER_{ID}_* settings. */
function parseProviders(s: Settings, env: Config['env'], publicUrl: string): ProviderConfig[] {
  const providers: ProviderConfig[] = [];
  const seen = new Set<string>();
  for (const id of s.list('AUTH_PROVIDERS') ?? []) {
    if (!PROVIDER_ID.test(id)) {
      s.problem(`AUTH_PROVIDERS: provider id "${id}" must match [a-z0-9-]+`);
      continue;
    }
    if (seen.has(id)) {
      s.problem(`AUTH_PROVIDERS: provider id "${id}" is listed twice`);
      continue;
    }
    seen.add(id);
    const provider = parseProvider(s, id, env, publicUrl);
    if (provider) providers.push(provider);
  }
  return providers;
}

function parseProvider(s: Settings, id: string, env: Config['env'], publicUrl: string): ProviderConfig | undefined {
  const p = providerEnvPrefix(id);
  const typeRaw = s.str(`${p}TYPE`) ?? ((PROVIDER_TYPES as readonly string[]).includes(id) ? id : 'oidc');
  if (!(PROVIDER_TYPES as readonly string[]).includes(typeRaw)) {
    s.problem(`${p}TYPE must be one of ${PROVIDER_TYPES.join(', ')}, got "${typeRaw}"`);
    return undefined;
  }
  const type = typeRaw as ProviderType;
  const clientId = s.str(`${p}CLIENT_ID`);
  if (!clientId) s.problem(`${p}CLIENT_ID is required`);
  const clientSecret = s.str(`${p}CLIENT_SECRET`);
  if (!clientSecret && type !== 'oidc') s.problem(`${p}CLIENT_SECRET is required for ${type}`);
  const tenant = s.str(`${p}TENANT`) ?? 'common';
  let issuerSetting = s.str(`${p}ISSUER`);
  if (type === 'google') issuerSetting ??= 'https://accounts.google.com';
  if (type === 'microsoft') {
    if (!/^[A-Za-z0-9.-]+$/.test(tenant)) s.problem(`${p}TENANT must be a tenant id, domain, common or organizations`);
    const multi = ['common', 'organizations', 'consumers'].includes(tenant);
    issuerSetting ??= `https://login.microsoftonline.com/${multi ? '{tenantid}' : tenant}/v2.0`;
  }
  if ((type === 'oidc' || type === 'google' || type === 'microsoft') && !issuerSetting) {
    s.problem(`${p}ISSUER is required for an oidc provider`);
  }
  if (issuerSetting) {
    try {
      const u = new URL(issuerSetting.replace('{tenantid}', 'tenant'));
      if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new Error();
      if (u.protocol === 'http:' && env === 'production' && !isLoopbackHost(u.hostname)) {
        s.problem(`${p}ISSUER must be https in production`);
      }
    } catch {
      s.problem(`${p}ISSUER must be an absolute http(s) URL, got "${issuerSetting}"`);
    }
  }
  const scopes =
    s
      .str(`${p}SCOPES`)
      ?.split(/[\s,]+/)
      .filter(Boolean) ?? (type === 'github' ? ['read:user', 'user:email'] : ['openid', 'email', 'profile']);
  if (type !== 'github' && !scopes.includes('openid')) s.problem(`${p}SCOPES must include openid`);
  const defaultNames: Record<ProviderType, string> = {
    google: 'Google',
    microsoft: 'Microsoft',
    github: 'GitHub',
    oidc: id.charAt(0).toUpperCase() + id.slice(1),
  };
  return {
    id,
    type,
    name: s.str(`${p}NAME`) ?? defaultNames[type],
    clientId: clientId ?? '',
    clientSecret,
    issuer: issuerSetting?.replace(/\/+$/, ''),
    tenant,
    allowedTenants: s.list(`${p}ALLOWED_TENANTS`) ?? [],
    baseUrl: (s.str(`${p}BASE_URL`) ?? 'https://github.com').replace(/\/+$/, ''),
    apiUrl: (s.str(`${p}API_URL`) ?? 'https://api.github.com').replace(/\/+$/, ''),
    scopes,
    trustEmail: s.bool(`${p}TRUST_EMAIL`, type === 'google' || type === 'github'),
    redirectUri: `${publicUrl}/auth/${id}/callback`,
  };
}

/** The PROVIDER_{ID}_ suffixes parseProvider reads for any type (TYPE, CLIENT_ID, …), learnt by asking it. */
const providerSuffixes = (() => {
  let cached: string[] | undefined;
  return (): string[] => {
    if (cached) return cached;
    const prefix = providerEnvPrefix('probe');
    const names = new Set<string>();
    for (const type of PROVIDER_TYPES) {
      const probe = new Settings({ [`${prefix}TYPE`]: type });
      parseProvider(probe, 'probe', 'development', 'http://localhost');
      for (const name of probe.read) names.add(name.slice(prefix.length));
    }
    // longest first, so CLIENT_SECRET is matched before a shorter suffix could be
    cached = [...names].sort((a, b) => b.length - a.length);
    return cached;
  };
})();

/**
 * Prefixes of the variables the gateway owns: a variable with one of these that no part of parseConfig reads is a
 * typo or a leftover, and is warned about.
 */
const OWNED_PREFIXES = [
  'PROVIDER_',
  'AUTH_',
  'RATE_LIMIT_',
  'SIGNING_',
  'SECRET_',
  'ACCESS_TOKEN_',
  'REFRESH_',
  'SESSION_',
  'KEY_',
  'JWKS_',
  'LOGIN_',
  'LINK_',
  'PRUNE_',
  'SHUTDOWN_',
  'DEMO_',
  'METRICS_',
  'UPSTREAM_',
  'ADMIN_',
  'REDIS_',
  'TRUST_',
  'DATABASE_',
  'ALLOWED_',
  'PUBLIC_',
  'LOG_',
];
/** what Kubernetes sets for every service (REDIS_PORT, AUTH_GATEWAY_SERVICE_HOST, …): not ours to judge */
const SERVICE_LINK = /_(SERVICE_HOST|SERVICE_PORT(_[A-Z0-9_]+)?|PORT(_\d+_(TCP|UDP|SCTP)(_(PROTO|PORT|ADDR))?)?)$/;

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row[j] = Math.min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = row;
  }
  return prev[b.length];
}

function nearest(name: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const d = editDistance(name, c);
    if (d < bestDistance) [best, bestDistance] = [c, d];
  }
  return bestDistance <= Math.max(2, Math.floor(name.length / 5)) ? best : undefined;
}

/** Warnings about variables nothing reads, with the nearest known name. */
function unknownSettingWarnings(env: Env, s: Settings): string[] {
  const warnings: string[] = [];
  const suffixes = providerSuffixes();
  const ignoredProviders = new Map<string, string[]>();
  const configured = s.str('AUTH_PROVIDERS');
  for (const name of Object.keys(env).sort()) {
    if (s.read.has(name) || env[name] === undefined || !OWNED_PREFIXES.some((p) => name.startsWith(p)) || SERVICE_LINK.test(name)) continue;
    if (name.startsWith('PROVIDER_')) {
      const suffix = suffixes.find((x) => name.endsWith(`_${x}`) && name.length > 'PROVIDER_'.length + x.length + 1);
      if (suffix) {
        // a provider setting of a provider that AUTH_PROVIDERS does not list
        const id = name.slice('PROVIDER_'.length, -suffix.length - 1);
        ignoredProviders.set(id, [...(ignoredProviders.get(id) ?? []), name]);
        continue;
      }
    }
    // candidates: every setting read, and the provider settings this name could have meant
    const candidates = new Set(s.read);
    if (name.startsWith('PROVIDER_')) {
      const parts = name.slice('PROVIDER_'.length).split('_');
      for (let k = 1; k < parts.length; k++) {
        for (const suffix of suffixes) candidates.add(`PROVIDER_${parts.slice(0, k).join('_')}_${suffix}`);
      }
    }
    const suggestion = nearest(name, candidates);
    warnings.push(
      `${name} is not a setting of the gateway and is ignored${suggestion ? `; did you mean ${suggestion}?` : ' (see the Configuration table in README.md)'}`,
    );
  }
  for (const [id, names] of ignoredProviders) {
    const providerId = id.toLowerCase().replace(/_/g, '-');
    warnings.push(
      `${names.join(', ')} ${names.length > 1 ? 'are' : 'is'} ignored: provider "${providerId}" is not in AUTH_PROVIDERS (${configured === undefined ? 'unset' : `"${configured}"`})`,
    );
  }
  return warnings;
}

/**
 * parseConfig, with the warnings about unknown and ignored variables, and the names of every setting it read
 * (for this environment: PROVIDER_{ID}_* of the providers it lists).
 */
export function parseConfigWithWarnings(env: Env, files: ConfigFiles = {}): { config: Config; warnings: string[]; read: string[] } {
  const s = new Settings(env);
  const appEnv = parseNodeEnv(s);
  const http = parseHttp(s, appEnv);
  const storage = parseStorage(s, appEnv);
  const secrets = parseSecretKeys(s, appEnv);
  const tokens = parseTokens(s, http.issuer);
  const operations = parseOperations(s, http.port);
  const limits = parseRateLimits(s);
  const providers = parseProviders(s, appEnv, http.publicUrl);
  const clients = parseClients(s, env, files, { production: appEnv === 'production', signingAlg: tokens.signingAlg });
  const warnings = unknownSettingWarnings(env, s);
  // shown with the problems: a misspelt name is often their cause
  if (s.problems.length) throw new ConfigError(s.problems, warnings);
  if (providers.length === 0) {
    warnings.push(
      'no login provider is configured (AUTH_PROVIDERS is empty): nobody can sign in; see "Configuring providers" in README.md',
    );
  }
  return {
    config: { env: appEnv, ...http, ...storage, ...secrets, ...tokens, ...operations, ...limits, providers, ...clients },
    warnings,
    read: [...s.read],
  };
}

/** Pure: the environment (and the text of the files it names) in, the typed configuration out, or one ConfigError listing every problem. */
export function parseConfig(env: Env, files: ConfigFiles = {}): Config {
  return parseConfigWithWarnings(env, files).config;
}

/** CLIENTS_FILE: the static OAuth clients, validated like the ones the admin API registers. */
function parseClients(s: Settings, env: Env, files: ConfigFiles, rules: { production: boolean; signingAlg: SigningAlg }) {
  const clientsFile = s.str('CLIENTS_FILE');
  if (clientsFile === undefined) return { clientsFile, clients: [] };
  const file = files.clientsFile;
  if (!file) {
    s.problem('CLIENTS_FILE is set but was not read (start through loadConfig)');
    return { clientsFile, clients: [] };
  }
  if ('error' in file) {
    s.problem(`CLIENTS_FILE (${clientsFile}) cannot be read: ${file.error}`);
    return { clientsFile, clients: [] };
  }
  // a variable the file names (client_secret: env:NAME) is read, so never warned about as unknown
  const reading: Env = new Proxy(env, {
    get: (target, name) => {
      if (typeof name === 'string') s.read.add(name);
      return target[name as string];
    },
  });
  const parsed = parseClientsFile(file.text, clientsFile, reading, rules);
  for (const p of parsed.problems) s.problem(p);
  return { clientsFile, clients: parsed.clients };
}

/** Reads the files that settings name (relative paths from the working directory). */
async function readConfigFiles(env: Env): Promise<ConfigFiles> {
  const files: ConfigFiles = {};
  const clientsFile = env.CLIENTS_FILE?.trim();
  if (clientsFile) {
    try {
      files.clientsFile = { text: await readFile(resolve(clientsFile), 'utf8') };
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      files.clientsFile = { error: e.code === 'ENOENT' ? 'no such file' : (e.code ?? e.message) };
    }
  }
  return files;
}

/** NODE_ENV as parseConfig reads it. */
export function nodeEnvOf(env: Env): Config['env'] {
  return parseNodeEnv(new Settings(env));
}

/** AUTH_PROVIDERS as parseConfig reads it. */
export function providerIdsOf(env: Env): string[] {
  return new Settings(env).list('AUTH_PROVIDERS') ?? [];
}

export interface LoadedConfig {
  config: Config & { secretKey: Buffer };
  warnings: string[];
}

/**
 * parseConfig(process.env) plus, outside production, a SECRET_KEY generated once into DATA_DIR/secret-key
 * (mode 0600) so that a development instance keeps its signing keys readable across restarts. DATA_DIR is
 * checked (created, writable) whenever it is used: for that key or for the embedded database.
 */
export async function loadConfig(env: Env = process.env): Promise<LoadedConfig> {
  const { config, warnings } = parseConfigWithWarnings(env, await readConfigFiles(env));
  if (!config.databaseUrl || !config.secretKey) await ensureWritableDir(config.dataDir, 'DATA_DIR');
  if (config.secretKey) return { config: { ...config, secretKey: config.secretKey }, warnings };
  const file = join(config.dataDir, 'secret-key');
  let secretKey: Buffer | undefined;
  try {
    secretKey = decodeSecret(await readFile(file, 'utf8'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new StartupError(`cannot read ${file}: ${fsReason(err)}`, { cause: err });
  }
  if (!secretKey || secretKey.length < 32) {
    secretKey = randomBytes(32);
    try {
      await writeFile(file, `${secretKey.toString('base64')}\n`, { mode: 0o600 });
    } catch (err) {
      throw new StartupError(`cannot write the development key to ${file}: ${fsReason(err)}`, { cause: err });
    }
    warnings.push(`SECRET_KEY is not set: generated a development key into ${file}. Set SECRET_KEY in production.`);
  } else {
    warnings.push(`SECRET_KEY is not set: using the development key in ${file}. Set SECRET_KEY in production.`);
  }
  return { config: { ...config, secretKey }, warnings };
}
