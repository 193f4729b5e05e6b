// Microsoft identity platform (Entra ID v2.0) as an OidcProvider preset.
// A fixed tenant is a plain OIDC issuer. For common/organizations the discovery document's issuer is the template
// https://login.microsoftonline.com/{tenantid}/v2.0: each ID token must carry that template filled with its own
// `tid`, and `tid` must be one of ALLOWED_TENANTS when that list is set.
import type { ProviderConfig } from '../config.js';
import { OidcProvider, type OidcOptions } from './oidc.js';
import { type ProviderDeps, ProviderError } from './types.js';

export const MICROSOFT_ISSUER_TEMPLATE = 'https://login.microsoftonline.com/{tenantid}/v2.0';
/** The tenant of personal Microsoft accounts: /consumers discovery names this concrete issuer, not the template. */
export const MICROSOFT_CONSUMERS_TENANT = '9188040d-6c67-4c5b-b112-36a304b66dad';
const TENANT_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export class MicrosoftProvider extends OidcProvider {
  constructor(config: ProviderConfig, deps: ProviderDeps, options: OidcOptions = {}) {
    const issuer = config.issuer ?? MICROSOFT_ISSUER_TEMPLATE.replace('{tenantid}', config.tenant);
    const templated = issuer.includes('{tenantid}');
    const allowed = new Set(config.allowedTenants.map((t) => t.toLowerCase()));
    const own: OidcOptions = {};
    if (templated) {
      own.discoveryUrl = issuer.replace('{tenantid}', config.tenant);
      if (config.tenant === 'consumers') {
        own.issuer = issuer.replace('{tenantid}', MICROSOFT_CONSUMERS_TENANT);
      } else {
        own.expectedIssuer = (unverified, discovered) => {
          const tid = typeof unverified.tid === 'string' ? unverified.tid : '';
          // a multi-tenant ID token is only bound to an issuer through its tid: no usable tid, no acceptable issuer
          if (!TENANT_ID.test(tid)) throw new ProviderError('id_token_iss', 'ID token has no valid tid');
          return discovered.replace('{tenantid}', tid);
        };
      }
    }
    if (allowed.size > 0) {
      own.validateClaims = (claims) => {
        if (typeof claims.tid !== 'string' || !allowed.has(claims.tid.toLowerCase())) {
          throw new ProviderError('tenant_not_allowed', 'the user belongs to a tenant that is not allowed');
        }
      };
    }
    super({ ...config, issuer }, deps, { ...own, ...options });
  }
}
