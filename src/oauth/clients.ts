// Registered OAuth clients of the gateway as an OpenID Provider: the Client type, the ClientStore (database clients
// registered through the admin API, and static clients from CLIENTS_FILE), redirect URI matching and client
// authentication at the token, revocation and introspection endpoints.
//
// Caching: each instance keeps what it read from the database for CACHE_TTL_MS (5 s) and drops an entry as soon as
// it changes the client itself. A change made through ANOTHER instance (a rotated secret, a deleted client, new
// redirect URIs) is therefore seen here at most 5 s late; a new client may be refused as unknown for as long.
// Static clients come from this instance's CLIENTS_FILE and are never cached from the database.
import { randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import { recordAudit } from '../audit.js';
import { ConfigError, type SigningAlg } from '../config.js';
import { AppError, conflict, InvalidClientError, invalidRequest, notFound } from '../errors.js';
import type { ClientRow, Database } from '../storage/schema.js';
import {
  type ClientMetadata,
  describeProblem,
  type GrantType,
  isPublic,
  metadataBody,
  type MetadataProblem,
  type MetadataRules,
  type ResponseType,
  type TokenEndpointAuthMethod,
  validateClientMetadata,
} from './client-metadata.js';
import { clientSecretMatches, generateClientSecret, hashClientSecret } from './client-secret.js';
import type { StaticClientConfig } from './clients-file.js';

export * from './client-metadata.js';
export { clientSecretMatches, generateClientSecret, hashClientSecret } from './client-secret.js';
export type { StaticClientConfig } from './clients-file.js';

export interface Client extends ClientMetadata {
  /** the client_id */
  id: string;
  /** 'api': registered through the admin API; 'file': from CLIENTS_FILE (read-only through the API) */
  source: 'api' | 'file';
  /** "sha256:<base64url>" of the secret; null for public clients (token_endpoint_auth_method none) */
  secretHash: string | null;
  createdAt: Date;
  updatedAt: Date;
  secretRotatedAt: Date | null;
}

/** The RFC 7591 body of a client (no secret, no hash), as the admin API answers it. */
export function clientBody(c: Client) {
  return {
    client_id: c.id,
    // RFC 7591 section 3.2.1: seconds since the epoch
    client_id_issued_at: Math.floor(c.createdAt.getTime() / 1000),
    // RFC 7591 section 3.2.1: REQUIRED with a secret; 0: it does not expire
    ...(isPublic(c) ? {} : { client_secret_expires_at: 0 as const }),
    ...metadataBody(c),
    source: c.source,
    created_at: c.createdAt.toISOString(),
    updated_at: c.updatedAt.toISOString(),
    secret_rotated_at: c.secretRotatedAt ? c.secretRotatedAt.toISOString() : null,
  };
}

export const CACHE_TTL_MS = 5000;
const CACHE_MAX = 10_000;
/** longer than any client_id the gateway issues or accepts in CLIENTS_FILE: not looked up */
const MAX_CLIENT_ID = 256;
// eslint-disable-next-line no-control-regex -- control characters are exactly what this refuses
const CONTROL = /[\u0000-\u001f\u007f]/;

/** Who makes a change, for the audit log. */
export interface Actor {
  actor: string;
  ip?: string | null;
}

export interface ClientStoreDeps {
  db: Kysely<Database>;
  now: () => Date;
  /** CLIENTS_FILE, validated by the config module */
  fileClients: readonly StaticClientConfig[];
  /** NODE_ENV=production and SIGNING_ALG: the registration rules */
  rules: MetadataRules;
  /** the realm of the Basic challenge (the issuer) */
  realm: string;
  cacheTtlMs?: number;
}

/** A clients file entry whose client_id the admin API registered already: start-up stops. */
export class ClientsFileConflictError extends ConfigError {
  constructor(readonly ids: string[]) {
    super(ids.map((id) => `CLIENTS_FILE client "${id}": this client_id is already registered through the admin API; choose another one`));
    this.name = 'ClientsFileConflictError';
  }
}

const freeze = (c: Client): Client => {
  for (const v of Object.values(c)) if (Array.isArray(v)) Object.freeze(v);
  return Object.freeze(c);
};

export function clientFromRow(row: ClientRow): Client {
  return freeze({
    id: row.id,
    source: row.source,
    secretHash: row.secret_hash,
    clientName: row.client_name,
    redirectUris: row.redirect_uris,
    postLogoutRedirectUris: row.post_logout_redirect_uris,
    grantTypes: row.grant_types as GrantType[],
    responseTypes: row.response_types as ResponseType[],
    tokenEndpointAuthMethod: row.token_endpoint_auth_method as TokenEndpointAuthMethod,
    scopes: row.scope === '' ? [] : row.scope.split(' '),
    audience: row.audience,
    idTokenSignedResponseAlg: row.id_token_signed_response_alg as SigningAlg,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    secretRotatedAt: row.secret_rotated_at,
  });
}

/** The metadata columns of a row: the same RFC 7591 names as the admin API's body. */
const metadataColumns = metadataBody;

/** The fields whose values differ, by their RFC 7591 names, as { from, to } (never a secret: metadata only). */
function changedFields(before: ClientMetadata, after: ClientMetadata): Record<string, { from: unknown; to: unknown }> {
  const a = metadataBody(before) as Record<string, unknown>;
  const b = metadataBody(after) as Record<string, unknown>;
  const changes: Record<string, { from: unknown; to: unknown }> = {};
  for (const k of Object.keys(b)) if (JSON.stringify(a[k]) !== JSON.stringify(b[k])) changes[k] = { from: a[k], to: b[k] };
  return changes;
}

/** RFC 7591 section 3.2.2: 400 with the code of the first problem, describing every problem with its field. */
function metadataError(problems: MetadataProblem[]): AppError {
  return new AppError(problems[0].error, 400, problems.map(describeProblem).join('; '));
}

/** A new client_id: 128 random bits, base64url (22 characters). */
export const generateClientId = (): string => randomBytes(16).toString('base64url');

export class ClientStore {
  readonly #db: Kysely<Database>;
  readonly #now: () => Date;
  readonly #ttl: number;
  /** CLIENTS_FILE clients, as Clients once start() has written their rows */
  readonly #file = new Map<string, Client>();
  readonly #cache = new Map<string, { client: Client | null; at: number }>();
  /** bumped by every local change: a lookup that started before it does not fill the cache */
  #version = 0;

  constructor(private readonly deps: ClientStoreDeps) {
    this.#db = deps.db;
    this.#now = deps.now;
    this.#ttl = deps.cacheTtlMs ?? CACHE_TTL_MS;
  }

  get realm(): string {
    return this.deps.realm;
  }

  get rules(): MetadataRules {
    return this.deps.rules;
  }

  /**
   * Writes a row for each CLIENTS_FILE client (source 'file'), so that its grants can reference it, and audits what
   * changed since the last start. Its metadata and secret are served from the file, never from that row.
   */
  async start(): Promise<void> {
    const files = this.deps.fileClients;
    if (files.length === 0) return;
    const ids = files.map((c) => c.clientId);
    await this.#db.transaction().execute(async (trx) => {
      const existing = new Map(
        (await trx.selectFrom('clients').selectAll().where('id', 'in', ids).execute()).map((r) => [r.id, clientFromRow(r)] as const),
      );
      const taken = ids.filter((id) => existing.get(id)?.source === 'api');
      if (taken.length) throw new ClientsFileConflictError(taken);
      const now = this.#now();
      for (const f of files) {
        const { clientId, secretHash: _, ...metadata } = f;
        const row = existing.get(clientId);
        if (!row) {
          await trx
            .insertInto('clients')
            .values({ id: clientId, source: 'file', secret_hash: null, ...metadataColumns(metadata), created_at: now, updated_at: now })
            .onConflict((oc) => oc.column('id').doNothing())
            .execute();
          await recordAudit(trx, {
            type: 'client.created',
            actor: 'system',
            details: { client_id: clientId, source: 'file', metadata: metadataBody(metadata) },
            at: now,
          });
          continue;
        }
        const changes = changedFields(row, metadata);
        if (Object.keys(changes).length === 0) continue;
        await trx
          .updateTable('clients')
          .set({ ...metadataColumns(metadata), updated_at: now })
          .where('id', '=', clientId)
          .where('source', '=', 'file')
          .execute();
        await recordAudit(trx, {
          type: 'client.updated',
          actor: 'system',
          details: { client_id: clientId, source: 'file', changes },
          at: now,
        });
      }
    });
    // what the rows say now (another instance may have written one meanwhile)
    const rows = await this.#db.selectFrom('clients').selectAll().where('id', 'in', ids).execute();
    const taken = rows.filter((r) => r.source !== 'file').map((r) => r.id);
    if (taken.length) throw new ClientsFileConflictError(taken);
    const byId = new Map(rows.map((r) => [r.id, r]));
    for (const f of files) {
      const row = byId.get(f.clientId)!;
      const { clientId, secretHash, ...metadata } = f;
      this.#file.set(
        clientId,
        freeze({
          ...metadata,
          id: clientId,
          source: 'file',
          secretHash,
          createdAt: row.created_at,
          updatedAt: row.updated_at,
          secretRotatedAt: null,
        }),
      );
    }
  }

  /** The CLIENTS_FILE client with this id, if any. */
  fileClient(id: string): Client | undefined {
    return this.#file.get(id);
  }

  /** The client with this id: a CLIENTS_FILE client, or one registered through the admin API. */
  async find(id: string): Promise<Client | undefined> {
    // no client_id holds a control character, and U+0000 cannot even be sent to Postgres (a 500, not a miss)
    if (typeof id !== 'string' || id === '' || id.length > MAX_CLIENT_ID || CONTROL.test(id)) return undefined;
    const file = this.#file.get(id);
    if (file) return file;
    const now = this.#now().getTime();
    const hit = this.#cache.get(id);
    if (hit && now - hit.at < this.#ttl) return hit.client ?? undefined;
    const version = this.#version;
    const row = await this.#db.selectFrom('clients').selectAll().where('id', '=', id).where('source', '=', 'api').executeTakeFirst();
    const client = row ? clientFromRow(row) : null;
    if (version === this.#version && this.#ttl > 0) {
      this.#cache.delete(id);
      // the oldest entry goes first (a Map keeps insertion order)
      if (this.#cache.size >= CACHE_MAX) this.#cache.delete(this.#cache.keys().next().value!);
      this.#cache.set(id, { client, at: now });
    }
    return client ?? undefined;
  }

  /** Forgets what this instance cached about a client (after a change it made). */
  invalidate(id: string): void {
    this.#version++;
    this.#cache.delete(id);
    this.#summary = undefined;
  }

  #summary: { at: number; value: Promise<{ publicOrigins: Set<string>; idTokenAlgs: SigningAlg[] }> } | undefined;

  /** What the endpoints ask of every client at once, read at most once per cache period. */
  #summarize(): Promise<{ publicOrigins: Set<string>; idTokenAlgs: SigningAlg[] }> {
    const now = this.#now().getTime();
    if (this.#summary && now - this.#summary.at < this.#ttl) return this.#summary.value;
    const value = (async () => {
      const rows = await this.#db
        .selectFrom('clients')
        .select(['redirect_uris', 'token_endpoint_auth_method', 'grant_types', 'id_token_signed_response_alg'])
        .where('source', '=', 'api')
        .execute();
      const clients = [
        ...rows.map((r) => ({
          redirectUris: r.redirect_uris,
          tokenEndpointAuthMethod: r.token_endpoint_auth_method,
          grantTypes: r.grant_types,
          idTokenSignedResponseAlg: r.id_token_signed_response_alg as SigningAlg,
        })),
        ...this.#file.values(),
      ];
      const publicOrigins = new Set<string>();
      for (const c of clients) {
        if (c.tokenEndpointAuthMethod !== 'none') continue;
        for (const uri of c.redirectUris) {
          const u = URL.parse(uri);
          if (u && (u.protocol === 'https:' || u.protocol === 'http:')) publicOrigins.add(u.origin);
        }
      }
      const idTokenAlgs = [
        ...new Set(clients.filter((c) => c.grantTypes.includes('authorization_code')).map((c) => c.idTokenSignedResponseAlg)),
      ];
      return { publicOrigins, idTokenAlgs };
    })();
    this.#summary = { at: now, value };
    value.catch(() => {
      if (this.#summary?.value === value) this.#summary = undefined;
    });
    return value;
  }

  /**
   * The origins of public clients' redirect URIs: the browser apps the token, revocation and UserInfo endpoints
   * answer CORS for (they hold no secret: their tokens and PKCE are what they prove themselves with).
   */
  async publicOrigins(): Promise<Set<string>> {
    return (await this.#summarize()).publicOrigins;
  }

  /** The algorithms registered clients have their ID tokens signed with (the key manager keeps a key for each). */
  async idTokenAlgs(): Promise<SigningAlg[]> {
    return (await this.#summarize()).idTokenAlgs;
  }

  /**
   * Registers a client from RFC 7591 metadata (and `audience`). Returns it with its secret (confidential clients):
   * the only time the secret exists outside the caller; only its hash is stored. Audited as client.created.
   */
  async register(input: Record<string, unknown>, who: Actor): Promise<{ client: Client; secret: string | undefined }> {
    const result = validateClientMetadata(input, this.deps.rules);
    if (!result.metadata) throw metadataError(result.problems);
    const metadata = result.metadata;
    const secret = isPublic(metadata) ? undefined : generateClientSecret();
    const now = this.#now();
    const id = generateClientId();
    const row = await this.#db.transaction().execute(async (trx) => {
      const inserted = await trx
        .insertInto('clients')
        .values({
          id,
          source: 'api',
          secret_hash: secret === undefined ? null : hashClientSecret(secret),
          ...metadataColumns(metadata),
          created_at: now,
          updated_at: now,
        })
        .returningAll()
        .executeTakeFirstOrThrow();
      await recordAudit(trx, {
        type: 'client.created',
        actor: who.actor,
        ip: who.ip,
        details: { client_id: id, source: 'api', metadata: metadataBody(metadata) },
        at: now,
      });
      return inserted;
    });
    this.invalidate(id);
    return { client: clientFromRow(row), secret };
  }

  /** A client of the admin API locked for a change: 404 when unknown, 409 for a CLIENTS_FILE client. */
  async #lockForChange(trx: Kysely<Database>, id: string): Promise<Client> {
    if (this.#file.has(id)) throw fileClientConflict(id);
    const row = await trx.selectFrom('clients').selectAll().where('id', '=', id).forUpdate().executeTakeFirst();
    if (!row) throw notFound('No such client.');
    if (row.source === 'file') throw fileClientConflict(id);
    return clientFromRow(row);
  }

  /**
   * Changes the metadata fields present in `input` (RFC 7591 names); the result is validated as a whole. Audited
   * as client.updated with each changed field's old and new value. Unchanged: nothing written, nothing audited.
   */
  async update(id: string, input: Record<string, unknown>, who: Actor): Promise<Client> {
    const updated = await this.#db.transaction().execute(async (trx) => {
      const current = await this.#lockForChange(trx, id);
      const result = validateClientMetadata(input, this.deps.rules, current);
      if (!result.metadata) throw metadataError(result.problems);
      const changes = changedFields(current, result.metadata);
      if (Object.keys(changes).length === 0) return current;
      const now = this.#now();
      const row = await trx
        .updateTable('clients')
        .set({ ...metadataColumns(result.metadata), updated_at: now })
        .where('id', '=', id)
        .returningAll()
        .executeTakeFirstOrThrow();
      await recordAudit(trx, { type: 'client.updated', actor: who.actor, ip: who.ip, details: { client_id: id, changes }, at: now });
      return clientFromRow(row);
    });
    this.invalidate(id);
    return updated;
  }

  /** A new secret for a confidential client; the old one stops working at once. Audited as client.secret_rotated. */
  async rotateSecret(id: string, who: Actor): Promise<{ client: Client; secret: string }> {
    const secret = generateClientSecret();
    const client = await this.#db.transaction().execute(async (trx) => {
      const current = await this.#lockForChange(trx, id);
      if (isPublic(current)) throw conflict('A public client (token_endpoint_auth_method none) has no secret to rotate.');
      const now = this.#now();
      const row = await trx
        .updateTable('clients')
        .set({ secret_hash: hashClientSecret(secret), secret_rotated_at: now, updated_at: now })
        .where('id', '=', id)
        .returningAll()
        .executeTakeFirstOrThrow();
      await recordAudit(trx, { type: 'client.secret_rotated', actor: who.actor, ip: who.ip, details: { client_id: id }, at: now });
      return clientFromRow(row);
    });
    this.invalidate(id);
    return { client, secret };
  }

  /**
   * Deletes a client and revokes every grant it holds (its sessions rows), in one transaction: the lock on the
   * client row makes a grant being issued at the same moment wait, and then fail on the missing client.
   * Audited as client.deleted with the number of grants revoked. Returns that number.
   */
  async remove(id: string, who: Actor): Promise<number> {
    const revoked = await this.#db.transaction().execute(async (trx) => {
      const current = await this.#lockForChange(trx, id);
      const now = this.#now();
      const grants = await trx
        .updateTable('sessions')
        .set({ revoked_at: now, revoked_reason: 'client_deleted' })
        .where('client_id', '=', id)
        .where('revoked_at', 'is', null)
        .returning('id')
        .execute();
      await trx.deleteFrom('clients').where('id', '=', id).execute();
      await recordAudit(trx, {
        type: 'client.deleted',
        actor: who.actor,
        ip: who.ip,
        details: { client_id: id, client_name: current.clientName, grants_revoked: grants.length },
        at: now,
      });
      return grants.length;
    });
    this.invalidate(id);
    return revoked;
  }
}

