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

/**
 * The details of a refusal for the operator's log, never for the client: the message of a
 * TokenError's cause (a JWKS key refused for its size, an `alg` outside JWT_ALGORITHMS, how far
 * ahead `nbf` is), or undefined. Those messages are written by the relay from the token's decoded
 * header and claims, from the keys, or by JSON.parse reading a decoded part: none quotes the
 * compact token. Any other error is a bug, named by its type only, since its message could quote anything.
 */
export function refusalCause(error: unknown): string | undefined {
  if (!(error instanceof TokenError)) return error instanceof Error ? `unexpected ${error.name} (not a TokenError)` : undefined;
  return error.cause instanceof Error ? error.cause.message : undefined;
}

/** How much of a claim or header value a cause quotes, in UTF-16 units. */
const MAX_QUOTED_CHARS = 40;

/** A claim or header value as a cause quotes it: JSON, cut short (a client chooses its length). */
export function quotedForLog(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  if (text.length <= MAX_QUOTED_CHARS) return text;
  // Not between the two halves of a character outside the BMP (an emoji): half of one is no text,
  // and the log would show it as U+FFFD.
  const highSurrogateLast = /[\uD800-\uDBFF]/.test(text.charAt(MAX_QUOTED_CHARS - 1));
  return `${text.slice(0, highSurrogateLast ? MAX_QUOTED_CHARS - 1 : MAX_QUOTED_CHARS)}...`;
}

/** A TokenError whose `detail` goes to the log as its cause (see refusalCause). */
export function tokenErrorWith(reason: TokenErrorReason, detail: string): TokenError {
  return new TokenError(reason, { cause: new Error(detail) });
}
