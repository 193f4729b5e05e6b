// GET /.well-known/jwks.json: what every sibling service fetches.
import { baseline, build, report, run, startGateway } from './common.js';

build();
const gw = await startGateway(process.env.BENCH_LOG_LEVEL ? { LOG_LEVEL: process.env.BENCH_LOG_LEVEL } : {});
try {
  const base = await baseline();
  report('jwks', 'req', await run({ url: `${gw.url}/.well-known/jwks.json` }), base);
} finally {
  await gw.close();
}
