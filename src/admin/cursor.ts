// Opaque keyset cursors for lists ordered by (created_at, id): base64url of "<created_at>|<id>". The time keeps
// Postgres' microseconds (a JavaScript Date would round them away and skip or repeat rows at page edges).
import { type RawBuilder, sql } from 'kysely';
import { invalidRequest } from '../errors.js';

export interface Cursor {
  /** UTC, microseconds: 2026-01-01T00:00:00.123456Z */
  at: string;
  id: string;
}

const CURSOR = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z)\|([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/;

/** The column as cursor text (selected next to each row). */
export function cursorTime(column: string): RawBuilder<string> {
  return sql<string>`to_char(${sql.ref(column)} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;
}

export function encodeCursor(c: Cursor): string {
  return Buffer.from(`${c.at}|${c.id}`).toString('base64url');
}

/** Decodes a cursor from a query string; anything else than what encodeCursor made is a 400. */
export function decodeCursor(value: string): Cursor {
  const m = CURSOR.exec(Buffer.from(value, 'base64url').toString('utf8'));
  // a real calendar time (no February 30th), so Postgres never sees an impossible timestamp
  const ms = m ? `${m[1].slice(0, 23)}Z` : '';
  if (!m || Number.isNaN(Date.parse(ms)) || new Date(ms).toISOString() !== ms) throw invalidRequest('The cursor is not valid.');
  return { at: m[1], id: m[2] };
}

/** `(created_at, id) > cursor` (ascending lists) or `<` (descending ones), as one row comparison. */
export function afterCursor(table: string, c: Cursor, direction: 'asc' | 'desc'): RawBuilder<boolean> {
  const op = sql.raw(direction === 'asc' ? '>' : '<');
  return sql<boolean>`(${sql.ref(`${table}.created_at`)}, ${sql.ref(`${table}.id`)}) ${op} (${c.at}::timestamptz, ${c.id}::uuid)`;
}

/**
 * A page of a list fetched with `limit + 1` rows: its first `limit` rows (without their cursor column), each as
 * `body` makes it, and the cursor after the last of them when more rows follow.
 */
export function keysetPage<R extends { cursor_at: string; id: string }, B>(
  rows: R[],
  limit: number,
  body: (row: Omit<R, 'cursor_at'>) => B,
): { items: B[]; next_cursor: string | null } {
  const page = rows.slice(0, limit);
  const last = page[page.length - 1];
  return {
    items: page.map(({ cursor_at: _, ...row }) => body(row)),
    next_cursor: rows.length > limit && last ? encodeCursor({ at: last.cursor_at, id: last.id }) : null,
  };
}
