// GET /auth/userinfo with a Bearer access token: strict verification plus the session and user lookups.
import { randomUUID } from 'node:crypto';
import { baseline, build, report, run, startGateway } from './common.js';

build();
const gw = await startGateway();
try {
  const now = new Date();
  const id = randomUUID();
  await gw.storage.db
    .insertInto('users')
    .values({ id, email: 'bench@example.com', name: 'Bench', picture: null, created_at: now, updated_at: now })
    .execute();
  const { accessToken } = await gw.app.ctx.sessions.open(id, { provider: 'bench' });
  const base = await baseline();
  report('userinfo', 'req', await run({ url: `${gw.url}/auth/userinfo`, headers: { authorization: `Bearer ${accessToken}` } }), base);
} finally {
  await gw.close();
}
