// GET /.well-known/jwks.json: what every sibling service fetches.
import type { BenchGateway, Scenario } from './common.js';

export function jwksScenario(gw: BenchGateway): Scenario {
  return {
    key: 'jwks',
    label: 'GET /.well-known/jwks.json',
    system: 'gateway',
    server: gw,
    prepare: async () => ({ url: `${gw.url}/.well-known/jwks.json` }),
  };
}
