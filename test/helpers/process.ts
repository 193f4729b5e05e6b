// Runs the real gateway process (src/server.ts through tsx) for tests that need a process, signals or ports.
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { freePort } from '../../fixtures/ports.js';

export { freePort };

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface GatewayProcess {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

/** `npm run gateway`: src/server.ts with exactly `env` (and PATH, HOME). */
export function startGateway(env: Record<string, string>): GatewayProcess {
  return startScript('src/server.ts', env);
}

/** `npm start`: the demo launcher, demo/start.ts. */
export function startLauncher(env: Record<string, string>): GatewayProcess {
  return startScript('demo/start.ts', env);
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

function startScript(script: string, env: Record<string, string>): GatewayProcess {
  let out = '';
  const child = spawn(process.execPath, ['--import=tsx', script], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  child.once('exit', () => running.delete(child));
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  // 'close', not 'exit': by then every byte the process wrote has been read
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  return { child, output: () => out, exited };
}

/**
 * Resolves with the match once the process's output matches `pattern`; rejects when the process exits first
 * or after a generous ceiling (the event itself is what is waited on, not a guess at how long it takes).
 */
export function waitForOutput(gw: GatewayProcess, pattern: RegExp, timeoutMs = 90_000): Promise<RegExpMatchArray> {
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
export async function exitOf(gw: GatewayProcess, timeoutMs = 90_000): Promise<{ code: number | null; output: string }> {
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
 * Polls url until it answers with `status`, or fails after timeoutMs: a generous ceiling, since a cold embedded
 * database on a busy machine takes well over 20 s to start.
 */
export async function waitFor(url: string, status = 200, timeoutMs = 90_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const res = await fetch(url);
      if (res.status === status) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`${url} did not answer ${status} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
