// Response serialization: one fast-json-stringify serializer per response schema object, not per route and status.
// Fastify's default compiler builds a serializer for every (route, status) pair, so the shared ErrorBody alone was
// compiled about 190 times, and every schema with a union kept an Ajv instance of its own; the compiled code and
// those instances were about 9 MB of the idle process. The schemas are constants (TypeBox objects shared between
// routes), so a serializer built once for an object serves every route that answers with it.
import type { FastifyInstance } from 'fastify';
import fastJsonStringify, { type Schema } from 'fast-json-stringify';

export function registerSerialization(app: FastifyInstance): void {
  const built = new WeakMap<object, (data: unknown) => string>();
  app.setSerializerCompiler(({ schema }) => {
    let serialize = built.get(schema);
    if (!serialize) {
      serialize = fastJsonStringify(schema as Schema) as (data: unknown) => string;
      built.set(schema, serialize);
    }
    return serialize;
  });
}
