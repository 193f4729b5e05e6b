// CLIENTS_FILE: static clients kept in configuration (JSON, or YAML), for operators who keep configuration in git.
// Pure: the config module reads the file and hands over its text and the environment; every problem is reported,
// each naming the client and the field.
//
//   clients:
//     - client_id: grafana                      # chosen by the operator: 1-64 of A-Z a-z 0-9 . _ ~ -
//       client_secret: env:GRAFANA_SECRET       # or client_secret_hash: sha256:<base64url>; never the secret itself
//       redirect_uris: [https://grafana.example.com/login/generic_oauth]
//       …                                       # any other RFC 7591 metadata, and audience
import { parse as parseYaml } from 'yaml';
import { type ClientMetadata, describeProblem, isPublic, type MetadataRules, validateClientMetadata } from './client-metadata.js';
import { digestOf, hashClientSecret, MIN_SUPPLIED_SECRET_LENGTH } from './client-secret.js';

/** A client from CLIENTS_FILE, validated; its secret only as a hash. */
export interface StaticClientConfig extends ClientMetadata {
  clientId: string;
  /** "sha256:<base64url>"; null for public clients */
  secretHash: string | null;
}

/** URL-safe everywhere (a path segment, a query value, Basic credentials) without encoding: RFC 3986 unreserved */
export const STATIC_CLIENT_ID = /^[A-Za-z0-9._~-]{1,64}$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** the fields of an entry that are not client metadata */
const OWN_FIELDS = ['client_id', 'client_secret', 'client_secret_hash'];

type Env = Record<string, string | undefined>;

/** Parses and validates the file's text; `path` decides the format (.json: JSON, anything else: YAML). */
export function parseClientsFile(
  text: string,
  path: string,
  env: Env,
  rules: MetadataRules,
): { clients: StaticClientConfig[]; problems: string[] } {
  const problems: string[] = [];
  const where = `CLIENTS_FILE (${path})`;
  let doc: unknown;
  try {
    doc = path.toLowerCase().endsWith('.json') ? JSON.parse(text) : parseYaml(text, { uniqueKeys: true });
  } catch (err) {
    const kind = path.toLowerCase().endsWith('.json') ? 'JSON' : 'YAML';
    return { clients: [], problems: [`${where} is not valid ${kind}: ${(err as Error).message.split('\n')[0]}`] };
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc) || !Array.isArray((doc as { clients?: unknown }).clients)) {
    return { clients: [], problems: [`${where} must be an object with a "clients" list`] };
  }
  for (const key of Object.keys(doc)) if (key !== 'clients') problems.push(`${where}: unknown top-level field "${key}"`);

  const clients: StaticClientConfig[] = [];
  const seen = new Set<string>();
  (doc as { clients: unknown[] }).clients.forEach((entry, i) => {
    if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) {
      problems.push(`${where}: clients[${i}] must be an object`);
      return;
    }
    const e = entry as Record<string, unknown>;
    const id = e.client_id;
    const label = typeof id === 'string' && id !== '' ? `client "${id}"` : `clients[${i}]`;
    const problem = (message: string) => problems.push(`${where} ${label}: ${message}`);
    let ok = true;
    if (typeof id !== 'string' || !STATIC_CLIENT_ID.test(id)) {
      problem('client_id is required: 1 to 64 characters of A-Z a-z 0-9 . _ ~ -');
      ok = false;
    } else if (seen.has(id)) {
      problem('client_id is listed twice');
      ok = false;
    } else seen.add(id);

    const metadataInput = Object.fromEntries(Object.entries(e).filter(([k]) => !OWN_FIELDS.includes(k)));
    const result = validateClientMetadata(metadataInput, rules);
    for (const p of result.problems) problem(describeProblem(p));

    // the secret: a hash, or the name of an environment variable; a literal secret does not belong in a file
    const hasSecret = e.client_secret !== undefined;
    const hasHash = e.client_secret_hash !== undefined;
    let secretHash: string | null = null;
    const publicClient = result.metadata ? isPublic(result.metadata) : e.token_endpoint_auth_method === 'none';
    if (publicClient) {
      if (hasSecret || hasHash) {
        problem('a public client (token_endpoint_auth_method none) has no secret: remove client_secret / client_secret_hash');
        ok = false;
      }
    } else if (hasSecret && hasHash) {
      problem('give client_secret or client_secret_hash, not both');
      ok = false;
    } else if (hasHash) {
      if (typeof e.client_secret_hash !== 'string' || !digestOf(e.client_secret_hash)) {
        problem('client_secret_hash must be "sha256:" and the base64url SHA-256 of the secret (43 characters)');
        ok = false;
      } else if (e.client_secret_hash === hashClientSecret('')) {
        problem('client_secret_hash is the hash of an empty secret');
        ok = false;
      } else secretHash = e.client_secret_hash;
    } else if (hasSecret) {
      const ref = typeof e.client_secret === 'string' ? /^env:(.*)$/.exec(e.client_secret) : null;
      if (!ref) {
        // never echo what was there: it may be the secret
        problem(
          'client_secret must be env:NAME (the secret itself is read from that environment variable); a literal secret in the file is refused',
        );
        ok = false;
      } else if (!ENV_NAME.test(ref[1])) {
        problem(`client_secret: "${ref[1]}" is not an environment variable name`);
        ok = false;
      } else {
        const secret = env[ref[1]];
        if (secret === undefined || secret === '') {
          problem(`client_secret: the environment variable ${ref[1]} is not set`);
          ok = false;
        } else if (secret.length < MIN_SUPPLIED_SECRET_LENGTH) {
          problem(
            `client_secret: ${ref[1]} must be at least ${MIN_SUPPLIED_SECRET_LENGTH} random characters (e.g. \`openssl rand -base64 32\`)`,
          );
          ok = false;
        } else secretHash = hashClientSecret(secret);
      }
    } else {
      problem('a confidential client needs client_secret: env:NAME or client_secret_hash: sha256:…');
      ok = false;
    }

    if (ok && result.metadata) clients.push({ clientId: id as string, secretHash, ...result.metadata });
  });
  return { clients, problems };
}
