// pino options shared by the app and the process: request ids, and no secret ever reaches a log line.
import type { IncomingMessage } from 'node:http';
import type { LoggerOptions } from 'pino';

/** query parameters whose values never reach a log line */
const SENSITIVE_PARAMS = new Set([
  'code',
  'state',
  'token',
  'access_token',
  'refresh_token',
  'id_token',
  'client_secret',
  'code_verifier',
  'nonce',
  'session_state',
  'password',
  'secret',
]);

/** Replaces the values of sensitive query parameters with [REDACTED]. */
export function redactUrl(url: string): string {
  const q = url.indexOf('?');
  if (q < 0) return url;
  const params = new URLSearchParams(url.slice(q + 1));
  let changed = false;
  for (const key of new Set(params.keys())) {
    if (SENSITIVE_PARAMS.has(key.toLowerCase())) {
      params.set(key, '[REDACTED]');
      changed = true;
    }
  }
  return changed ? `${url.slice(0, q)}?${params.toString().replace(/%5BREDACTED%5D/g, '[REDACTED]')}` : url;
}

const SENSITIVE_KEYS = [
  'authorization',
  'cookie',
  'set-cookie',
  'token',
  'access_token',
  'refresh_token',
  'id_token',
  'code',
  'code_verifier',
  'client_secret',
  'secret',
  'secretKey',
  'password',
  'adminToken',
  'private_jwk_enc',
];

export function loggerOptions(level: string): LoggerOptions {
  return {
    level,
    redact: {
      paths: [
        ...SENSITIVE_KEYS.map((k) => `["${k}"]`),
        ...SENSITIVE_KEYS.map((k) => `*["${k}"]`),
        ...SENSITIVE_KEYS.map((k) => `*.*["${k}"]`),
      ],
      censor: '[REDACTED]',
    },
    serializers: {
      req(req: IncomingMessage & { id?: string; ip?: string; routeOptions?: { url?: string } }) {
        return {
          method: req.method,
          url: redactUrl(req.url ?? ''),
          remoteAddress: req.ip ?? req.socket?.remoteAddress,
        };
      },
    },
  };
}
