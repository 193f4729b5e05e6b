// Every response a test gets from the app is checked against openapi.yaml: the route and its status must be
// documented, and a JSON body must match the documented schema. A mismatch fails the test that built the app.
import { readFileSync } from 'node:fs';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import type { FastifyInstance } from 'fastify';
import type { Test } from 'tap';
import { parse } from 'yaml';
import { ROOT } from './process.js';

// ajv-formats is CommonJS with a default export
const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => Ajv2020;

interface ResponseObject {
  $ref?: string;
  content?: Record<string, { schema?: unknown }>;
}
type Operation = { responses?: Record<string, ResponseObject> };
interface OpenApiDoc {
  paths: Record<string, Record<string, Operation>>;
  components?: { responses?: Record<string, ResponseObject> };
}

const DOC_ID = 'openapi.yaml';
let loaded: { doc: OpenApiDoc; ajv: Ajv2020 } | undefined;

function load(): { doc: OpenApiDoc; ajv: Ajv2020 } {
  if (!loaded) {
    const doc = parse(readFileSync(`${ROOT}/openapi.yaml`, 'utf8')) as OpenApiDoc;
    // OpenAPI 3.1 schemas are JSON Schema 2020-12; the document itself is not a schema, so not strict
    const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: true });
    addFormats(ajv);
    ajv.addSchema(doc, DOC_ID);
    loaded = { doc, ajv };
  }
  return loaded;
}

const pointer = (...segments: string[]) => segments.map((s) => encodeURIComponent(s.replace(/~/g, '~0').replace(/\//g, '~1'))).join('/');
const validators = new Map<string, ValidateFunction>();

/** The violations of one response, or [] when it matches the document. */
export function checkResponse(r: {
  method: string;
  route: string;
  status: number;
  contentType: string | undefined;
  body: string;
}): string[] {
  const { doc, ajv } = load();
  const path = r.route.replace(/:(\w+)/g, '{$1}');
  const method = r.method.toLowerCase();
  const where = `${r.method} ${path} → ${r.status}`;
  const operation = doc.paths[path]?.[method];
  if (!operation) return [`${where}: the route is not in openapi.yaml`];
  const status = String(r.status);
  const key = [status, `${status[0]}XX`, 'default'].find((k) => operation.responses?.[k]);
  if (!key) return [`${where}: status not documented`];
  let response = operation.responses![key];
  let base = ['paths', path, method, 'responses', key];
  if (response.$ref) {
    const name = response.$ref.replace('#/components/responses/', '');
    response = doc.components?.responses?.[name] ?? {};
    base = ['components', 'responses', name];
  }
  // 204 and 304 carry no body on the wire, whatever the serializer produced
  const isJson = /^application\/json\b/.test(r.contentType ?? '');
  if (!isJson || r.body === '' || r.status === 204 || r.status === 304) return [];
  if (!response.content?.['application/json']?.schema) return [`${where}: a JSON body, but openapi.yaml documents none`];
  const ref = `${DOC_ID}#/${pointer(...base, 'content', 'application/json', 'schema')}`;
  let validate = validators.get(ref);
  if (!validate) {
    validate = ajv.getSchema(ref);
    if (!validate) return [`${where}: cannot resolve ${ref}`];
    validators.set(ref, validate);
  }
  let body: unknown;
  try {
    body = JSON.parse(r.body);
  } catch {
    return [`${where}: the body is not JSON`];
  }
  if (validate(body)) return [];
  return (validate.errors ?? []).map((e) => `${where}: body${e.instancePath} ${e.message} ${JSON.stringify(e.params)}`);
}

/** Checks every response of `app`; each mismatch with openapi.yaml fails `t` (once per distinct message). */
export function validateResponses(app: FastifyInstance, t: Test): void {
  const reported = new Set<string>();
  let ended = false;
  t.teardown(() => {
    ended = true;
  });
  app.addHook('onSend', async (request, reply, payload) => {
    const route = request.routeOptions.url;
    // HEAD mirrors GET, OPTIONS is CORS preflight, an unknown URL has no route to check
    if (request.method === 'HEAD' || request.method === 'OPTIONS' || route === undefined) return payload;
    const body = typeof payload === 'string' ? payload : Buffer.isBuffer(payload) ? payload.toString('utf8') : '';
    const contentType = reply.getHeader('content-type') as string | undefined;
    for (const v of checkResponse({ method: request.method, route, status: reply.statusCode, contentType, body })) {
      if (reported.has(v) || ended) continue;
      reported.add(v);
      t.fail(`response does not match openapi.yaml: ${v}`);
    }
    return payload;
  });
}
