import { createPublicKey, type JsonWebKeyInput, type KeyObject } from 'node:crypto';
import { createRemoteJWKSet, errors, type JWK, type JWTPayload } from 'jose';
import type { KeyedAuthConfig, TokenClaimsConfig } from '../config.ts';
import { isExactNumber } from '../exact-json.ts';
import { redactQueryValues, redactUrlSecrets } from '../redact-url.ts';
import { readClaim } from '../filters/claims.ts';
import { JWK_SHAPE_BY_ALGORITHM, type JwkShape, type JwsAlgorithm } from './algorithms.ts';
import { verifyJwsSignature, type VerificationKeyMaterial } from './jws-signature.ts';
import { checkVerificationKey, type PublicKeyResult } from './public-key.ts';
import { parseCompactJws, type JwsHeader } from './compact-jws.ts';
import { TOKEN_ERROR_REASONS as REASONS, TokenError, quotedForLog, tokenErrorWith, type TokenErrorReason } from './token-error.ts';

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
/** Most keys of a JWKS tried for one token (one without `kid`); see remoteKeySource. */
const MAX_KEYS_TRIED = 4;

/**
 * A verifier for `auth`'s key. Only the configured algorithms are accepted, and each only with a
 * key of its own kind, so `alg: none` and an HS256 token "signed" with a public key (key
 * confusion) are refused.
 */
