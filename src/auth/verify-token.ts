import type { JWTPayload } from 'jose';
import type { KeyedAuthConfig, TokenClaimsConfig } from '../config.ts';
import { isExactNumber } from '../exact-json.ts';
import { readClaim } from '../filters/claims.ts';
import { remoteKeySource, type KeySource, type RemoteKeysOptions } from './jwks-keys.ts';
import { verifyJwsSignature } from './jws-signature.ts';
import { parseCompactJws } from './compact-jws.ts';
import { TOKEN_ERROR_REASONS as REASONS, TokenError, quotedForLog, tokenErrorWith } from './token-error.ts';

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
  /**
   * Verifies at once, synchronously: the identity, or null when the signing key must be fetched
   * first (a JWKS `kid` not seen yet), in which case use verify(). Throws a TokenError.
   */
  verifyNow(token: string): VerifiedToken | null;
  /** Resolves with the token's identity, fetching keys when needed, or rejects with a TokenError. */
  verify(token: string): Promise<VerifiedToken>;
  /**
   * Fetches remote keys ahead of the first token (a JWKS), so that upgrades take the synchronous
   * path from the start. Rejects with a TokenError when the keys cannot be fetched.
   */
  prefetch(): Promise<void>;
}

// Far above any real JWT, far below what would make base64 decoding costly.
const MAX_TOKEN_CHARS = 16 * 1024;
const MAX_IAT_SKEW_SECONDS = 60;

/**
 * A verifier for `auth`'s key. Only the configured algorithms are accepted, and each only with a
 * key of its own kind, so `alg: none` and an HS256 token "signed" with a public key (key
 * confusion) are refused. `jwks`: where a JWKS refresh that failed in the background is reported,
 * and (for tests) how long a fetched set is used.
 */
export function createTokenVerifier(auth: KeyedAuthConfig, rules: TokenClaimsConfig, jwks: RemoteKeysOptions = {}): TokenVerifier {
  const keys = keySourceFor(auth, jwks);
  const accepted = new Set<string>(auth.algorithms);

  function verifyNow(token: string): VerifiedToken | null {
    const jws = parseCompactJws(token, MAX_TOKEN_CHARS);
    if (!accepted.has(jws.alg)) {
      throw tokenErrorWith(REASONS.algorithmNotAccepted, `alg ${jws.alg}; accepted here: ${auth.algorithms.join(', ')}`);
    }
    const candidates = keys.keysFor(jws.header, jws.alg);
    if (candidates === null) return null;
    // More than one only for a JWKS token without `kid` (both keys of a rotation, say): any one
    // that verifies will do, as with jose.
    if (!candidates.some((key) => verifyJwsSignature(jws.alg, key, jws.signingInput, jws.signature))) {
      throw new TokenError(REASONS.badSignature);
    }
    const payload = timeClaimsAsNumbers(jws.payload);
    // Not rounded to the second: an `exp` with a fraction (RFC 7519 allows one) has passed as soon
    // as the clock passes it, not at the end of its second.
    checkClaims(payload, rules, Date.now() / 1000);
    return identityOf(payload, rules.roleClaim);
  }

  return {
    verifyNow,
    prefetch: () => keys.fetch(),
    async verify(token) {
      const verified = verifyNow(token);
      if (verified) return verified;
      await keys.fetch();
      const afterFetch = verifyNow(token);
      if (!afterFetch) throw tokenErrorWith(REASONS.unknownKey, 'the JWKS, fetched just now, has no key for its kid and alg');
      return afterFetch;
    },
  };
}

function keySourceFor(auth: KeyedAuthConfig, jwks: RemoteKeysOptions): KeySource {
  switch (auth.kind) {
    case 'secret': {
      const secret = new TextEncoder().encode(auth.secret);
      return { keysFor: () => [secret], fetch: async () => undefined };
    }
    case 'public-key':
      return { keysFor: () => [auth.key], fetch: async () => undefined };
    case 'jwks':
      return remoteKeySource(auth.url, auth.refetchCooldownMs, jwks);
  }
}

