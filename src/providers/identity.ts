// The last step of every provider type's identity normalisation: what the provider vouched for must be storable
// as it is. A claim holding U+0000 (which Postgres cannot store) ends the login with the reason invalid_claim,
// instead of a 500 after the flow was consumed.
import { findNul } from '../http/nul.js';
import { type NormalizedIdentity, ProviderError } from './types.js';

export function checkedIdentity(identity: NormalizedIdentity): NormalizedIdentity {
  const { subject, email, name, picture, claims } = identity;
  const at = findNul({ sub: subject, email, name, picture }) ?? findNul(claims);
  if (at !== undefined) throw new ProviderError('invalid_claim', `the provider's claim ${at} holds a NUL character (U+0000)`);
  return identity;
}
