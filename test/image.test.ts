// The container image, checked where no container engine runs: the Dockerfile is read (test/helpers/dockerfile.ts)
// and its two stages are replayed in a temporary directory standing for the image's root filesystem:
//
// - build stage: its COPY lines from the build context (.dockerignore applied), `npm ci` (stood in for by this
//   checkout's node_modules, installed from the same package-lock.json), then its `npm run build`;
// - runtime stage: its COPY lines (from the context and `--from=build`), its `npm ci --omit=dev` run for real, its
//   `mkdir`/`chown` of the data directory, ENV, WORKDIR, USER, VOLUME, EXPOSE, HEALTHCHECK and CMD.
//
// Then the CMD is started with the stage's environment plus what production requires (SECRET_KEY, and DATABASE_URL
// of a fresh Postgres database), as an unprivileged user that cannot write to the application files, and must
// answer /readyz, pass the HEALTHCHECK command, and stop cleanly on SIGTERM. An instruction this test does not
// know fails it: extend the test together with the Dockerfile.
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, chown, cp, link, mkdir, mkdtemp, readFile, readdir, rm, stat, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, posix, relative } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { createPostgresDatabase, postgresUrl } from './helpers/db.js';
import { dockerignore, execForm, type Instruction, parseAssignments, parseDockerfile, type Stage } from './helpers/dockerfile.js';
import { exactEnv, freePort, ROOT, startProcess } from './helpers/process.js';
import { eventually } from './helpers/wait.js';

const run = promisify(execFile);

// npm ci and a TypeScript build are real work: on a busy 2-core machine this file takes minutes, not seconds.
// It runs alone (`serial` in package.json), and gives itself more than tap's default per-file limit.
t.setTimeout(300_000);

const dockerfileText = await readFile(join(ROOT, 'Dockerfile'), 'utf8');
const dockerfile = parseDockerfile(dockerfileText);
const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { version: string };

t.test('the Dockerfile: pinned Node.js 24 base, volume, labels, health check, unprivileged user', async (t) => {
  const [build, runtime] = dockerfile.stages;
  t.equal(dockerfile.stages.length, 2, 'a build and a runtime stage');
  t.equal(build.name, 'build');
  t.equal(runtime.name, 'runtime');
  for (const stage of dockerfile.stages) {
    t.match(stage.from, /^node:\d+\.\d+\.\d+-[a-z]+-slim(@sha256:[0-9a-f]{64})?$/, `${stage.name}: a specific release, not a moving tag`);
  }
  t.equal(build.from, runtime.from, 'both stages on the same base');
  const ci = await readFile(join(ROOT, '.ci/run'), 'utf8');
  const ciNode = /^NODE_VERSION=(\S+)$/m.exec(ci)?.[1];
  t.equal(/^node:([\d.]+)-/.exec(runtime.from)?.[1], ciNode, 'the image runs the Node.js release CI tests on');
  t.equal(ciNode?.split('.')[0], '24', 'Node.js 24, the current LTS');

  const all = (keyword: string) => runtime.instructions.filter((i) => i.keyword === keyword);
  const env = Object.assign({}, ...all('ENV').map((i) => parseAssignments(i.args, i.line))) as Record<string, string>;
  t.equal(env.NODE_ENV, 'production');
  t.same(
    all('VOLUME').map((i) => execForm(i.args, i.line)),
    [[env.DATA_DIR]],
    'DATA_DIR is the one declared volume',
  );
  t.same(
    all('EXPOSE').map((i) => i.args),
    [env.PORT],
    'EXPOSE is the port it listens on',
  );
  const user = all('USER').at(-1)?.args;
  t.ok(user && user !== 'root' && user !== '0', `runs as an unprivileged user (${user})`);

  const labels = Object.assign({}, ...all('LABEL').map((i) => parseAssignments(i.args, i.line))) as Record<string, string>;
  for (const name of ['title', 'description', 'version', 'revision', 'created', 'base.name']) {
    t.ok(labels[`org.opencontainers.image.${name}`], `label org.opencontainers.image.${name}`);
  }
  t.equal(labels['org.opencontainers.image.version'], pkg.version, 'the version label is package.json’s');
  t.equal(labels['org.opencontainers.image.base.name'], `docker.io/library/${runtime.from}`);
  t.match(all('HEALTHCHECK').at(-1)?.args, /\bCMD\b.*\/readyz/, 'the health check asks /readyz');
  t.same(execForm(all('CMD').at(-1)!.args, 0), ['node', 'dist/src/server.js']);
  const entrypoint = all('ENTRYPOINT').at(-1);
  t.same(entrypoint && execForm(entrypoint.args, entrypoint.line), ['/usr/bin/tini', '--'], 'an init (tini) as PID 1');
});