export function createTokenVerifier(auth: KeyedAuthConfig, rules: TokenClaimsConfig): TokenVerifier {
  const keys = keySourceFor(auth);
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
    checkClaims(payload, rules, Math.floor(Date.now() / 1000));
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

/** Where the keys for a token's header come from. */
interface KeySource {
  /**
   * The keys that may have signed a token with this header and `alg` (at least one), or null when
   * none is known yet (fetch() may find it). Throws a TokenError when the keys it knows for the
   * token may not verify it.
   */
  keysFor(header: JwsHeader, alg: JwsAlgorithm): readonly VerificationKeyMaterial[] | null;
  /** Fetches the keys again, unless that was tried too recently (then rejects with a TokenError). */
  fetch(): Promise<void>;
}

function keySourceFor(auth: KeyedAuthConfig): KeySource {
  switch (auth.kind) {
    case 'secret': {
      const secret = new TextEncoder().encode(auth.secret);
      return { keysFor: () => [secret], fetch: async () => undefined };
    }
    case 'public-key':
      return { keysFor: () => [auth.key], fetch: async () => undefined };
    case 'jwks':
      return remoteKeySource(auth.url, auth.refetchCooldownMs);
  }
}

/**
 * Keys of a JWKS endpoint, used synchronously from a cache. jose fetches and parses the set; the
 * pace is ours: a fetch (for an unknown `kid`, or because the set is older than jose's 10-minute
 * cache age) starts at most once per cooldown, however many tokens ask for one, so that tokens
 * with made-up `kid`s cannot turn the relay into a flood of requests to the identity provider.
 */
function remoteKeySource(url: string, cooldownMs: number): KeySource {
  const remote = createRemoteJWKSet(new URL(url));
  const imported = new Map<string, PublicKeyResult>();
  let lastFetchStartedMs = -Infinity;
  let pending: Promise<void> | undefined;

  function fetchAllowed(): boolean {
    return pending !== undefined || Date.now() - lastFetchStartedMs >= cooldownMs;
  }

  function fetchKeys(): Promise<void> {
    if (!pending) {
      lastFetchStartedMs = Date.now();
      pending = remote.reload().finally(() => (pending = undefined));
    }
    return pending;
  }

  return {
    keysFor(header, alg) {
      // A stale set keeps serving (a relay must not stall on its identity provider) while a fetch
      // in the background replaces it; so a key removed from the set stops working within the
      // cache age plus one cooldown.
      if (remote.jwks() && !remote.fresh && fetchAllowed()) {
        fetchKeys().catch(() => {
          // Deliberately ignored: the cached keys stay in use and the next token retries after the cooldown.
        });
      }
      const shape = (JWK_SHAPE_BY_ALGORITHM as Partial<Record<JwsAlgorithm, JwkShape>>)[alg];
      // Never for a JWKS: its accepted algorithms are asymmetric (src/config.ts).
      if (!shape) throw new TokenError(REASONS.algorithmNotAccepted);
      // Matched as jose matches a set's members: the token's kid if it names one, and the key
      // type and curve its alg needs, so that a token without kid still finds its key when the
      // set publishes more than one (the old and the new key of a rotation).
      const candidates = (remote.jwks()?.keys ?? []).filter(
        (jwk) =>
          (header.kid === undefined || jwk.kid === header.kid) &&
          jwk.kty === shape.kty &&
          (shape.crv === undefined || jwk.crv === shape.crv) &&
          (jwk.alg === undefined || jwk.alg === alg) &&
          (jwk.use === undefined || jwk.use === 'sig') &&
          (jwk.key_ops === undefined || (Array.isArray(jwk.key_ops) && jwk.key_ops.includes('verify'))),
      );
      if (candidates.length === 0) return null;
      const usable: KeyObject[] = [];
      const refused: string[] = [];
      for (const jwk of candidates) {
        const cacheKey = JSON.stringify(jwk);
        let checked = imported.get(cacheKey);
        if (!checked) {
          checked = importJwk(jwk);
          imported.set(cacheKey, checked);
        }
        // The rules of JWT_PUBLIC_KEY: a 1024-bit RSA key or an Ed448 key in the set verifies nothing.
        if (!checked.ok) refused.push(checked.problem);
        else if (!checked.algorithms.includes(alg)) refused.push(`cannot verify ${alg}`);
        else usable.push(checked.key);
      }
      // The set holds keys for this token, and the relay refuses them: a refetch would not help.
      if (usable.length === 0) {
        throw new TokenError(REASONS.unknownKey, { cause: new Error(`the JWKS keys for it: ${refused.join('; ')}`) });
      }
      // Each key tried is a signature check on the event loop, for any token an attacker sends
      // without kid: a few cover a rotation, a set with more such keys needs kids in its tokens.
      if (usable.length > MAX_KEYS_TRIED) {
        const problem = `${usable.length} JWKS keys fit a token without kid; at most ${MAX_KEYS_TRIED} are tried`;
        throw new TokenError(REASONS.unknownKey, { cause: new Error(problem) });
      }
      return usable;
    },
    async fetch() {
      if (!fetchAllowed()) {
        throw remote.jwks()
          ? tokenErrorWith(REASONS.unknownKey, 'the JWKS has no key for its kid and alg, and was fetched within JWT_JWKS_COOLDOWN')
          : tokenErrorWith(REASONS.keysUnavailable, 'the JWKS could not be fetched, and is tried again once JWT_JWKS_COOLDOWN has passed');
      }
      try {
        await fetchKeys();
      } catch (error) {
        throw new TokenError(reasonFor(error), { cause: jwksFetchFailure(url, error) });
      }
    },
  };
}

/** Causes of a failed fetch followed at most this deep: fetch's own chain is two or three long. */
const MAX_CAUSES = 5;

/**
 * A failed fetch of the JWKS as an error safe to log: the address with its query values blanked
 * (JWT_JWKS_URL may carry an API key), then what went wrong, each message of the chain cleared of
 * the URL's secrets. The original error is not kept as the cause: its chain, stack and fields are
 * what a logger prints, and what they quote is up to jose and Node's fetch.
 */
function jwksFetchFailure(url: string, error: unknown): Error {
  const problems: string[] = [];
  let cause = error;
  while (cause instanceof Error && problems.length < MAX_CAUSES) {
    // JSON.parse quotes the answer's body, which may echo the request (an error page showing its URL).
    if (cause instanceof SyntaxError) break;
    problems.push(cause.message);
    cause = cause.cause;
  }
  const problem = problems.length > 0 ? problems.join(': ') : 'unknown error';
  return new Error(`cannot fetch the JWKS at ${redactQueryValues(url)}: ${redactUrlSecrets(problem, url)}`);
}

/** A JWKS member as a public key, checked as JWT_PUBLIC_KEY is checked. */
function importJwk(jwk: JWK): PublicKeyResult {
  // As for a PEM: a private key has no business in a published set (createPublicKey would derive
  // its public half and carry on).
  if (jwk.d !== undefined) return { ok: false, problem: 'is a private key' };
  let key: KeyObject;
  try {
    key = createPublicKey({ key: jwk as JsonWebKeyInput['key'], format: 'jwk' });
  } catch {
    return { ok: false, problem: `is not a public key Node can import (kty ${String(jwk.kty)})` };
  }
  return checkVerificationKey(key);
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
  // How far off, in seconds: the operator's first question is whether a clock is wrong.
  if (payload.nbf !== undefined && payload.nbf > nowSeconds) {
    throw tokenErrorWith(REASONS.notYetValid, `nbf is ${payload.nbf - nowSeconds} s ahead of this relay's clock`);
  }
  // A token issued in the future was made on a broken clock or forged to outlive its issuer's
  // intent; a minute of leeway keeps an issuer whose clock runs a little ahead working.
  if (payload.iat !== undefined && payload.iat > nowSeconds + MAX_IAT_SKEW_SECONDS) {
    const ahead = payload.iat - nowSeconds;
    throw tokenErrorWith(REASONS.notYetValid, `iat is ${ahead} s ahead of this relay's clock (${MAX_IAT_SKEW_SECONDS} s allowed)`);
  }
  if (payload.exp !== undefined && payload.exp <= nowSeconds) {
    throw tokenErrorWith(REASONS.expired, `exp passed ${nowSeconds - payload.exp} s ago by this relay's clock`);
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

/** The client-safe reason for a failure of jose's JWKS fetch (the only jose call left on this path). */
function reasonFor(error: unknown): TokenErrorReason {
  if (!(error instanceof errors.JOSEError)) return REASONS.keysUnavailable; // network and HTTP failures
  switch (error.code) {
    case 'ERR_JWKS_NO_MATCHING_KEY':
    case 'ERR_JWKS_MULTIPLE_MATCHING_KEYS':
      return REASONS.unknownKey;
    default: // ERR_JWKS_TIMEOUT, ERR_JWKS_INVALID, a bad answer from the JWKS endpoint
      return REASONS.keysUnavailable;
  }
}
