// `npm run keys -- <command>` (production: `node dist/src/keys-cli.js <command>`): signing-key operations an
// operator may need when the gateway cannot do them itself.
//
//   list              every stored key: kid, alg, state, and whether SECRET_KEY (or SECRET_KEY_PREVIOUS) opens it
//   drop-unreadable   deletes the next/active keys that neither SECRET_KEY nor SECRET_KEY_PREVIOUS opens (the
//                     previous SECRET_KEY was lost); the next start makes a new key that signs at once. Tokens the
//                     dropped keys signed stop verifying, and refresh tokens made under the lost key are refused.
import { loadConfig } from './config.js';
import { exitOnStartupFailure } from './startup.js';
import { openStorage, type Storage, waitForDatabase } from './storage/db.js';
import { migrate } from './storage/migrator.js';
import { DatabaseKeyStore } from './tokens/key-store.js';
import { SecretBox } from './tokens/secret-box.js';

const USAGE = 'usage: npm run keys -- list | drop-unreadable';

async function main(argv: string[]): Promise<number> {
  const command = argv[0];
  if (command !== 'list' && command !== 'drop-unreadable') {
    process.stderr.write(`${USAGE}\n`);
    return 2;
  }
  const { config } = await loadConfig();
  const storage = await openStorage(config.databaseUrl ? { databaseUrl: config.databaseUrl } : { pgliteDir: config.dataDir });
  try {
    await waitForDatabase(storage, { timeoutSeconds: config.databaseConnectTimeout });
    await migrate(storage.db);
    return command === 'list' ? await list(storage, box(config)) : await dropUnreadable(storage, box(config));
  } finally {
    await storage.close();
  }
}

function box(config: { secretKey: Buffer; secretKeyPrevious: Buffer | undefined }): SecretBox {
  return new SecretBox(config.secretKeyPrevious ? [config.secretKey, config.secretKeyPrevious] : [config.secretKey], 'signing keys');
}

async function list(storage: Storage, secrets: SecretBox): Promise<number> {
  const keys = await new DatabaseKeyStore(storage.db).list();
  for (const k of keys) {
    const opened = secrets.tryOpen(k.private_jwk_enc, k.kid);
    const readable = opened ? (opened.current ? 'SECRET_KEY' : 'SECRET_KEY_PREVIOUS') : 'unreadable';
    process.stdout.write(`${k.kid}\t${k.alg}\t${k.state}\t${readable}\n`);
  }
  if (keys.length === 0) process.stdout.write('no signing keys (one is made at start-up)\n');
  return 0;
}

async function dropUnreadable(storage: Storage, secrets: SecretBox): Promise<number> {
  const store = new DatabaseKeyStore(storage.db);
  const dropped = await store.withRotationLock(async (tx) => {
    const out: string[] = [];
    for (const k of await tx.list()) {
      // a retired key only verifies (its public part stays published until it expires): it is kept
      if (k.state === 'retired' || secrets.tryOpen(k.private_jwk_enc, k.kid)) continue;
      await tx.remove(k.kid);
      out.push(`${k.kid} (${k.alg}, ${k.state})`);
    }
    return out;
  });
  process.stdout.write(
    dropped.length
      ? `dropped ${dropped.length} unreadable signing key(s): ${dropped.join(', ')}\nthe next start makes a new signing key\n`
      : 'every next and active signing key opens with SECRET_KEY: nothing dropped\n',
  );
  return 0;
}

try {
  process.exit(await main(process.argv.slice(2)));
} catch (err) {
  exitOnStartupFailure(err);
}
