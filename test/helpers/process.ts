// Runs the real gateway process (src/server.ts through tsx) for tests that need a process, signals or ports.
//
// How long a process takes to start depends on how busy the machine is (a cold start on the embedded database
// takes seconds on a quiet machine and several times that on a loaded one), so nothing here waits for a fixed
// time: readiness is polled until it answers, with a ceiling far above any start-up seen, and a process that
// exits while it is awaited fails the wait at once with its output. The test files that start processes are
// `serial` in package.json's tap config, so they never start processes while another test file runs.
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { freePort } from '../../fixtures/ports.js';
import { eventually, STARTUP_CEILING_MS } from './wait.js';

export { freePort };

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface GatewayProcess {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
  /** Resolves once `url` answers `status`; rejects at once, with the output, when the process exits first. */
  answers(url: string, status?: number): Promise<void>;
}

/**
 * `command args…` with exactly `env` as its environment. Under tap, child_process adds tap's process-tracking
 * loader to every child's NODE_OPTIONS (whatever env says); `env -i` starts the command without it, so a process
 * a test starts loads nothing from the test tooling, as in production.
 */
export function exactEnv(command: string, args: string[], env: Record<string, string>): [string, string[]] {
  return ['/usr/bin/env', ['-i', ...Object.entries(env).map(([k, v]) => `${k}=${v}`), command, ...args]];
}

/**
 * Spawns `node args…` (this Node.js, unless execPath says another) in the repository with a clean environment:
 * PATH and HOME, plus env, and nothing else.
 */
export function startProcess(
  args: string[],
  env: Record<string, string>,
  options: { cwd?: string; uid?: number; gid?: number; execPath?: string } = {},
): GatewayProcess {
  let out = '';
  const [command, argv] = exactEnv(options.execPath ?? process.execPath, args, {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? '/tmp',
    ...env,
  });
  const child = spawn(command, argv, {
    cwd: options.cwd ?? ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    uid: options.uid,
    gid: options.gid,
  });
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  let exitCode: number | null | undefined;
  const exited = new Promise<number | null>((resolve) =>
    child.on('exit', (code) => {
      exitCode = code;
      resolve(code);
    }),
  );
  const gw: GatewayProcess = {
    child,
    output: () => out,
    exited,
    answers: (url, status = 200) =>
      waitFor(url, status, STARTUP_CEILING_MS, () => {
        if (exitCode !== undefined) throw new Error(`the process exited (${exitCode}) before ${url} answered ${status}:\n${out}`);
      }),
  };
  return gw;
}

export function startGateway(env: Record<string, string>): GatewayProcess {
  return startProcess(['--import=tsx', 'src/server.ts'], env);
}

/**
 * Polls url until it answers with `status`; fails after timeoutMs (a ceiling, not an expected time), or as soon as
 * `abort` throws (it is called before every attempt).
 */
export async function waitFor(url: string, status = 200, timeoutMs = STARTUP_CEILING_MS, abort?: () => void): Promise<void> {
  let last = 'no answer';
  await eventually(
    async () => {
      abort?.();
      try {
        const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
        await res.body?.cancel();
        last = `answered ${res.status}`;
        return res.status === status;
      } catch (err) {
        last = (err as Error).message; // not listening yet
        return false;
      }
    },
    { timeoutMs, intervalMs: 100, what: () => `${url} to answer ${status} (last: ${last})` },
  );
}
