// What sibling services need to verify our tokens: the JWKS and the OpenID configuration.
import { createHash } from 'node:crypto';
import { type Static, Type } from '@sinclair/typebox';
import type { Config } from '../config.js';
import type { App } from '../context.js';
import { publicDocumentHeaders } from '../http/security-headers.js';
import { ErrorBody } from '../schemas.js';

const Jwk = Type.Object(
  {
    kty: Type.String(),
    kid: Type.String(),
    alg: Type.String(),
    use: Type.Literal('sig'),
    crv: Type.Optional(Type.String()),
    x: Type.Optional(Type.String()),
    y: Type.Optional(Type.String()),
    n: Type.Optional(Type.String()),
    e: Type.Optional(Type.String()),
  },
  // the serializer drops anything else: a private member can never leave through this route
  { additionalProperties: false },
);
const Jwks = Type.Object({ keys: Type.Array(Jwk) });

const OpenIdConfiguration = Type.Object({
  issuer: Type.String(),
  jwks_uri: Type.String(),
  authorization_endpoint: Type.String(),
  userinfo_endpoint: Type.String(),
  end_session_endpoint: Type.String(),
  token_endpoint: Type.String(),
  response_types_supported: Type.Array(Type.String()),
  subject_types_supported: Type.Array(Type.String()),
  id_token_signing_alg_values_supported: Type.Array(Type.String()),
  token_endpoint_auth_methods_supported: Type.Array(Type.String()),
  claims_supported: Type.Array(Type.String()),
  access_token_signing_alg_values_supported: Type.Array(Type.String()),
});

export async function discoveryRoutes(app: App): Promise<void> {
  const { config, keys } = app.ctx;
  // ETags are computed once per body: keys.jwks() returns the same object until the published set changes, and
  // the discovery document is built once per set of key algorithms (keys.algorithms() is stable in between)
  const etags = new WeakMap<object, string>();
  const etagOf = (body: object) => {
    let etag = etags.get(body);
    if (!etag) {
      etag = `"${createHash('sha256').update(JSON.stringify(body)).digest('base64url').slice(0, 27)}"`;
      etags.set(body, etag);
    }
    return etag;
  };
  /** RFC 9110 section 13.1.2: If-None-Match is a list of entity tags, or "*" */
  const notModified = (header: string | undefined, etag: string) =>
    header !== undefined && (header.trim() === '*' || header.split(',').some((t) => t.trim().replace(/^W\//, '') === etag));

  const errors = { 429: ErrorBody };
  app.get(
    '/.well-known/jwks.json',
    { helmet: publicDocumentHeaders, schema: { response: { 200: Jwks, 304: Type.Null(), ...errors } } },
    async (request, reply) => {
      const body = keys.jwks();
      const etag = etagOf(body);
      void reply
        .header('cache-control', `public, max-age=${config.jwksMaxAge}`)
        .header('etag', etag)
        .header('access-control-allow-origin', '*');
      if (notModified(request.headers['if-none-match'], etag)) return reply.code(304).send(null);
      return body;
    },
  );

  let document: { algorithms: string[]; body: Static<typeof OpenIdConfiguration> } | undefined;
  const discoveryDocument = () => {
    const algorithms = keys.algorithms();
    if (document?.algorithms !== algorithms) document = { algorithms, body: buildDocument(config, algorithms) };
    return document.body;
  };

  app.get(
    '/.well-known/openid-configuration',
    { helmet: publicDocumentHeaders, schema: { response: { 200: OpenIdConfiguration, 304: Type.Null(), ...errors } } },
    async (request, reply) => {
      const body = discoveryDocument();
      const etag = etagOf(body);
      void reply.header('cache-control', 'public, max-age=3600').header('etag', etag).header('access-control-allow-origin', '*');
      if (notModified(request.headers['if-none-match'], etag)) return reply.code(304).send(null);
      return body;
    },
  );
}

function buildDocument(config: Config, keyAlgorithms: string[]): Static<typeof OpenIdConfiguration> {
  const base = config.publicUrl;
  const algs = [...new Set([config.signingAlg, ...keyAlgorithms])];
  return {
    issuer: config.issuer,
    jwks_uri: `${base}/.well-known/jwks.json`,
    authorization_endpoint: `${base}/auth/providers`,
    userinfo_endpoint: `${base}/auth/userinfo`,
    end_session_endpoint: `${base}/auth/logout`,
    token_endpoint: `${base}/auth/refresh`,
    response_types_supported: ['code'],
    subject_types_supported: ['public'],
    id_token_signing_alg_values_supported: algs,
    token_endpoint_auth_methods_supported: ['none'],
    claims_supported: [
      'iss',
      'sub',
      'aud',
      'exp',
      'iat',
      'jti',
      'sid',
      'client_id',
      'auth_time',
      'email',
      'email_verified',
      'name',
      'roles',
    ],
    access_token_signing_alg_values_supported: algs,
  };
}
