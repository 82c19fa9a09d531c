import type { KeyObject } from 'node:crypto';
import { createRemoteJWKSet, errors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import type { KeyedAuthConfig, TokenClaimsConfig } from '../config.ts';
import { readClaim } from '../filters/claims.ts';
import { TOKEN_ERROR_REASONS as REASONS, TokenError, type TokenErrorReason } from './token-error.ts';

/** What the relay knows about a subscriber once its token checks out. */
export interface VerifiedToken {
  readonly claims: Readonly<Record<string, unknown>>;
  /** The string at the role claim path. */
  readonly role: string;
  readonly sub: string | null;
  /** Expiry in seconds since the epoch, or null for a token that never expires. */
  readonly exp: number | null;
}

/** Checks tokens against one key source and the claim rules. */
export interface TokenVerifier {
  /** Resolves with the token's identity, or rejects with a TokenError. */
  verify(token: string): Promise<VerifiedToken>;
}

// Far above any real JWT, far below what would make base64 decoding costly.
const MAX_TOKEN_CHARS = 16 * 1024;

/**
 * A verifier for `auth`'s key. The accepted algorithms are always passed to jose explicitly, so
 * `alg: none` and an HS256 token "signed" with a public key (key confusion) are refused.
 */
export function createTokenVerifier(auth: KeyedAuthConfig, rules: TokenClaimsConfig): TokenVerifier {
  const key = verificationKey(auth);
  const options = {
    algorithms: [...auth.algorithms],
    ...(rules.issuer !== undefined && { issuer: rules.issuer }),
    ...(rules.audience !== undefined && { audience: [...rules.audience] }),
  };
  return {
    async verify(token) {
      if (token.length > MAX_TOKEN_CHARS) throw new TokenError(REASONS.malformed);
      let payload: JWTPayload;
      try {
        ({ payload } = await jwtVerify(token, key, options));
      } catch (error) {
        throw new TokenError(reasonFor(error), { cause: error });
      }
      return identityOf(payload, rules.roleClaim);
    },
  };
}

function verificationKey(auth: KeyedAuthConfig): Uint8Array | KeyObject | JWTVerifyGetKey {
  switch (auth.kind) {
    case 'secret':
      return new TextEncoder().encode(auth.secret);
    case 'public-key':
      return auth.key;
    case 'jwks':
      // jose caches the key set and refetches it when an unknown `kid` shows up (rate-limited).
      return createRemoteJWKSet(new URL(auth.url));
  }
}

function identityOf(payload: JWTPayload, roleClaim: string): VerifiedToken {
  const role = readClaim(payload, roleClaim);
  if (typeof role !== 'string' || role === '') throw new TokenError(REASONS.missingRole);
  const { sub, exp } = payload;
  // jose checks `exp` is a number when present, but leaves `sub` unchecked.
  if (sub !== undefined && typeof sub !== 'string') throw new TokenError(REASONS.invalidClaims);
  return { claims: payload, role, sub: sub ?? null, exp: exp ?? null };
}

/** The client-safe reason for an error thrown by jose's jwtVerify. */
export function reasonFor(error: unknown): TokenErrorReason {
  if (error instanceof errors.JWTClaimValidationFailed) return claimReason(error.claim, error.reason);
  if (!(error instanceof errors.JOSEError)) {
    // jose throws TypeError for a key that does not fit the token, and fetch errors escape from a
    // remote JWKS; the first is a refusal, the second our side's trouble.
    return error instanceof TypeError && /fetch/i.test(error.message) ? REASONS.keysUnavailable : REASONS.badSignature;
  }
  switch (error.code) {
    case 'ERR_JWT_EXPIRED':
      return REASONS.expired;
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
      return REASONS.badSignature;
    case 'ERR_JOSE_ALG_NOT_ALLOWED':
      return REASONS.algorithmNotAccepted;
    case 'ERR_JWS_INVALID':
    case 'ERR_JWT_INVALID':
    case 'ERR_JOSE_NOT_SUPPORTED': // e.g. a `crit` header extension we do not understand
      return REASONS.malformed;
    case 'ERR_JWKS_NO_MATCHING_KEY':
    case 'ERR_JWKS_MULTIPLE_MATCHING_KEYS':
      return REASONS.unknownKey;
    default: // ERR_JWKS_TIMEOUT, ERR_JWKS_INVALID, a bad HTTP answer from the JWKS endpoint
      return REASONS.keysUnavailable;
  }
}

function claimReason(claim: string, reason: string): TokenErrorReason {
  if (claim === 'nbf' && reason === 'check_failed') return REASONS.notYetValid;
  if (claim === 'iss') return REASONS.issuerMismatch;
  if (claim === 'aud') return REASONS.audienceMismatch;
  return REASONS.invalidClaims;
}
