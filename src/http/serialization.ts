// Response serialization: one fast-json-stringify serializer per response schema object, not per route and status,
// built when a response first needs it. Fastify's default compiler builds a serializer for every (route, status)
// pair at start-up, so the shared ErrorBody alone was compiled about 190 times, and every schema with a union kept
// an Ajv instance of its own: about 9 MB of the idle process. The schemas are constants (TypeBox objects shared
// between routes), so one serializer built for an object serves every route that answers with it; most of them
// (the admin API's, rare error statuses) are never needed by a given process at all.
import type { FastifyInstance } from 'fastify';
import fastJsonStringify, { type Schema } from 'fast-json-stringify';

type Serializer = (data: unknown) => string;

export function registerSerialization(app: FastifyInstance): void {
  const serializers = new WeakMap<object, Serializer>();
  app.setSerializerCompiler(({ schema }) => {
    let serialize = serializers.get(schema);
    if (!serialize) {
      let built: Serializer | undefined;
      serialize = (data) => (built ??= fastJsonStringify(schema as Schema) as Serializer)(data);
      serializers.set(schema, serialize);
    }
    return serialize;
  });
}
