// Admin: OAuth clients of the OpenID Provider. Registration takes RFC 7591 client metadata (and `audience`) and
// answers with the RFC 7591 section 3.2.1 response; a secret is shown once, when it is made. CLIENTS_FILE clients
// are listed with "source": "file" and are read-only here (409).
import { type Static, Type } from '@sinclair/typebox';
import type { FastifyRequest } from 'fastify';
import { sql } from 'kysely';
import type { App } from '../context.js';
import { AppError, invalidRequest, notFound } from '../errors.js';
import { perMinute } from '../http/rate-limit.js';
import { AUTH_METHODS, type Client, clientBody, clientFromRow, GRANT_TYPES } from '../oauth/clients.js';
import { ErrorBody } from '../schemas.js';
import { cursorTime, keysetPage } from './cursor.js';
import { adminErrors, CursorParam, Limit, Timestamp } from './schemas.js';

/** the client ids the gateway makes (22 base64url characters) and the ones CLIENTS_FILE allows */
const ClientId = Type.String({ pattern: '^[A-Za-z0-9._~-]{1,64}$' });
const IdParams = Type.Object({ id: ClientId }, { additionalProperties: false });
const ListQuery = Type.Object({ limit: Type.Optional(Limit), cursor: Type.Optional(CursorParam) }, { additionalProperties: false });
const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(t: T) => Type.Union([t, Type.Null()]);
/** a string enum as JSON Schema `enum`: its refusal names the allowed values */
const StringEnum = <T extends string>(values: readonly T[]) => Type.Unsafe<T>({ type: 'string', enum: [...values] });
const Uris = Type.Array(Type.String({ maxLength: 2000 }), { maxItems: 32 });
const Alg = StringEnum(['RS256', 'ES256', 'EdDSA'] as const);
const Method = StringEnum(AUTH_METHODS);

const metadataProperties = {
  client_name: Type.Optional(Nullable(Type.String({ maxLength: 200 }))),
  redirect_uris: Type.Optional(Uris),
  post_logout_redirect_uris: Type.Optional(Uris),
  grant_types: Type.Optional(Type.Array(StringEnum(GRANT_TYPES), { maxItems: 3 })),
  response_types: Type.Optional(Type.Array(StringEnum(['code'] as const), { maxItems: 1 })),
  token_endpoint_auth_method: Type.Optional(Method),
  scope: Type.Optional(Type.String({ maxLength: 4000 })),
  audience: Type.Optional(Type.Array(Type.String({ maxLength: 2000 }), { maxItems: 16 })),
  id_token_signed_response_alg: Type.Optional(Alg),
};
const Registration = Type.Object(metadataProperties, { additionalProperties: false });
const Patch = Type.Object(metadataProperties, { additionalProperties: false, minProperties: 1 });

const AdminClient = Type.Object({
  client_id: Type.String(),
  client_id_issued_at: Type.Integer(),
  client_secret_expires_at: Type.Optional(Type.Literal(0)),
  client_name: Nullable(Type.String()),
  redirect_uris: Type.Array(Type.String()),
  post_logout_redirect_uris: Type.Array(Type.String()),
  grant_types: Type.Array(Type.String()),
  response_types: Type.Array(Type.String()),
  token_endpoint_auth_method: Method,
  scope: Type.String(),
  audience: Type.Array(Type.String()),
  id_token_signed_response_alg: Alg,
  source: Type.Union([Type.Literal('api'), Type.Literal('file')]),
  created_at: Timestamp,
  updated_at: Timestamp,
  secret_rotated_at: Nullable(Timestamp),
});
/** with the secret: the registration and rotation answers, the only ones that carry it */
const ClientWithSecret = Type.Object({ ...AdminClient.properties, client_secret: Type.Optional(Type.String()) });
const ClientWithNewSecret = Type.Object({ ...AdminClient.properties, client_secret: Type.String() });

const clientErrors = { ...adminErrors, 404: ErrorBody, 409: ErrorBody };

const CURSOR = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z)\|([A-Za-z0-9._~-]{1,64})$/;

/** The clients list's cursor (created_at with microseconds, and the text client_id); anything else is a 400. */
function decodeClientCursor(value: string): { at: string; id: string } {
  const m = CURSOR.exec(Buffer.from(value, 'base64url').toString('utf8'));
  const ms = m ? `${m[1].slice(0, 23)}Z` : '';
  if (!m || Number.isNaN(Date.parse(ms)) || new Date(ms).toISOString() !== ms) throw invalidRequest('The cursor is not valid.');
  return { at: m[1], id: m[2] };
}

/**
 * The route's schema refusals. A body that fails its schema is a registration error (RFC 7591 section 3.2.2):
 * invalid_redirect_uri or invalid_client_metadata, naming the field. Anything else is invalid_request.
 */