/**
 * `exp`, `nbf` and `iat` as numbers: the payload keeps numbers a double would change as their text
 * (for filters on claims), and a NumericDate may be written with more digits than a double holds
 * (RFC 7519 allows fractions); to the second, the nearest double is the same time.
 */
function timeClaimsAsNumbers(payload: JWTPayload): JWTPayload {
  if (!TIME_CLAIMS.some((claim) => isExactNumber(payload[claim]))) return payload;
  const copy: Record<string, unknown> = { ...payload };
  for (const claim of TIME_CLAIMS) {
    const value: unknown = payload[claim];
    if (isExactNumber(value)) copy[claim] = Number(value.value);
  }
  return copy as JWTPayload;
}

const TIME_CLAIMS = ['exp', 'nbf', 'iat'] as const;

/** The registered claims jose would check, with the same reasons. */
function checkClaims(payload: JWTPayload, rules: TokenClaimsConfig, nowSeconds: number): void {
  for (const claim of TIME_CLAIMS) {
    if (payload[claim] !== undefined && (typeof payload[claim] !== 'number' || !Number.isFinite(payload[claim]))) {
      throw tokenErrorWith(REASONS.invalidClaims, `${claim} is not a finite number`);
    }
  }
  if (rules.issuer !== undefined && payload.iss !== rules.issuer) {
    throw tokenErrorWith(REASONS.issuerMismatch, `iss ${quotedForLog(payload.iss)}; JWT_ISSUER is ${quotedForLog(rules.issuer)}`);
  }
  if (rules.audience !== undefined) {
    const audiences = typeof payload.aud === 'string' ? [payload.aud] : Array.isArray(payload.aud) ? payload.aud : [];
    if (!audiences.some((audience) => rules.audience!.includes(audience))) {
      throw tokenErrorWith(REASONS.audienceMismatch, `aud ${quotedForLog(payload.aud)}; JWT_AUDIENCE is ${quotedForLog(rules.audience.join(','))}`);
    }
  }
  // How far off, in whole seconds (as a clock read to the second would say): the operator's first
  // question is whether a clock is wrong.
  if (payload.nbf !== undefined && payload.nbf > nowSeconds) {
    throw tokenErrorWith(REASONS.notYetValid, `nbf is ${Math.ceil(payload.nbf - nowSeconds)} s ahead of this relay's clock`);
  }
  // A token issued in the future was made on a broken clock or forged to outlive its issuer's
  // intent; a minute of leeway keeps an issuer whose clock runs a little ahead working.
  if (payload.iat !== undefined && payload.iat > nowSeconds + MAX_IAT_SKEW_SECONDS) {
    const ahead = Math.ceil(payload.iat - nowSeconds);
    throw tokenErrorWith(REASONS.notYetValid, `iat is ${ahead} s ahead of this relay's clock (${MAX_IAT_SKEW_SECONDS} s allowed)`);
  }
  if (payload.exp !== undefined && payload.exp <= nowSeconds) {
    throw tokenErrorWith(REASONS.expired, `exp passed ${Math.floor(nowSeconds - payload.exp)} s ago by this relay's clock`);
  }
}

function identityOf(payload: JWTPayload, roleClaim: string): VerifiedToken {
  const role = readClaim(payload, roleClaim);
  if (typeof role !== 'string' || role === '') {
    throw tokenErrorWith(REASONS.missingRole, `no non-empty string at JWT_ROLE_CLAIM ${quotedForLog(roleClaim)}`);
  }
  const { sub, exp } = payload;
  // jose checks `exp` is a number when present, but leaves `sub` unchecked.
  if (sub !== undefined && typeof sub !== 'string') throw tokenErrorWith(REASONS.invalidClaims, 'sub is not a string');
  return { claims: payload, role, sub: sub ?? null, exp: exp ?? null };
}
