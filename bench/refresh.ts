// POST /auth/refresh against real Postgres, every request a real rotation: each connection opens its own session
// before the round and presents the refresh token its previous request returned. The peer does the same job with
// node-oidc-provider's refresh_token grant.
import { type BenchGateway, CONNECTIONS, openSessions, rotations, type Scenario, type Server } from './common.js';
import { peerRefreshTokens, peerRotations } from './peer.js';

export function refreshScenario(gw: BenchGateway): Scenario {
  return {
    key: 'refresh',
    label: 'POST /auth/refresh',
    system: 'gateway',
    server: gw,
    peer: 'oidc-provider-refresh',
    // fresh sessions every round: a request cut off when the previous round stopped has rotated its token already
    prepare: async () => rotations((await openSessions(gw, CONNECTIONS)).map((s) => s.refreshToken)),
  };
}

export function peerRefreshScenario(peer: Server): Scenario {
  return {
    key: 'oidc-provider-refresh',
    label: 'oidc-provider refresh_token grant',
    system: 'oidc-provider',
    server: peer,
    prepare: async () => peerRotations(await peerRefreshTokens(peer, CONNECTIONS)),
  };
}
