// Builds the real app for a test: real configuration parsing, a real migrated database, an injectable clock.
import type { Test } from 'tap';
import { type App, type AppDeps, buildApp } from '../../src/app.js';
import { type Config, parseConfig } from '../../src/config.js';
import type { Storage } from '../../src/storage/db.js';
import { testDatabase } from './db.js';
import { validateResponses } from './openapi.js';

// random (a key with little entropy, such as one repeated byte, is refused); fixed, so test runs are reproducible
export const TEST_SECRET = 'V4Y7lUkZAmhxoZ+NMrQEhCjDJY/5OpBCB4BRR8z1SwM=';

export function testConfig(env: Record<string, string> = {}): Config & { secretKey: Buffer } {
  const config = parseConfig({ NODE_ENV: 'test', SECRET_KEY: TEST_SECRET, LOG_LEVEL: 'silent', DATA_DIR: '/nonexistent', ...env });
  return config as Config & { secretKey: Buffer };
}

/** A clock that only moves when told to. */
export class TestClock {
  constructor(private t = Date.parse('2026-01-01T00:00:00Z')) {}
  now = (): Date => new Date(this.t);
  advance(seconds: number): void {
    this.t += seconds * 1000;
  }
}

export interface TestApp {
  app: App;
  storage: Storage;
  config: Config & { secretKey: Buffer };
  clock: TestClock;
  databaseUrl: string | undefined;
}

export async function buildTestApp(
  t: Test,
  options: { env?: Record<string, string>; storage?: Storage; clock?: TestClock; deps?: Partial<AppDeps> } = {},
): Promise<TestApp> {
  let storage = options.storage;
  let databaseUrl: string | undefined;
  if (!storage) ({ storage, url: databaseUrl } = await testDatabase(t));
  const config = testConfig(options.env);
  const clock = options.clock ?? new TestClock(Date.now());
  const app = buildApp(config, { storage, now: clock.now, ...options.deps });
  // every response the test gets must match openapi.yaml
  validateResponses(app, t);
  t.teardown(() => app.close());
  await app.ready();
  return { app, storage, config, clock, databaseUrl };
}
