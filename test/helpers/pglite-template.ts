// A freshly initialised embedded database (PGlite's initdb already run, nothing migrated), made once and kept as a
// data-directory tarball. Booting PGlite from it skips initdb, which is most of a cold start: about a third of
// the CPU time of a plain start, so a test file's first database, or a test's gateway process on a fresh
// DATA_DIR, comes up several seconds sooner on a busy machine.
//
// The tarball lives in node_modules/.cache/ (gone with every `npm ci`), named after the PGlite version, and is
// written under a temporary name and renamed, so processes that make it at the same time never read half a file.
// tap's `before` script (test/helpers/before.ts) makes it before the first test file starts.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { ROOT } from './process.js';

const pgliteVersion = (
  JSON.parse(await readFile(join(ROOT, 'node_modules/@electric-sql/pglite/package.json'), 'utf8')) as { version: string }
).version;
export const TEMPLATE = join(ROOT, 'node_modules/.cache/auth-gateway-tests', `pglite-${pgliteVersion}-initdb.tar`);

const exists = (path: string) =>
  stat(path).then(
    () => true,
    () => false,
  );

/** The path of the template tarball, made first when it is missing. */
export async function pgliteTemplate(): Promise<string> {
  if (await exists(TEMPLATE)) return TEMPLATE;
  const { PGlite } = await import('@electric-sql/pglite');
  const pglite = await PGlite.create();
  const tarball = await pglite.dumpDataDir('none');
  await pglite.close();
  await mkdir(dirname(TEMPLATE), { recursive: true });
  const partial = `${TEMPLATE}.${process.pid}.${randomBytes(4).toString('hex')}`;
  await writeFile(partial, Buffer.from(await tarball.arrayBuffer()));
  await rename(partial, TEMPLATE);
  return TEMPLATE;
}

/** The template as PGlite's `loadDataDir` option. */
export async function templateBlob(): Promise<Blob> {
  return new Blob([await readFile(await pgliteTemplate())]);
}

/**
 * Fills DATA_DIR/pgdata (where the gateway keeps its embedded database) from the template, so a gateway process
 * started on dataDir skips initdb. Uses the system tar: the tarball is a plain ustar archive of the data directory.
 */
export async function seedDataDir(dataDir: string): Promise<void> {
  const pgdata = join(dataDir, 'pgdata');
  await rm(pgdata, { recursive: true, force: true });
  await mkdir(pgdata, { recursive: true });
  await promisify(execFile)('tar', ['-xf', await pgliteTemplate(), '-C', pgdata]);
}
