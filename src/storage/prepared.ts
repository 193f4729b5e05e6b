// A kysely query compiled once into a named prepared statement for a hot path: kysely builds the SQL (with slot
// markers where the per-call values go), Postgres parses and plans it once per connection, and each call only
// sends the values (Storage.prepared).
import type { Compilable } from 'kysely';
import type { PreparedStatement, Storage } from './db.js';

export interface PreparedQuery<K extends string, R> {
  statement: PreparedStatement;
  /** the statement's parameters for one call, in the order the compiled SQL numbers them */
  values(slots: Record<K, unknown>): unknown[];
  run(storage: Storage, slots: Record<K, unknown>): Promise<R[]>;
}

/**
 * `build` receives `slot(name)`, a marker to use wherever a per-call value goes (it is typed `never` so it fits
 * any column); every other value in the query is a constant of the statement.
 */
export function preparedQuery<K extends string, R>(name: string, build: (slot: (name: K) => never) => Compilable<R>): PreparedQuery<K, R> {
  const marks = new Map<string, K>();
  const slot = (k: K): never => {
    const mark = `\u0000slot:${k}`;
    marks.set(mark, k);
    return mark as never;
  };
  const compiled = build(slot).compile();
  const order = compiled.parameters.map((p) => (typeof p === 'string' ? marks.get(p) : undefined));
  const constants = compiled.parameters;
  const values = (slots: Record<K, unknown>) => order.map((k, i) => (k === undefined ? constants[i] : slots[k]));
  const statement = { name, text: compiled.sql };
  return { statement, values, run: (storage, slots) => storage.prepared<R>(statement, values(slots)) };
}
