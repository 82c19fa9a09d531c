import type { VerifiedToken } from '../auth/verify-token.ts';
import type { Identity } from '../subscription-hub.ts';

/** What the hub needs to know of a verified token. */
export function identityOf(token: VerifiedToken): Identity {
  return { role: token.role, sub: token.sub, claims: token.claims };
}
