// What sibling services and OpenID clients need: the JWKS and the provider metadata (OIDC Discovery, RFC 8414).
import { createHash } from 'node:crypto';
import { type Static, Type } from '@sinclair/typebox';
import type { Config } from '../config.js';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { App } from '../context.js';
import { idTokenAlgs } from '../oauth/client-metadata.js';
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

const Strings = Type.Array(Type.String());
/** OIDC Discovery 1.0 section 3 and RFC 8414 section 2: only what works, and all of it as its spec says. */
const OpenIdConfiguration = Type.Object({
  issuer: Type.String(),
  authorization_endpoint: Type.String(),
  token_endpoint: Type.String(),
  userinfo_endpoint: Type.String(),
  jwks_uri: Type.String(),
  end_session_endpoint: Type.String(),
  revocation_endpoint: Type.String(),
  introspection_endpoint: Type.String(),
  scopes_supported: Strings,
  response_types_supported: Strings,
  response_modes_supported: Strings,
  grant_types_supported: Strings,
  subject_types_supported: Strings,
  id_token_signing_alg_values_supported: Strings,
  token_endpoint_auth_methods_supported: Strings,
  revocation_endpoint_auth_methods_supported: Strings,
  introspection_endpoint_auth_methods_supported: Strings,
  code_challenge_methods_supported: Strings,
  prompt_values_supported: Strings,
  claims_supported: Strings,
  claims_parameter_supported: Type.Boolean(),
  request_parameter_supported: Type.Boolean(),
  request_uri_parameter_supported: Type.Boolean(),
  authorization_response_iss_parameter_supported: Type.Boolean(),
  access_token_signing_alg_values_supported: Strings,
});

const JSON_TYPE = 'application/json; charset=utf-8';

interface SerializedDocument {
  etag: string;
  json: string;
}

export async function discoveryRoutes(app: App): Promise<void> {
  const { config, keys } = app.ctx;
  // Both documents are serialized and given their ETag once per body: keys.jwks() returns the same object until the
  // published set changes, and the discovery document is built once per set of key algorithms (keys.algorithms()
  // is stable in between). The JSON is the route's own serializer's (reply.serialize), sent as it is.
  const documents = new WeakMap<object, SerializedDocument>();
  const documentOf = (body: object, reply: FastifyReply): SerializedDocument => {
    const known = documents.get(body);
    if (known) return known;
    const json = reply.serialize(body) as string;
    const doc = { etag: `"${createHash('sha256').update(json).digest('base64url').slice(0, 27)}"`, json };
    documents.set(body, doc);
    return doc;
  };
  /** Sends what documentOf serialized: a string under a JSON content type goes out as it is. */
  const sendSerialized = (reply: FastifyReply, json: string) => reply.type(JSON_TYPE).send(json);
  /** RFC 9110 section 13.1.2: If-None-Match is a list of entity tags, or "*" */
  const notModified = (header: string | undefined, etag: string) =>
    header !== undefined && (header.trim() === '*' || header.split(',').some((t) => t.trim().replace(/^W\//, '') === etag));

  const errors = { 429: ErrorBody };
  app.get(
    '/.well-known/jwks.json',
    { helmet: publicDocumentHeaders, schema: { response: { 200: Jwks, 304: Type.Null(), ...errors } } },
    async (request, reply) => {
      const { etag, json } = documentOf(keys.jwks(), reply);
      void reply
        .header('cache-control', `public, max-age=${config.jwksMaxAge}`)
        .header('etag', etag)
        .header('access-control-allow-origin', '*');
      if (notModified(request.headers['if-none-match'], etag)) return reply.code(304).send(null);
      return sendSerialized(reply, json);
    },
  );

  let document: { algorithms: string[]; body: Static<typeof OpenIdConfiguration> } | undefined;
  const discoveryDocument = () => {
    // rebuilt when the keys change (keys.algorithms() is a new array after every reload)
    const algorithms = keys.algorithms();
    if (document?.algorithms !== algorithms) {
      let signing: string[] = [];
      try {
        signing = [keys.signingKey().alg];
      } catch {
        // no key loaded yet: SIGNING_ALG alone
      }
      document = { algorithms, body: buildDocument(config, signing) };
    }
    return document.body;
  };

  const metadata = async (request: FastifyRequest, reply: FastifyReply) => {
    const { etag, json } = documentOf(discoveryDocument(), reply);
    void reply.header('cache-control', 'public, max-age=3600').header('etag', etag).header('access-control-allow-origin', '*');
    if (notModified(request.headers['if-none-match'], etag)) return reply.code(304).send(null);
    return sendSerialized(reply, json);
  };
  const options = { helmet: publicDocumentHeaders, schema: { response: { 200: OpenIdConfiguration, 304: Type.Null(), ...errors } } };
  // OIDC Discovery 1.0 section 4, and RFC 8414 section 3 for OAuth clients: the same metadata
  app.get('/.well-known/openid-configuration', options, metadata);
  app.get('/.well-known/oauth-authorization-server', options, metadata);
}

const AUTH_METHODS = ['client_secret_basic', 'client_secret_post'];

function buildDocument(config: Config, accessAlgs: string[]): Static<typeof OpenIdConfiguration> {
  const base = config.publicUrl;
  return {
    issuer: config.issuer,
    authorization_endpoint: `${base}/oauth2/authorize`,
    token_endpoint: `${base}/oauth2/token`,
    userinfo_endpoint: `${base}/oauth2/userinfo`,
    jwks_uri: `${base}/.well-known/jwks.json`,
    end_session_endpoint: `${base}/oauth2/logout`,
    revocation_endpoint: `${base}/oauth2/revoke`,
    introspection_endpoint: `${base}/oauth2/introspect`,
    scopes_supported: ['openid', 'email', 'profile'],
    response_types_supported: ['code'],
    response_modes_supported: ['query'],
    grant_types_supported: ['authorization_code', 'refresh_token', 'client_credentials'],
    subject_types_supported: ['public'],
    id_token_signing_alg_values_supported: idTokenAlgs(config.signingAlg),
    token_endpoint_auth_methods_supported: [...AUTH_METHODS, 'none'],
    // a public client revokes its own tokens with its client_id; introspection needs a confidential client
    revocation_endpoint_auth_methods_supported: [...AUTH_METHODS, 'none'],
    introspection_endpoint_auth_methods_supported: AUTH_METHODS,
    code_challenge_methods_supported: ['S256'],
    prompt_values_supported: ['none', 'login', 'consent', 'select_account'],
    claims_supported: [
      'sub',
      'iss',
      'aud',
      'exp',
      'iat',
      'auth_time',
      'nonce',
      'azp',
      'sid',
      'at_hash',
      'email',
      'email_verified',
      'name',
      'picture',
    ],
    claims_parameter_supported: false,
    request_parameter_supported: false,
    request_uri_parameter_supported: false,
    // RFC 9207: every authorization response carries iss
    authorization_response_iss_parameter_supported: true,
    // SIGNING_ALG, and while a new SIGNING_ALG is being published, the algorithm still signing access tokens
    access_token_signing_alg_values_supported: [...new Set([config.signingAlg, ...accessAlgs])],
  };
}
