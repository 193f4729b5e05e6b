// GET /auth/userinfo with a Bearer access token: strict verification plus the session and user lookups. Each
// connection presents the access token of a session of its own.
import { type BenchGateway, CONNECTIONS, openSessions, perConnection, type Scenario } from './common.js';

export function userinfoScenario(gw: BenchGateway): Scenario {
  return {
    key: 'userinfo',
    label: 'GET /auth/userinfo',
    system: 'gateway',
    server: gw,
    prepare: async () =>
      perConnection(await openSessions(gw, CONNECTIONS), (session) => ({
        method: 'GET',
        path: '/auth/userinfo',
        headers: { authorization: `Bearer ${session.accessToken}` },
      })),
  };
}
