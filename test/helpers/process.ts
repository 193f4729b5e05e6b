// Runs the real gateway process (src/server.ts through tsx) for tests that need a process, signals or ports.
//
// How long a process takes to start depends on how busy the machine is (a cold start on the embedded database
// takes seconds on a quiet machine and several times that on a loaded one), so nothing here waits for a fixed
// time: readiness or output is awaited until it comes, with a ceiling far above any start-up seen, and a process
// that exits while it is awaited fails the wait at once with its output. The test files that start processes are
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

/** `npm run gateway`: src/server.ts with exactly `env` (and PATH, HOME). */
export function startGateway(env: Record<string, string>): GatewayProcess {
  return startProcess(['--import=tsx', 'src/server.ts'], env);
}

/** `npm start`: the demo launcher, demo/start.ts. */
export function startLauncher(env: Record<string, string>): GatewayProcess {
  return startProcess(['--import=tsx', 'demo/start.ts'], env);
}

/** every process a test started and that is still running: killed when the test process ends, however it ends */
const running = new Set<ChildProcess>();
const killRunning = () => {
  for (const child of running) child.kill('SIGKILL');
};
process.once('exit', killRunning);
// tap ends a test file that ran out of time with SIGALRM, which skips 'exit'
for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGALRM'] as const) {
  process.once(signal, () => {
    killRunning();
    process.kill(process.pid, signal);
  });
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
  running.add(child);
  child.once('exit', () => running.delete(child));
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  let exitCode: number | null | undefined;
  // 'close', not 'exit': by then every byte the process wrote has been read
  const exited = new Promise<number | null>((resolve) =>
    child.on('close', (code) => {
      exitCode = code;
      resolve(code);
    }),
  );
  return {
    child,
    output: () => out,
    exited,
    answers: (url, status = 200) =>
      waitFor(url, status, STARTUP_CEILING_MS, () => {
        if (exitCode !== undefined) throw new Error(`the process exited (${exitCode}) before ${url} answered ${status}:\n${out}`);
      }),
  };
}

/**
 * Resolves with the match once the process's output matches `pattern`; rejects when the process exits first
 * or after a generous ceiling (the event itself is what is waited on, not a guess at how long it takes).
 */
export function waitForOutput(gw: GatewayProcess, pattern: RegExp, timeoutMs = STARTUP_CEILING_MS): Promise<RegExpMatchArray> {
  return new Promise((resolve, reject) => {
    const done = (fn: () => void) => {
      clearTimeout(timer);
      gw.child.stdout!.off('data', check);
      gw.child.stderr!.off('data', check);
      gw.child.off('close', onExit);
      fn();
    };
    const check = () => {
      const m = gw.output().match(pattern);
      if (m) done(() => resolve(m));
    };
    const onExit = () => done(() => reject(new Error(`the process exited before printing ${pattern}:\n${gw.output()}`)));
    const timer = setTimeout(() => done(() => reject(new Error(`no ${pattern} within ${timeoutMs} ms:\n${gw.output()}`))), timeoutMs);
    // registered after the helper's own listeners, so output() already holds the chunk
    gw.child.stdout!.on('data', check);
    gw.child.stderr!.on('data', check);
    gw.child.on('close', onExit);
    check();
  });
}

/** What a process printed before it exited, and its exit code (with a generous ceiling, after which it is killed). */
export async function exitOf(gw: GatewayProcess, timeoutMs = STARTUP_CEILING_MS): Promise<{ code: number | null; output: string }> {
  let timer: NodeJS.Timeout | undefined;
  const code = await Promise.race([
    gw.exited,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        gw.child.kill('SIGKILL'); // a test that failed leaves nothing running
        reject(new Error(`the process did not exit within ${timeoutMs} ms:\n${gw.output()}`));
      }, timeoutMs);
    }),
  ]).finally(() => clearTimeout(timer));
  return { code, output: gw.output() };
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
