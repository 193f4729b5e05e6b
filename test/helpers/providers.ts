// Small conveniences for provider tests: a ProviderConfig parsed from env-style settings, ProviderDeps with a
// movable clock and a fetch that can be counted, broken or stalled, and the ProviderError of a rejected promise.
import { parseConfig, type ProviderConfig, providerEnvPrefix } from '../../src/config.js';
import { type ProviderDeps, ProviderError } from '../../src/providers/types.js';

export const TEST_PUBLIC_URL = 'http://127.0.0.1:3999';

/** The one provider `id` configured from `settings` (keys without the PROVIDER_{ID}_ prefix, e.g. ISSUER). */
export function providerConfig(id: string, settings: Record<string, string>, publicUrl = TEST_PUBLIC_URL): ProviderConfig {
  const prefix = providerEnvPrefix(id);
  const env: Record<string, string> = { NODE_ENV: 'test', PUBLIC_URL: publicUrl, AUTH_PROVIDERS: id };
  for (const [k, v] of Object.entries(settings)) env[`${prefix}${k}`] = v;
  return parseConfig(env).providers[0]!;
}

export type FetchMode = 'pass' | 'fail' | 'stall';

export interface TestDeps extends ProviderDeps {
  /** every URL fetched, in order */
  fetched: string[];
  /** what the next fetches do: pass through, reject like a refused connection, or never answer */
  mode: FetchMode | ((url: string) => FetchMode);
  /** moves deps.now() */
  advance(seconds: number): void;
}

export function testDeps(timeoutMs = 2000): TestDeps {
  let offsetMs = 0;
  const deps: TestDeps = {
    fetched: [],
    mode: 'pass',
    timeoutMs,
    now: () => new Date(Date.now() + offsetMs),
    advance(seconds) {
      offsetMs += seconds * 1000;
    },
    fetch: async (input, init) => {
      const url = String(input instanceof Request ? input.url : input);
      deps.fetched.push(url);
      const mode = typeof deps.mode === 'function' ? deps.mode(url) : deps.mode;
      if (mode === 'fail') throw new TypeError('fetch failed');
      if (mode === 'stall') return new Promise<never>(() => {}); // ignores its abort signal, like a hung peer
      return fetch(input, init);
    },
  };
  return deps;
}

/** The ProviderError a promise rejects with; fails when it resolves or rejects with anything else. */
export async function providerError(promise: Promise<unknown>): Promise<ProviderError> {
  let result: unknown;
  try {
    result = await promise;
  } catch (err) {
    if (err instanceof ProviderError) return err;
    throw new Error(`expected a ProviderError, got ${String(err)}`, { cause: err });
  }
  throw new Error(`expected a ProviderError, but it resolved with ${JSON.stringify(result)?.slice(0, 200)}`);
}
