// Where the browser may be sent back to: a relative path on this gateway, or a URL whose exact origin is in
// ALLOWED_ORIGINS (RFC 9700 section 4.11: no open redirectors).
import type { Config } from '../config.js';
import { invalidRequest } from '../errors.js';

/** Returns the absolute URL to redirect to, or throws 400 invalid_request. */
export function resolveReturnTo(value: unknown, config: Pick<Config, 'publicUrl' | 'allowedOrigins'>): string {
  if (value === undefined || value === '') return `${config.publicUrl}/`;
  // eslint-disable-next-line no-control-regex -- control characters are exactly what this refuses
  if (typeof value !== 'string' || value.length > 2048 || /[\u0000-\u001f\u007f\\]/.test(value)) {
    throw invalidRequest('return_to must be a relative path or an URL on an allowed origin');
  }
  const base = new URL(config.publicUrl);
  if (value.startsWith('/') && !value.startsWith('//')) {
    const url = new URL(value, base);
    // "/path" stays on our origin; anything the URL parser turns into another host is refused
    if (url.origin === base.origin) return url.href;
  } else {
    let url: URL | undefined;
    try {
      url = new URL(value);
    } catch {
      url = undefined;
    }
    if (
      url &&
      (url.protocol === 'https:' || url.protocol === 'http:') &&
      !url.username &&
      !url.password &&
      config.allowedOrigins.includes(url.origin)
    ) {
      return url.href;
    }
  }
  throw invalidRequest('return_to must be a relative path or an URL on an allowed origin');
}

/** Adds or replaces one query parameter, keeping the rest of the URL. */
export function withQuery(url: string, params: Record<string, string>): string {
  const u = new URL(url);
  for (const [k, v] of Object.entries(params)) u.searchParams.set(k, v);
  return u.href;
}