t.test('.dockerignore keeps data, secrets and local builds out of the context', async (t) => {
  const keep = dockerignore(await readFile(join(ROOT, '.dockerignore'), 'utf8'));
  for (const p of [
    'node_modules/x/index.js',
    'dist/src/server.js',
    'data/secret-key',
    'data/pgdata/PG_VERSION',
    '.env',
    '.env.local',
    '.git/HEAD',
  ]) {
    t.notOk(keep(p), `${p} stays out`);
  }
  for (const p of ['package.json', 'package-lock.json', 'src/server.ts', 'migrations/0001_initial.sql', 'tsconfig.build.json']) {
    t.ok(keep(p), `${p} is in the context`);
  }
});

// the Debian packages the runtime stage installs: stood in for by the same packages installed on this machine
const aptPackages = dockerfile.stages
  .flatMap((s) => s.instructions)
  .filter((i) => i.keyword === 'RUN')
  .flatMap((i) => i.args.split('&&').map((c) => c.trim().split(/\s+/)))
  .filter((w) => w[0] === 'apt-get' && w[1] === 'install')
  .flatMap((w) => w.slice(2).filter((x) => !x.startsWith('-')));
const missing = (
  await Promise.all(
    aptPackages.map(async (p) =>
      (await run('dpkg-query', ['-W', '-f=${Status}', p]).catch(() => ({ stdout: '' }))).stdout.endsWith('installed') ? null : p,
    ),
  )
).filter(Boolean);
const asRoot = process.getuid?.() === 0;

const skipRuntime = !postgresUrl
  ? 'production needs DATABASE_URL: run with a Postgres server (DATABASE_URL or TEST_DATABASE_URL)'
  : missing.length
    ? `the image installs ${missing.join(', ')}: install the same here (apt-get install ${missing.join(' ')})`
    : false;

