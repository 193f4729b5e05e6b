// The only module that reads process.env. parseConfig() is pure (env and the text of the files it names in, typed
// config or one ConfigError listing every problem out); loadConfig() reads those files (CLIENTS_FILE) and adds the
// development-only generated SECRET_KEY in DATA_DIR.
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseClientsFile, type StaticClientConfig } from './oauth/clients-file.js';

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
  /** seconds between SIGTERM (readiness turns 503) and closing the listener, for load balancers to drain */
  shutdownDelay: number;
  adminToken: string | undefined;
  /** requests per minute per client IP and route; 0 turns a limit off */
  rateLimits: { login: number; refresh: number; admin: number };
  /** shared rate-limit store; in-process counting when unset */
  redisUrl: string | undefined;
  /** prefix of every Redis key, so several deployments can share one Redis */
  redisKeyPrefix: string;
  logLevel: string;
  /** Fastify trustProxy: false, true, a hop count or a comma list of addresses/CIDRs */
  trustProxy: boolean | number | string;
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

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

const PROVIDER_TYPES: readonly ProviderType[] = ['google', 'microsoft', 'github', 'oidc'];
const SIGNING_ALGS: readonly SigningAlg[] = ['ES256', 'EdDSA', 'RS256'];
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
const PROVIDER_ID = /^[a-z0-9-]+$/;