function refuseInvalid(request: FastifyRequest): void {
  const err = request.validationError;
  // Fastify stops at the first part that fails, and the body comes before the query string: an unknown query
  // parameter is named whatever the body holds, as on every other admin route
  const unknown = Object.keys((request.query as Record<string, unknown> | undefined) ?? {});
  if (unknown.length > 0) throw invalidRequest(`unknown query parameter "${unknown[0]}"; this route takes no query parameters.`);
  if (!err) return;
  const first = (err.validation as { instancePath: string; message?: string; params?: Record<string, unknown> }[])[0];
  if (err.validationContext !== 'body' || !first) throw invalidRequest(err.message);
  if (first.params?.additionalProperty !== undefined) {
    throw new AppError(
      'invalid_client_metadata',
      400,
      `${String(first.params.additionalProperty)}: is not a client metadata field the gateway knows`,
    );
  }
  const segments = first.instancePath.split('/').slice(1);
  if (segments.length === 0) {
    throw invalidRequest(
      first.params?.limit === 1 ? 'Name at least one field to change.' : 'A JSON object of client metadata is required.',
    );
  }
  const field = segments.map((s, i) => (i === 0 ? s : `[${s}]`)).join('');
  const allowed = first.params?.allowedValues ?? first.params?.allowedValue;
  const message = allowed !== undefined ? `must be one of ${[allowed].flat().join(', ')}` : (first.message ?? 'is not valid');
  const code = /^(redirect_uris|post_logout_redirect_uris)\b/.test(field) ? 'invalid_redirect_uri' : 'invalid_client_metadata';
  throw new AppError(code, 400, `${field}: ${message}`);
}

export async function clientRoutes(app: App): Promise<void> {
  const { config, storage, clients } = app.ctx;
  const db = storage.db;
  const limited = { config: perMinute(config.rateLimits.admin) };
  const who = (request: FastifyRequest) => ({ actor: request.adminActor, ip: request.ip });

  /** read from the database, not this instance's cache: what every instance acts on */
  const current = async (id: string): Promise<Client> => {
    const file = clients.fileClient(id);
    if (file) return file;
    const row = await db.selectFrom('clients').selectAll().where('id', '=', id).where('source', '=', 'api').executeTakeFirst();
    if (!row) throw notFound('No such client.');
    return clientFromRow(row);
  };

  app.get(
    '/admin/clients',
    {
      ...limited,
      schema: {
        querystring: ListQuery,
        response: { 200: Type.Object({ clients: Type.Array(AdminClient), next_cursor: Nullable(Type.String()) }), ...adminErrors },
      },
    },
    async (request) => {
      const limit = request.query.limit ?? 50;
      const after = request.query.cursor ? decodeClientCursor(request.query.cursor) : undefined;
      // this instance's CLIENTS_FILE clients (rows left by another instance's file are not this instance's clients)
      const fileIds = config.clients.map((c) => c.clientId);
      let query = db
        .selectFrom('clients')
        .selectAll()
        .select(cursorTime('clients.created_at').as('cursor_at'))
        .where((eb) => (fileIds.length ? eb.or([eb('source', '=', 'api'), eb('id', 'in', fileIds)]) : eb('source', '=', 'api')));
      if (after) query = query.where(sql<boolean>`(clients.created_at, clients.id) > (${after.at}::timestamptz, ${after.id})`);
      const rows = await query
        .orderBy('created_at')
        .orderBy('id')
        .limit(limit + 1)
        .execute();
      const { items, next_cursor } = keysetPage(rows, limit, (row) => clientBody(clients.fileClient(row.id) ?? clientFromRow(row)));
      return { clients: items, next_cursor };
    },
  );

  app.post(
    '/admin/clients',
    { ...limited, attachValidation: true, schema: { body: Registration, response: { 201: ClientWithSecret, ...adminErrors } } },
    async (request, reply) => {
      refuseInvalid(request);
      const { client, secret } = await clients.register(request.body as Static<typeof Registration>, who(request));
      // RFC 7591 section 3.2.1: the secret is in this answer only; the gateway keeps nothing but its hash
      return reply.code(201).send({ ...clientBody(client), ...(secret === undefined ? {} : { client_secret: secret }) });
    },
  );

  app.get(
    '/admin/clients/:id',
    { ...limited, schema: { params: IdParams, response: { 200: AdminClient, ...clientErrors } } },
    async (request) => clientBody(await current(request.params.id)),
  );

  app.patch(
    '/admin/clients/:id',
    { ...limited, attachValidation: true, schema: { params: IdParams, body: Patch, response: { 200: AdminClient, ...clientErrors } } },
    async (request) => {
      refuseInvalid(request);
      return clientBody(await clients.update(request.params.id, request.body, who(request)));
    },
  );

  app.delete(
    '/admin/clients/:id',
    { ...limited, schema: { params: IdParams, response: { 204: Type.Null(), ...clientErrors } } },
    async (request, reply) => {
      await clients.remove(request.params.id, who(request));
      return reply.code(204).send(null);
    },
  );

  app.post(
    '/admin/clients/:id/secret',
    {
      ...limited,
      schema: {
        params: IdParams,
        body: Type.Union([Type.Object({}, { additionalProperties: false }), Type.Null()]),
        response: { 200: ClientWithNewSecret, ...clientErrors },
      },
    },
    async (request) => {
      const { client, secret } = await clients.rotateSecret(request.params.id, who(request));
      return { ...clientBody(client), client_secret: secret };
    },
  );
}
