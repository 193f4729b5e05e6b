// `npm run gateway` / `node dist/src/server.js`: the gateway process (src/gateway.ts does the work).
import { loadConfig } from './config.js';
import { runGateway } from './gateway.js';
import { exitOnStartupFailure } from './startup.js';

try {
  await runGateway(await loadConfig());
} catch (err) {
  exitOnStartupFailure(err);
}