const fileClientConflict = (id: string) =>
  conflict(`Client "${id}" comes from CLIENTS_FILE: change or remove it there (the admin API cannot change file clients).`);

// ---------------------------------------------------------------------------------------------------------------
// Redirect URI matching

/** http://<loopback host>[:port]<rest>, split without normalising (RFC 8252 section 7.3) */
const LOOPBACK_URI = /^http:\/\/(127\.0\.0\.1|\[::1\]|localhost)(?::(\d{1,5}))?([/?].*)?$/s;

/**
 * Is `uri` one of `registered`? Exact string comparison (RFC 6749 section 3.1.2.3, RFC 9700 section 4.1.1: no
 * normalisation, no patterns), except that a registered loopback URI (http on 127.0.0.1, [::1] or localhost)
 * matches the same URI with any port: RFC 8252 section 7.3, native apps listen on a port the OS gives them.
 */
export function matchUri(registered: readonly string[], uri: unknown): boolean {
  if (typeof uri !== 'string' || uri === '') return false;
  if (registered.includes(uri)) return true;
  const got = LOOPBACK_URI.exec(uri);
  if (!got) return false;
  const port = got[2] === undefined ? undefined : Number(got[2]);
  if (port !== undefined && (port < 1 || port > 65535)) return false;
  return registered.some((r) => {
    const reg = LOOPBACK_URI.exec(r);
    return reg !== null && reg[1] === got[1] && (reg[3] ?? '') === (got[3] ?? '');
  });
}