t.test('the runtime stage’s files, started as the container starts them', { skip: skipRuntime }, async (t) => {
  const work = await mkdtemp(join(tmpdir(), 'gw-image-'));
  t.teardown(() => rm(work, { recursive: true, force: true }));
  await chmod(work, 0o755);
  const keep = dockerignore(await readFile(join(ROOT, '.dockerignore'), 'utf8'));
  const [buildStage, runtimeStage] = dockerfile.stages;

  // who the image runs as: the base image's `node` is uid/gid 1000; without root we are unprivileged already
  const uid = asRoot ? 1000 : process.getuid!();
  const gid = asRoot ? 1000 : process.getgid!();
  const users: Record<string, [number, number]> = { node: [uid, gid] };

  // the two stages run side by side, as BuildKit runs them: the runtime stage waits for the build stage only at
  // its COPY --from=build (so the production `npm ci` and the TypeScript build overlap)
  const npmOutput: string[] = [];
  const build = replay(buildStage, join(work, 'build'), { keep, users, npmOutput, stages: {} });
  build.catch(() => {}); // awaited below; its failure is reported there
  const rootfs = join(work, 'runtime');
  const [, runtime] = await Promise.all([
    build,
    replay(runtimeStage, rootfs, { keep, users, npmOutput, stages: { build: build.then((b) => b.rootfs) } }),
  ]);
  t.notMatch(npmOutput.join('\n'), /EBADENGINE/, 'npm ci reports no unsupported engine');

  // the file set: exactly what the runtime stage copies, plus the production dependencies
  const app = join(rootfs, runtime.workdir);
  t.same((await readdir(app)).sort(), ['dist', 'migrations', 'node_modules', 'package-lock.json', 'package.json']);
  t.same(await readdir(join(app, 'dist')), ['src'], 'compiled sources only (no tests, benchmarks or demo)');
  const installed = await readdir(join(app, 'node_modules'));
  for (const dev of ['tap', 'typescript', 'tsx', 'oidc-provider', 'playwright-core', 'eslint']) {
    t.notOk(installed.includes(dev), `no dev dependency ${dev}`);
  }
  t.same(
    await readdir(join(app, 'migrations')),
    (await readdir(join(ROOT, 'migrations'))).filter((f) => keep(`migrations/${f}`)),
  );

  // node where the base image has it (/usr/local/bin/node), reachable by the unprivileged user
  const nodeBin = join(rootfs, 'usr/local/bin/node');
  await mkdir(dirname(nodeBin), { recursive: true });
  await link(process.execPath, nodeBin).catch(() => cp(process.execPath, nodeBin));
  await chmod(nodeBin, 0o755);

  const env: Record<string, string> = {
    ...runtime.env,
    HOST: '127.0.0.1',
    HOME: join(rootfs, 'home/node'),
    PATH: `${dirname(nodeBin)}:${join(rootfs, 'usr/bin')}:/usr/bin:/bin`,
    SECRET_KEY: randomBytes(32).toString('base64'),
    DATABASE_URL: await createPostgresDatabase(t),
  };
  await mkdir(env.HOME, { recursive: true });
  if (asRoot) await chown(env.HOME, uid, gid);

  // ENTRYPOINT + CMD, as the process tree a container has: as root, in a PID namespace of its own (unshare), so the
  // entrypoint is PID 1 with what that means for signals; without root, as a plain child process
  const argv = [...runtime.entrypoint, ...runtime.cmd].map((a, i) => (i === 0 && a.startsWith('/') ? join(rootfs, a) : a));
  const container = (port: number) => {
    const p = startProcess(
      asRoot ? ['--pid', '--fork', '--kill-child', `--setuid=${uid}`, `--setgid=${gid}`, '--', ...argv] : argv.slice(1),
      { ...env, PORT: String(port) },
      { cwd: app, execPath: asRoot ? 'unshare' : argv[0] === 'node' ? nodeBin : argv[0], ...(asRoot ? {} : { uid, gid }) },
    );
    t.teardown(() => p.child.kill('SIGKILL'));
    /**
     * The host pid of the container's PID 1 (what docker stop signals), once the container's process tree is
     * there: PID 1 has exec'd the entrypoint and, when that is an init, has started the command.
     */
    const pid1 = async () => {
      if (!asRoot) return p.child.pid!;
      const children = async (pid: number) =>
        (await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8').catch(() => '')).trim().split(/\s+/).filter(Boolean).map(Number);
      const cmdline = async (pid: number) => (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).split('\0').filter(Boolean);
      const is = async (pid: number, expected: string[]) => (await cmdline(pid)).join(' ') === expected.join(' ');
      return eventually(
        async () => {
          const [first] = await children(p.child.pid!);
          if (!first || !(await is(first, argv))) return 0;
          if (!runtime.entrypoint.length) return first;
          const [command] = await children(first);
          return command && (await is(command, runtime.cmd)) ? first : 0;
        },
        { what: 'the container’s processes', intervalMs: 5 },
      );
    };
    return { ...p, pid1 };
  };

  t.test('production mode: /readyz, the HEALTHCHECK command, and SIGTERM', async (t) => {
    const port = await freePort();
    const c = container(port);
    await c.answers(`http://127.0.0.1:${port}/readyz`);
    const ready = (await (await fetch(`http://127.0.0.1:${port}/readyz`)).json()) as { status: string; checks: Record<string, string> };
    t.match(ready, { status: 'ready', checks: { database: 'ok', signing_key: 'ok' } });

    // the HEALTHCHECK command, run the way Docker runs its shell form: /bin/sh -c, in the container's environment
    const healthcheck = spawn(...exactEnv('/bin/sh', ['-c', runtime.healthcheck], { ...env, PORT: String(port) }), {
      cwd: app,
      uid,
      gid,
      stdio: 'ignore',
    });
    t.equal(await new Promise((r) => healthcheck.on('exit', r)), 0, 'the HEALTHCHECK command passes');

    process.kill(await c.pid1(), 'SIGTERM'); // docker stop
    const code = await c.exited;
    const out = c.output();
    t.equal(code, 0, 'SIGTERM: a clean exit', { output: out, signal: c.child.signalCode });
    t.match(out, /"msg":"stopped"/);
    t.notMatch(out, /generated a development key|Unsupported runtime|ExperimentalWarning/);
    t.notMatch(out, /"level":(50|60)/, 'no error logged');
  });

  t.test(
    'SIGTERM during start-up stops the container at once',
    { skip: asRoot ? false : 'needs root for a PID namespace (unshare), where the entrypoint is PID 1' },
    async (t) => {
      // A namespace's PID 1 does not get signals it has no handler for; the gateway installs its handlers only
      // once it listens. A node running as PID 1 would therefore ignore this SIGTERM, come up and keep running.
      const port = await freePort();
      const c = container(port);
      process.kill(await c.pid1(), 'SIGTERM');
      const first = await Promise.race([c.exited.then(() => 'exited'), c.answers(`http://127.0.0.1:${port}/readyz`).then(() => 'ready')]);
      t.equal(first, 'exited', 'stopped instead of coming up (the SIGTERM was not lost)', { output: c.output() });
      if (first === 'exited') t.not(await c.exited, 0, 'it did not get as far as a graceful shutdown');
    },
  );
});

interface Replayed {
  rootfs: string;
  workdir: string;
  env: Record<string, string>;
  entrypoint: string[];
  cmd: string[];
  healthcheck: string;
}

/** Replays one stage's instructions into rootfs (the stage's root filesystem). */
async function replay(
  stage: Stage,
  rootfs: string,
  ctx: {
    keep: (path: string) => boolean;
    users: Record<string, [number, number]>;
    npmOutput: string[];
    stages: Record<string, Promise<string>>;
  },
): Promise<Replayed> {
  const out: Replayed = { rootfs, workdir: '/', env: {}, entrypoint: [], cmd: [], healthcheck: '' };
  const inRoot = (p: string) => join(rootfs, posix.resolve(out.workdir, p));
  await mkdir(rootfs, { recursive: true, mode: 0o755 });
  await chmod(rootfs, 0o755);
  for (const ins of stage.instructions) {
    switch (ins.keyword) {
      case 'ARG':
      case 'LABEL':
      case 'VOLUME':
      case 'EXPOSE':
        break; // metadata, checked in the first test
      case 'USER':
        if (!(ins.args in ctx.users)) throw unknown(ins, `user ${ins.args}`);
        break;
      case 'WORKDIR':
        out.workdir = posix.resolve(out.workdir, ins.args);
        await mkdir(inRoot('.'), { recursive: true, mode: 0o755 });
        break;
      case 'ENV':
        for (const [k, v] of Object.entries(parseAssignments(ins.args, ins.line))) {
          // an absolute path means one inside the image
          out.env[k] = v.startsWith('/') ? join(rootfs, v) : v;
        }
        break;
      case 'COPY': {
        const parts = ins.args.split(/\s+/);
        const dest = parts.pop()!;
        const from = ins.flags.from;
        for (const flag of Object.keys(ins.flags)) if (flag !== 'from') throw unknown(ins, `COPY --${flag}`);
        for (const src of parts) {
          const source = from ? join(await (ctx.stages[from] ?? fail(ins, `no stage ${from}`)), src) : join(ROOT, src);
          const target = dest.endsWith('/') ? join(inRoot(dest), posix.basename(src)) : inRoot(dest);
          await mkdir(dirname(target), { recursive: true });
          await cp(source, target, {
            recursive: true,
            // the build context is filtered by .dockerignore; another stage's files are copied as they are
            filter: (p) => from !== undefined || ctx.keep(relative(ROOT, p).split('\\').join('/')),
          });
        }
        break;
      }
      case 'RUN':
        for (const command of ins.args.split('&&').map((c) => c.trim())) await runCommand(command, ins, out, inRoot, ctx);
        break;
      case 'HEALTHCHECK': {
        const m = /\bCMD\s+(.+)$/s.exec(ins.args);
        if (!m) throw unknown(ins, 'HEALTHCHECK without CMD');
        out.healthcheck = m[1];
        break;
      }
      case 'CMD':
        out.cmd = execForm(ins.args, ins.line);
        break;
      case 'ENTRYPOINT':
        out.entrypoint = execForm(ins.args, ins.line);
        break;
      default:
        throw unknown(ins, ins.keyword);
    }
  }
  return out;
}

async function runCommand(
  command: string,
  ins: Instruction,
  stage: Replayed,
  inRoot: (p: string) => string,
  ctx: { users: Record<string, [number, number]>; npmOutput: string[] },
): Promise<void> {
  const cwd = inRoot('.');
  const words = command.split(/\s+/);
  const npm = async (args: string[]) => {
    // npm's cache stands in for the registry where it can; the result is the same lockfile-exact tree
    // npm with this machine's environment (its registry settings and certificates), less the test tooling's
    const env: Record<string, string> = { npm_config_prefer_offline: 'true' };
    for (const [k, v] of Object.entries(process.env)) {
      if (v !== undefined && k !== 'NODE_OPTIONS' && !k.startsWith('TAP') && !k.startsWith('_TAPJS')) env[k] = v;
    }
    const r = await run(...exactEnv('npm', args, env), { cwd, maxBuffer: 1 << 24 });
    ctx.npmOutput.push(r.stdout, r.stderr);
  };
  if (words[0] === 'npm' && words[1] === 'ci' && !words.includes('--omit=dev')) {
    // the build stage's full install: this checkout's node_modules, installed by `npm ci` from the same lockfile
    const lock = await readFile(join(cwd, 'package-lock.json'), 'utf8').catch(() => fail(ins, 'npm ci before package-lock.json is copied'));
    if (lock !== (await readFile(join(ROOT, 'package-lock.json'), 'utf8'))) fail(ins, 'the lockfile differs from the checkout’s');
    await symlink(join(ROOT, 'node_modules'), join(cwd, 'node_modules'));
  } else if (words[0] === 'npm' && (words[1] === 'ci' || (words[1] === 'run' && words[2] === 'build'))) {
    await npm(words.slice(1));
  } else if (words[0] === 'npm' && words[1] === 'cache' && words[2] === 'clean') {
    // image-size housekeeping: not part of the file set (and this machine's npm cache is not ours to clean)
  } else if (words[0] === 'apt-get' && words[1] === 'update') {
    // the package index: nothing of it stays in the image
  } else if (words[0] === 'apt-get' && words[1] === 'install') {
    // the files of the same Debian packages as installed on this machine (checked before the test started)
    for (const p of words.slice(2).filter((w) => !w.startsWith('-'))) {
      const files = (await run('dpkg-query', ['-L', p])).stdout.split('\n').filter(Boolean);
      for (const f of files) {
        const st = await stat(f);
        if (st.isFile()) {
          await mkdir(dirname(join(stage.rootfs, f)), { recursive: true, mode: 0o755 });
          await cp(f, join(stage.rootfs, f));
        }
      }
    }
  } else if (words[0] === 'rm' && words[1] === '-rf' && words[2] === '/var/lib/apt/lists/*') {
    // housekeeping after apt-get update
  } else if (words[0] === 'mkdir' && words[1] === '-p' && words.length === 3) {
    await mkdir(join(stage.rootfs, words[2]), { recursive: true, mode: 0o755 });
  } else if (words[0] === 'chown' && words.length === 3) {
    const ids = ctx.users[words[1].split(':')[0]] ?? fail(ins, `unknown user in ${command}`);
    if (process.getuid?.() === 0) await chown(join(stage.rootfs, words[2]), ids[0], ids[1]);
  } else {
    throw unknown(ins, `RUN ${command}`);
  }
}

function unknown(ins: Instruction, what: string): Error {
  return new Error(`Dockerfile line ${ins.line}: test/image.test.ts does not know what ${what} does; teach it`);
}

function fail(ins: Instruction, why: string): never {
  throw new Error(`Dockerfile line ${ins.line}: ${why}`);
}
