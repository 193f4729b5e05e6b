// Request validation: one validator for bodies that never coerces (a JSON body either has the documented types or
// is refused), one for query strings and path parameters that only turns digits into the integers a schema asks
// for (a query string has no types of its own). And the messages of a refused request: the field or parameter,
// and what it accepts, in words.
import { Ajv, type ErrorObject, type Options } from 'ajv';
import addFormatsModule from 'ajv-formats';
import type { FastifyInstance, FastifySchema } from 'fastify';

// ajv-formats is CommonJS with a default export
const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;

/** As Fastify's own validator, apart from coercion. allErrors stays off: on hostile input it costs time. */
const COMMON: Options = { useDefaults: true, removeAdditional: false, allErrors: false, addUsedSchema: false, verbose: true };

type HttpPart = 'body' | 'querystring' | 'params' | 'headers';

export function registerValidation(app: FastifyInstance): void {
  const strict = addFormats(new Ajv({ ...COMMON, coerceTypes: false }));
  // true, not 'array': a repeated query parameter is refused, never folded into one value
  const fromText = addFormats(new Ajv({ ...COMMON, coerceTypes: true }));
  app.setValidatorCompiler(({ schema, httpPart }) => (httpPart === 'body' ? strict : fromText).compile(schema as object));
  // JSON only: Fastify's text/plain parser would hand a route a string where it expects an object (415 instead)
  app.removeContentTypeParser('text/plain');
  app.setSchemaErrorFormatter((errors, dataVar) => new Error(validationMessage(errors as ErrorObject[], dataVar as HttpPart)));
}

const PART: Record<HttpPart, string> = {
  body: 'body field',
  querystring: 'query parameter',
  params: 'path parameter',
  headers: 'header',
};
const WHOLE: Record<HttpPart, string> = { body: 'the body', querystring: 'the query string', params: 'the path', headers: 'the headers' };

/** `/roles/0` → `roles[0]`; `/a/b` → `a.b` (JSON Pointer segments unescaped). */
function fieldName(instancePath: string): string {
  return instancePath
    .split('/')
    .slice(1)
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .reduce((name, s) => (/^\d+$/.test(s) ? `${name}[${s}]` : name ? `${name}.${s}` : s), '');
}

function where(part: HttpPart, instancePath: string): string {
  const name = fieldName(instancePath);
  return name ? `${PART[part]} "${name}"` : WHOLE[part];
}

const structural = new Set(['additionalProperties', 'required', 'minProperties', 'maxProperties']);
const depth = (e: ErrorObject) => e.instancePath.split('/').length;

/**
 * The one error worth telling. A failed anyOf reports every branch's complaint and then itself: a complaint from
 * inside the branch the value's type matched (deeper, or about the object's fields) says more than the anyOf;
 * otherwise the anyOf, described whole ("a string … or null"), does.
 */
function pick(errors: ErrorObject[]): ErrorObject {
  const union = errors.find((e) => e.keyword === 'anyOf' || e.keyword === 'oneOf');
  if (!union) return errors[0];
  const inner = errors.find(
    (e) => e !== union && (depth(e) > depth(union) || (e.instancePath === union.instancePath && structural.has(e.keyword))),
  );
  return inner ?? union;
}

export function validationMessage(errors: ErrorObject[], part: HttpPart): string {
  if (errors.length === 0) return `${WHOLE[part]} is not valid.`;
  const e = pick(errors);
  const parent = (e.parentSchema ?? {}) as Schema;
  const params = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'additionalProperties': {
      const allowed = Object.keys(parent.properties ?? {});
      const field = fieldName(e.instancePath);
      const unknown = field
        ? `unknown field "${params.additionalProperty}" in ${where(part, e.instancePath)}`
        : `unknown ${PART[part]} "${params.additionalProperty}"`;
      const list = allowed.length
        ? `allowed: ${allowed.join(', ')}`
        : part === 'body'
          ? 'this body takes no fields'
          : `this route takes no ${PART[part]}s`;
      return `${unknown} (${list}).`;
    }
    case 'required':
      return `${where(part, `${e.instancePath}/${params.missingProperty}`)} is required.`;
    case 'minProperties':
      return `${where(part, e.instancePath)} must set at least one of ${Object.keys(parent.properties ?? {}).join(', ')}.`;
    case 'uniqueItems':
      return `${where(part, e.instancePath)} must not repeat an item (items ${params.j} and ${params.i} are equal); it must be ${describe(parent)}.`;
    default:
      return `${where(part, e.instancePath)} must be ${describe(parent)}.`;
  }
}