/** The authorization request's redirect_uri against the client's redirect_uris. */
export const matchRedirectUri = (client: Pick<Client, 'redirectUris'>, uri: unknown): boolean => matchUri(client.redirectUris, uri);

/** RP-Initiated Logout's post_logout_redirect_uri against the client's post_logout_redirect_uris. */
export const matchPostLogoutRedirectUri = (client: Pick<Client, 'postLogoutRedirectUris'>, uri: unknown): boolean =>
  matchUri(client.postLogoutRedirectUris, uri);

// ---------------------------------------------------------------------------------------------------------------
// Client authentication (RFC 6749 section 2.3)

export interface ClientAuthRequest {
  /** the Authorization header, as received */
  authorization: string | undefined;
  /** the form-encoded body parameters (@fastify/formbody: a repeated parameter arrives as an array) */
  body: Record<string, unknown> | null | undefined;
}

/** RFC 6749 section 2.3.1: each part was application/x-www-form-urlencoded before base64 */
function formDecode(s: string): string | undefined {
  try {
    return decodeURIComponent(s.replace(/\+/g, ' '));
  } catch {
    return undefined;
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** The credentials of `Basic <base64(urlencode(id):urlencode(secret))>`, or undefined when malformed. */
function basicCredentials(b64: string): { id: string; secret: string } | undefined {
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64) || b64.length % 4 === 1) return undefined;
  let text: string;
  try {
    text = utf8.decode(Buffer.from(b64, 'base64'));
  } catch {
    return undefined;
  }
  const colon = text.indexOf(':');
  if (colon < 0) return undefined;
  const id = formDecode(text.slice(0, colon));
  const secret = formDecode(text.slice(colon + 1));
  if (id === undefined || secret === undefined || id === '') return undefined;
  return { id, secret };
}

