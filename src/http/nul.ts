// U+0000 cannot be stored by Postgres, neither in text nor in jsonb ("invalid byte sequence", "unsupported
// Unicode escape sequence"): a value from outside that holds one is refused where it comes in, not left to fail as
// a 500 deep inside a query.

/**
 * Where the first U+0000 is in a JSON-like value, in a string or in an object key: "" for the value itself,
 * else a path like `groups[0].id` (a key holding it is written with `\u0000`). Undefined when there is none.
 */
export function findNul(value: unknown, path = ''): string | undefined {
  if (typeof value === 'string') return value.includes('\u0000') ? path : undefined;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const at = findNul(value[i], `${path}[${i}]`);
      if (at !== undefined) return at;
    }
    return undefined;
  }
  if (value !== null && typeof value === 'object') {
    for (const [key, item] of Object.entries(value)) {
      const name = key.replaceAll('\u0000', '\\u0000');
      const itemPath = path ? `${path}.${name}` : name;
      if (key.includes('\u0000')) return itemPath;
      const at = findNul(item, itemPath);
      if (at !== undefined) return at;
    }
  }
  return undefined;
}
