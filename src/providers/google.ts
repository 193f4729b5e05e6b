// Google: a plain OpenID Connect provider (https://accounts.google.com), discovered and verified by OidcProvider.
import type { ProviderConfig } from '../config.js';
import { OidcProvider, type OidcOptions } from './oidc.js';
import type { ProviderDeps } from './types.js';

export const GOOGLE_ISSUER = 'https://accounts.google.com';

export class GoogleProvider extends OidcProvider {
  constructor(config: ProviderConfig, deps: ProviderDeps, options: OidcOptions = {}) {
    super({ ...config, issuer: config.issuer ?? GOOGLE_ISSUER }, deps, options);
  }
}
