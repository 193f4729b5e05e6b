// What stops start-up for a reason the operator can fix (a database that cannot be reached, a port in use, a
// directory that cannot be written): one clear message and exit 1, never a stack trace.
import { randomBytes } from 'node:crypto';
import { mkdir, stat, unlink, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';

export class StartupError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'StartupError';
  }
}

const REASONS: Record<string, string> = {
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'read-only file system',
  ENOSPC: 'no space left on the device',
  EDQUOT: 'disk quota exceeded',
  ENOTDIR: 'a part of the path is a file, not a directory',
  ENOENT: 'the file system does not allow creating it there',
  EEXIST: 'a file of that name exists',
};

/** A short human reason for a failed file-system call: "permission denied (EACCES)". */
export function fsReason(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code && REASONS[code]) return `${REASONS[code]} (${code})`;
  return (err as Error).message ?? String(err);
}

/**
 * Makes sure `dir` exists (creating it and its missing parents) and that a file can be written in it, or throws a
 * StartupError naming the setting, the path and the reason. Parents are created one level at a time: Node's
 * recursive mkdir never returns where a file system answers ENOENT for a child of an existing directory (as /proc
 * does), which left the process hanging without a word.
 */
export async function ensureWritableDir(dir: string, setting: string): Promise<void> {
  const target = resolve(dir);
  const missing: string[] = [];
  for (let current = target; ; current = dirname(current)) {
    try {
      if (!(await stat(current)).isDirectory()) {
        throw new StartupError(`${setting} ${target} cannot be used: ${current} is a file, not a directory`);
      }
      break;
    } catch (err) {
      if (err instanceof StartupError) throw err;
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        throw new StartupError(`${setting} ${target} cannot be used: ${fsReason(err)}`, { cause: err });
      }
      missing.unshift(current);
      if (dirname(current) === current) break;
    }
  }
  for (const d of missing) {
    try {
      await mkdir(d);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') continue; // made meanwhile by another process
      throw new StartupError(`${setting} ${target} cannot be created: ${fsReason(err)} at ${d}`, { cause: err });
    }
  }
  const probe = join(target, `.write-test-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    await writeFile(probe, '');
    await unlink(probe);
  } catch (err) {
    throw new StartupError(`${setting} ${target} is not writable: ${fsReason(err)}`, { cause: err });
  }
}

/**
 * Ends the process after a failed start: an expected failure (StartupError and its kinds: a bad configuration,
 * a database that cannot be reached, a busy port) prints its message alone; anything else is a bug and keeps its
 * stack.
 */
export function exitOnStartupFailure(err: unknown): never {
  if (err instanceof StartupError) process.stderr.write(`${err.message}\n`);
  else process.stderr.write(`fatal: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
}