/** Decodes a hex or base64/base64url secret; undefined when it is neither. */
export function decodeSecret(value: string): Buffer | undefined {
  const v = value.trim();
  if (/^[0-9a-fA-F]+$/.test(v) && v.length % 2 === 0 && v.length >= 64) return Buffer.from(v, 'hex');
  if (/^[A-Za-z0-9+/_-]+={0,2}$/.test(v)) return Buffer.from(v.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
  return undefined;
}

export function providerEnvPrefix(id: string): string {
  return `PROVIDER_${id.toUpperCase().replace(/-/g, '_')}_`;
}

export function parseConfig(env: Env, files: ConfigFiles = {}): Config {
  const problems: string[] = [];
  const str = (name: string): string | undefined => {
    const v = env[name];
    return v === undefined || v.trim() === '' ? undefined : v.trim();
  };
  const int = (name: string, def: number, min: number, max = Number.MAX_SAFE_INTEGER): number => {
    const v = str(name);
    if (v === undefined) return def;
    if (!/^\d+$/.test(v)) {
      problems.push(`${name} must be a whole number, got "${v}"`);
      return def;
    }
    const n = Number(v);
    if (n < min || n > max) {
      problems.push(`${name} must be between ${min} and ${max}, got ${n}`);
      return def;
    }
    return n;
  };
  const url = (name: string, def: string): URL => {
    const v = str(name) ?? def;
    try {
      const u = new URL(v);
      if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('scheme');
      return u;
    } catch {
      problems.push(`${name} must be an absolute http(s) URL, got "${v}"`);
      return new URL(def);
    }
  };
  const bool = (name: string, def: boolean): boolean => {
    const v = str(name)?.toLowerCase();
    if (v === undefined) return def;
    if (['1', 'true', 'yes', 'on'].includes(v)) return true;
    if (['0', 'false', 'no', 'off'].includes(v)) return false;
    problems.push(`${name} must be true or false, got "${v}"`);
    return def;
  };
  const list = (name: string): string[] | undefined =>
    str(name)
      ?.split(',')
      .map((s) => s.trim())
      .filter(Boolean);

  const nodeEnv = str('NODE_ENV');
  const appEnv: Config['env'] = nodeEnv === 'production' ? 'production' : nodeEnv === 'test' ? 'test' : 'development';

  const port = int('PORT', 3000, 0, 65535);
  const host = str('HOST') ?? '0.0.0.0';
  const publicUrlParsed = url('PUBLIC_URL', 'http://localhost:3000');
  if (publicUrlParsed.search || publicUrlParsed.hash) problems.push('PUBLIC_URL must not have a query or fragment');
  const publicUrl = publicUrlParsed.href.replace(/\/+$/, '');
  const issuer = (str('ISSUER') ? url('ISSUER', publicUrl).href : publicUrl).replace(/\/+$/, '');

  const databaseUrl = str('DATABASE_URL');
  if (databaseUrl !== undefined && !/^postgres(ql)?:\/\//.test(databaseUrl)) {
    problems.push('DATABASE_URL must be a postgres:// or postgresql:// URL');
  }
  const dataDir = resolve(str('DATA_DIR') ?? './data');

  let secretKey: Buffer | undefined;
  const rawSecret = str('SECRET_KEY');
  if (rawSecret !== undefined) {
    secretKey = decodeSecret(rawSecret);
    if (!secretKey || secretKey.length < 32) {
      problems.push('SECRET_KEY must be at least 32 random bytes, hex or base64 encoded (e.g. `openssl rand -base64 32`)');
      secretKey = undefined;
    }
  } else if (appEnv === 'production') {
    problems.push('SECRET_KEY is required when NODE_ENV=production (e.g. `openssl rand -base64 32`)');
  }
  let secretKeyPrevious: Buffer | undefined;
  const rawPrevious = str('SECRET_KEY_PREVIOUS');
  if (rawPrevious !== undefined) {
    secretKeyPrevious = decodeSecret(rawPrevious);
    if (!secretKeyPrevious || secretKeyPrevious.length < 32) {
      problems.push('SECRET_KEY_PREVIOUS must be the previous SECRET_KEY, as it was set (hex or base64, at least 32 bytes)');
      secretKeyPrevious = undefined;
    } else if (rawSecret === undefined) {
      problems.push('SECRET_KEY_PREVIOUS is only read together with a new SECRET_KEY');
    }
  }

  const allowedOrigins: string[] = [];
  for (const o of list('ALLOWED_ORIGINS') ?? [publicUrlParsed.origin]) {
    try {
      const u = new URL(o);
      if ((u.protocol !== 'http:' && u.protocol !== 'https:') || u.origin !== o.replace(/\/$/, '')) throw new Error();
      allowedOrigins.push(u.origin);
    } catch {
      problems.push(`ALLOWED_ORIGINS entries must be exact origins like https://app.example.com, got "${o}"`);
    }
  }

  const accessTokenTtl = int('ACCESS_TOKEN_TTL', 600, 30, 86400);
  const accessTokenAudience = list('ACCESS_TOKEN_AUDIENCE') ?? [issuer];
  const refreshTokenTtl = int('REFRESH_TOKEN_TTL', 1209600, 60);
  const sessionMaxAge = int('SESSION_MAX_AGE', 2592000, 60);
  const refreshGracePeriod = int('REFRESH_GRACE_PERIOD', 10, 0, 60);
  const linkMaxAuthAge = int('LINK_MAX_AUTH_AGE', 300, 30, 3600);

  const algRaw = str('SIGNING_ALG') ?? 'ES256';
  const signingAlg = (SIGNING_ALGS as readonly string[]).includes(algRaw) ? (algRaw as SigningAlg) : 'ES256';
  if (signingAlg !== algRaw) problems.push(`SIGNING_ALG must be one of ${SIGNING_ALGS.join(', ')}, got "${algRaw}"`);

  const keyRotationInterval = int('KEY_ROTATION_INTERVAL', 2592000, 3600);
  const jwksMaxAge = int('JWKS_MAX_AGE', 300, 0, 86400);
  const keyCheckInterval = int('KEY_CHECK_INTERVAL', 30, 1, 3600);
  if (keyRotationInterval <= jwksMaxAge) {
    problems.push('KEY_ROTATION_INTERVAL must be longer than JWKS_MAX_AGE');
  }
  const loginFlowTtl = int('LOGIN_FLOW_TTL', 600, 30, 600);
  const upstreamTimeoutMs = int('UPSTREAM_TIMEOUT_MS', 10000, 100, 120000);
  const pruneInterval = int('PRUNE_INTERVAL', 300, 0, 86400);
  const metricsToken = str('METRICS_TOKEN');
  const demoPage = bool('DEMO_PAGE', false);
  const shutdownDelay = int('SHUTDOWN_DELAY', 0, 0, 120);
  if (metricsToken !== undefined && metricsToken.length < 16) problems.push('METRICS_TOKEN must be at least 16 characters');

  const adminToken = str('ADMIN_TOKEN');
  if (adminToken !== undefined && adminToken.length < 32) problems.push('ADMIN_TOKEN must be at least 32 characters');
  // it travels as "Authorization: Bearer <token>", so it must be an RFC 6750 section 2.1 b64token
  if (adminToken !== undefined && !/^[A-Za-z0-9\-._~+/]+=*$/.test(adminToken)) {
    problems.push('ADMIN_TOKEN may only contain A-Z a-z 0-9 - . _ ~ + / (and trailing =), e.g. `openssl rand -hex 32`');
  }

  const rateLimits = {
    login: int('RATE_LIMIT_LOGIN', 30, 0, 1_000_000),
    refresh: int('RATE_LIMIT_REFRESH', 120, 0, 1_000_000),
    admin: int('RATE_LIMIT_ADMIN', 300, 0, 1_000_000),
  };
  const redisUrl = str('REDIS_URL');
  if (redisUrl !== undefined && !/^rediss?:\/\//.test(redisUrl)) problems.push('REDIS_URL must be a redis:// or rediss:// URL');
  const redisKeyPrefix = str('REDIS_KEY_PREFIX') ?? 'auth-gateway:';
  if (!/^[A-Za-z0-9:._-]{1,64}$/.test(redisKeyPrefix)) problems.push('REDIS_KEY_PREFIX may only contain A-Z a-z 0-9 : . _ - (at most 64)');

  const logLevel = str('LOG_LEVEL') ?? 'info';
  if (!LOG_LEVELS.includes(logLevel)) problems.push(`LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}`);

  const trustProxyRaw = str('TRUST_PROXY');
  let trustProxy: Config['trustProxy'] = false;
  if (trustProxyRaw !== undefined) {
    if (/^(true|false)$/i.test(trustProxyRaw)) trustProxy = trustProxyRaw.toLowerCase() === 'true';
    else if (/^\d+$/.test(trustProxyRaw)) trustProxy = Number(trustProxyRaw);
    else trustProxy = trustProxyRaw;
  }

  const providers: ProviderConfig[] = [];
  const ids = list('AUTH_PROVIDERS') ?? [];
  const seen = new Set<string>();
  for (const id of ids) {
    if (!PROVIDER_ID.test(id)) {
      problems.push(`AUTH_PROVIDERS: provider id "${id}" must match [a-z0-9-]+`);
      continue;
    }
    if (seen.has(id)) {
      problems.push(`AUTH_PROVIDERS: provider id "${id}" is listed twice`);
      continue;
    }
    seen.add(id);
    const p = providerEnvPrefix(id);
    const typeRaw = str(`${p}TYPE`) ?? ((PROVIDER_TYPES as readonly string[]).includes(id) ? id : 'oidc');
    if (!(PROVIDER_TYPES as readonly string[]).includes(typeRaw)) {
      problems.push(`${p}TYPE must be one of ${PROVIDER_TYPES.join(', ')}, got "${typeRaw}"`);
      continue;
    }
    const type = typeRaw as ProviderType;
    const clientId = str(`${p}CLIENT_ID`);
    if (!clientId) problems.push(`${p}CLIENT_ID is required`);
    const clientSecret = str(`${p}CLIENT_SECRET`);
    if (!clientSecret && type !== 'oidc') problems.push(`${p}CLIENT_SECRET is required for ${type}`);
    const tenant = str(`${p}TENANT`) ?? 'common';
    let issuerSetting = str(`${p}ISSUER`);
    if (type === 'google') issuerSetting ??= 'https://accounts.google.com';
    if (type === 'microsoft') {
      if (!/^[A-Za-z0-9.-]+$/.test(tenant)) problems.push(`${p}TENANT must be a tenant id, domain, common or organizations`);
      const multi = ['common', 'organizations', 'consumers'].includes(tenant);
      issuerSetting ??= `https://login.microsoftonline.com/${multi ? '{tenantid}' : tenant}/v2.0`;
    }
    if ((type === 'oidc' || type === 'google' || type === 'microsoft') && !issuerSetting) {
      problems.push(`${p}ISSUER is required for an oidc provider`);
    }
    if (issuerSetting) {
      try {
        const u = new URL(issuerSetting.replace('{tenantid}', 'tenant'));
        if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new Error();
        if (u.protocol === 'http:' && appEnv === 'production' && !['localhost', '127.0.0.1'].includes(u.hostname)) {
          problems.push(`${p}ISSUER must be https in production`);
        }
      } catch {
        problems.push(`${p}ISSUER must be an absolute http(s) URL, got "${issuerSetting}"`);
      }
    }
    const scopes =
      str(`${p}SCOPES`)
        ?.split(/[\s,]+/)
        .filter(Boolean) ?? (type === 'github' ? ['read:user', 'user:email'] : ['openid', 'email', 'profile']);
    if (type !== 'github' && !scopes.includes('openid')) problems.push(`${p}SCOPES must include openid`);
    const defaultNames: Record<ProviderType, string> = {
      google: 'Google',
      microsoft: 'Microsoft',
      github: 'GitHub',
      oidc: id.charAt(0).toUpperCase() + id.slice(1),
    };
    providers.push({
      id,
      type,
      name: str(`${p}NAME`) ?? defaultNames[type],
      clientId: clientId ?? '',
      clientSecret,
      issuer: issuerSetting?.replace(/\/+$/, ''),
      tenant,
      allowedTenants: list(`${p}ALLOWED_TENANTS`) ?? [],
      baseUrl: (str(`${p}BASE_URL`) ?? 'https://github.com').replace(/\/+$/, ''),
      apiUrl: (str(`${p}API_URL`) ?? 'https://api.github.com').replace(/\/+$/, ''),
      scopes,
      trustEmail: bool(`${p}TRUST_EMAIL`, type === 'google' || type === 'github'),
      redirectUri: `${publicUrl}/auth/${id}/callback`,
    });
  }

  const clientsFile = str('CLIENTS_FILE');
  let clients: StaticClientConfig[] = [];
  if (clientsFile !== undefined) {
    const file = files.clientsFile;
    if (!file) problems.push('CLIENTS_FILE is set but was not read (start through loadConfig)');
    else if ('error' in file) problems.push(`CLIENTS_FILE (${clientsFile}) cannot be read: ${file.error}`);
    else {
      const parsed = parseClientsFile(file.text, clientsFile, env, { production: appEnv === 'production', signingAlg });
      problems.push(...parsed.problems);
      clients = parsed.clients;
    }
  }

  if (problems.length) throw new ConfigError(problems);

  return {
    env: appEnv,
    port,
    host,
    publicUrl,
    secureCookies: publicUrlParsed.protocol === 'https:',
    issuer,
    databaseUrl,
    dataDir,
    secretKey,
    secretKeyPrevious,
    providers,
    allowedOrigins,
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
    loginFlowTtl,
    upstreamTimeoutMs,
    pruneInterval,
    metricsToken,
    demoPage,
    shutdownDelay,
    adminToken,
    rateLimits,
    redisUrl,
    redisKeyPrefix,
    logLevel,
    trustProxy,
    clientsFile,
    clients,
  };
}

export interface LoadedConfig {
  config: Config & { secretKey: Buffer };
  warnings: string[];
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

/**
 * parseConfig(process.env, the files it names) plus, outside production, a SECRET_KEY generated once into DATA_DIR/secret-key
 * (mode 0600) so that a development instance keeps its signing keys readable across restarts.
 */
export async function loadConfig(env: Env = process.env): Promise<LoadedConfig> {
  const config = parseConfig(env, await readConfigFiles(env));
  const warnings: string[] = [];
  if (config.secretKey) return { config: { ...config, secretKey: config.secretKey }, warnings };
  const file = join(config.dataDir, 'secret-key');
  let secretKey: Buffer | undefined;
  try {
    secretKey = decodeSecret(await readFile(file, 'utf8'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  if (!secretKey || secretKey.length < 32) {
    secretKey = randomBytes(32);
    await mkdir(config.dataDir, { recursive: true });
    await writeFile(file, `${secretKey.toString('base64')}\n`, { mode: 0o600 });
    warnings.push(`SECRET_KEY is not set: generated a development key into ${file}. Set SECRET_KEY in production.`);
  } else {
    warnings.push(`SECRET_KEY is not set: using the development key in ${file}. Set SECRET_KEY in production.`);
  }
  return { config: { ...config, secretKey }, warnings };
}
