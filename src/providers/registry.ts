// One UpstreamProvider per configured provider, chosen by its type. Nothing is fetched until a provider is used.
import * as oauth from 'oauth4webapi';
import type { ProviderConfig } from '../config.js';
import { GitHubProvider } from './github.js';
import { GoogleProvider } from './google.js';
import { MicrosoftProvider } from './microsoft.js';
import { OidcProvider } from './oidc.js';
import type { FlowSecrets, ProviderDeps, UpstreamProvider } from './types.js';

export interface ProviderRegistry {
  get(id: string): UpstreamProvider | undefined;
  /** in configuration order */
  list(): UpstreamProvider[];
}

export interface RegistryOptions {
  /** window in which an unknown ID token `kid` triggers at most one JWKS refetch (default 30 s) */
  jwksCooldownMs?: number;
}

export function createProvider(config: ProviderConfig, deps: ProviderDeps, options: RegistryOptions = {}): UpstreamProvider {
  switch (config.type) {
    case 'google':
      return new GoogleProvider(config, deps, options);
    case 'microsoft':
      return new MicrosoftProvider(config, deps, options);
    case 'github':
      return new GitHubProvider(config, deps);
    case 'oidc':
      return new OidcProvider(config, deps, options);
  }
}

export function createProviderRegistry(configs: ProviderConfig[], deps: ProviderDeps, options: RegistryOptions = {}): ProviderRegistry {
  const providers = new Map(configs.map((c) => [c.id, createProvider(c, deps, options)] as const));
  return {
    get: (id) => providers.get(id),
    list: () => [...providers.values()],
  };
}

/** Fresh one-time secrets for a login flow with this provider (state, PKCE verifier, and a nonce for OIDC). */
export function newFlowSecrets(provider: Pick<UpstreamProvider, 'usesNonce'>): FlowSecrets {
  return {
    state: oauth.generateRandomState(),
    nonce: provider.usesNonce ? oauth.generateRandomNonce() : undefined,
    codeVerifier: oauth.generateRandomCodeVerifier(),
  };
}
