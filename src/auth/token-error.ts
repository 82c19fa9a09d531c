/**
 * Why a token was refused: short, stable and safe to show a client (the 401 body's `reason`).
 * Details go to the log through the error's `cause`; no message ever holds the token.
 */
export const TOKEN_ERROR_REASONS = {
  missing: 'missing token',
  malformed: 'malformed token',
  badSignature: 'bad signature',
  algorithmNotAccepted: 'algorithm not accepted',
  expired: 'token expired',
  notYetValid: 'token not yet valid',
  issuerMismatch: 'issuer mismatch',
  audienceMismatch: 'audience mismatch',
  invalidClaims: 'invalid claims',
  missingRole: 'missing role claim',
  unknownKey: 'unknown signing key',
  keysUnavailable: 'signing keys unavailable',
} as const;

/** One of the client-safe reasons of {@link TOKEN_ERROR_REASONS}. */
export type TokenErrorReason = (typeof TOKEN_ERROR_REASONS)[keyof typeof TOKEN_ERROR_REASONS];

/** A token that was refused; `reason` is what the client may see. */
export class TokenError extends Error {
  readonly code = 'ERR_RELAY_TOKEN';
  readonly reason: TokenErrorReason;

  constructor(reason: TokenErrorReason, options?: ErrorOptions) {
    super(reason, options);
    this.name = 'TokenError';
    this.reason = reason;
  }
}

/** The client-safe reason of a refusal: a TokenError's own, else a generic one (never details). */
export function refusalReason(error: unknown): string {
  return error instanceof TokenError ? error.reason : 'invalid token';
}