/**
 * Authenticates the client of a token, revocation or introspection request (RFC 6749 section 2.3):
 * `client_secret_basic` (HTTP Basic, section 2.3.1), `client_secret_post` (client_id and client_secret in the
 * body), or `none` for a public client (client_id only; PKCE then proves the client at the token endpoint).
 * Exactly one method per request (section 2.3), and it must be the client's registered method. Secrets are
 * compared in constant time.
 *
 * Throws InvalidClientError (401 invalid_client with a Basic challenge, section 5.2), or 400 invalid_request for a
 * request that uses two methods or repeats a parameter (sections 5.2 and 3.2).
 */
export async function authenticateClient(store: ClientStore, request: ClientAuthRequest): Promise<Client> {
  const body = request.body ?? {};
  const fail = (description: string, reason: InvalidClientError['reason'], clientId?: string) =>
    new InvalidClientError(description, reason, clientId, store.realm);
  const param = (name: string): string | undefined => {
    const v = body[name];
    if (v === undefined) return undefined;
    // RFC 6749 section 3.2: parameters MUST NOT be included more than once
    if (Array.isArray(v)) throw invalidRequest(`${name} must not be repeated.`);
    if (typeof v !== 'string') throw invalidRequest(`${name} must be a string.`);
    return v;
  };
  const bodyId = param('client_id');
  const bodySecret = param('client_secret');
  const assertion = param('client_assertion') ?? param('client_assertion_type');

  let basic: { id: string; secret: string } | undefined;
  const header = request.authorization;
  if (header !== undefined) {
    if (!/^Basic(\s|$)/i.test(header)) {
      throw fail('Client authentication supports the Basic scheme only (or client_secret_post).', 'unsupported_method', bodyId);
    }
    const m = /^Basic +(\S+) *$/i.exec(header);
    basic = m ? basicCredentials(m[1]) : undefined;
    if (!basic) throw fail('The Basic credentials are malformed (RFC 6749 section 2.3.1).', 'malformed', bodyId);
  }

  // RFC 6749 section 2.3: the client MUST NOT use more than one authentication method in each request
  const used = [basic !== undefined, bodySecret !== undefined, assertion !== undefined].filter(Boolean).length;
  if (used > 1) throw invalidRequest('The client used more than one authentication method (RFC 6749 section 2.3).');

  let method: TokenEndpointAuthMethod;
  let clientId: string;
  let secret: string | undefined;
  if (basic) {
    if (bodyId !== undefined && bodyId !== basic.id) {
      throw fail('client_id in the body is not the client of the Authorization header.', 'malformed', basic.id);
    }
    ({ id: clientId, secret } = basic);
    method = 'client_secret_basic';
  } else if (assertion !== undefined) {
    throw fail('Client assertions (private_key_jwt, client_secret_jwt) are not supported.', 'unsupported_method', bodyId);
  } else if (bodySecret !== undefined) {
    if (!bodyId) throw fail('client_secret needs client_id (client_secret_post).', 'malformed');
    clientId = bodyId;
    secret = bodySecret;
    method = 'client_secret_post';
  } else if (bodyId) {
    clientId = bodyId;
    method = 'none';
  } else {
    throw fail('Client authentication is required.', 'missing');
  }

  const client = await store.find(clientId);
  if (!client) {
    // as much work as for a known client, so that the timing does not tell which ids exist
    clientSecretMatches(secret ?? '', null);
    throw fail('Client authentication failed.', 'unknown_client', clientId);
  }
  if (client.tokenEndpointAuthMethod !== method) {
    throw fail(`This client authenticates with ${client.tokenEndpointAuthMethod}, not ${method}.`, 'wrong_method', clientId);
  }
  if (method !== 'none' && !clientSecretMatches(secret!, client.secretHash)) {
    throw fail('Client authentication failed.', 'wrong_secret', clientId);
  }
  return client;
}