interface Schema {
  type?: string | string[];
  const?: unknown;
  enum?: unknown[];
  anyOf?: Schema[];
  oneOf?: Schema[];
  description?: string;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  format?: string;
  minimum?: number;
  maximum?: number;
  items?: Schema;
  maxItems?: number;
  minItems?: number;
  uniqueItems?: boolean;
  properties?: Record<string, Schema>;
  additionalProperties?: boolean | Schema;
}

const FORMATS: Record<string, string> = {
  'date-time': 'a date-time such as 2026-01-01T00:00:00Z (RFC 3339)',
  uuid: 'a UUID',
  uri: 'an absolute URI',
  email: 'an email address',
};

/** What a schema accepts, in words: "one of "active", "disabled"", "an integer from 1 to 200", … */
export function describe(schema: Schema): string {
  // a schema that says it in words (e.g. "a UUID") says it best
  if (schema.description) return schema.description;
  if (schema.const !== undefined) return JSON.stringify(schema.const);
  if (schema.enum) return oneOf(schema.enum);
  const union = schema.anyOf ?? schema.oneOf;
  if (union) {
    if (union.every((b) => b.const !== undefined)) return oneOf(union.map((b) => b.const));
    return union.map(describe).join(' or ');
  }
  const types = schema.type === undefined ? [] : [schema.type].flat();
  if (types.length > 1) return types.map((type) => describe({ ...schema, type })).join(' or ');
  switch (types[0]) {
    case 'string': {
      if (schema.format) return FORMATS[schema.format] ?? `a string in ${schema.format} format`;
      const length = range(schema.minLength, schema.maxLength, 'characters');
      const pattern = schema.pattern ? ` matching ${schema.pattern}` : '';
      return `a string${length}${pattern}`;
    }
    case 'integer':
      return `an integer${bounds(schema.minimum, schema.maximum)}`;
    case 'number':
      return `a number${bounds(schema.minimum, schema.maximum)}`;
    case 'boolean':
      return 'true or false';
    case 'null':
      return 'null';
    case 'array': {
      const count = range(schema.minItems, schema.maxItems, 'items').replace(/^ of /, ' of ');
      const distinct = schema.uniqueItems ? ', no two equal' : '';
      return `an array${count}${distinct}${schema.items ? `, each ${describe(schema.items)}` : ''}`;
    }
    case 'object': {
      const fields = Object.keys(schema.properties ?? {});
      if (schema.additionalProperties === false)
        return fields.length ? `an object with only the fields ${fields.join(', ')}` : 'an empty object';
      return 'an object';
    }
    default:
      return 'a valid value';
  }
}

const oneOf = (values: unknown[]) =>
  values.length === 1 ? JSON.stringify(values[0]) : `one of ${values.map((v) => JSON.stringify(v)).join(', ')}`;

function range(min: number | undefined, max: number | undefined, unit: string): string {
  if (min !== undefined && max !== undefined) return min === max ? ` of exactly ${min} ${unit}` : ` of ${min} to ${max} ${unit}`;
  if (max !== undefined) return ` of at most ${max} ${unit}`;
  if (min !== undefined && min > 0) return ` of at least ${min} ${unit}`;
  return '';
}

function bounds(min: number | undefined, max: number | undefined): string {
  if (min !== undefined && max !== undefined) return ` from ${min} to ${max}`;
  if (max !== undefined) return ` of at most ${max}`;
  if (min !== undefined) return ` of at least ${min}`;
  return '';
}

/** The schema of a route that takes no query parameters: refuses any (admin routes, see admin/routes.ts). */
export const NO_QUERY: FastifySchema['querystring'] = { type: 'object', properties: {}, additionalProperties: false };
