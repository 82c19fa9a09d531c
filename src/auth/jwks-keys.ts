// The keys of a JWKS endpoint (JWT_JWKS_URL): fetched and cached by jose, paced by the relay, each
// key held to JWT_PUBLIC_KEY's rules before it verifies anything.

import { createPublicKey, type JsonWebKeyInput, type KeyObject } from 'node:crypto';
import { createRemoteJWKSet, errors, type JWK } from 'jose';
import { redactQueryValues, redactUrlSecrets } from '../redact-url.ts';
import { JWK_SHAPE_BY_ALGORITHM, type JwkShape, type JwsAlgorithm } from './algorithms.ts';
import type { JwsHeader } from './compact-jws.ts';
import type { VerificationKeyMaterial } from './jws-signature.ts';
import { checkVerificationKey, type PublicKeyResult } from './public-key.ts';
import { TOKEN_ERROR_REASONS as REASONS, TokenError, tokenErrorWith, type TokenErrorReason } from './token-error.ts';

/** Where the keys for a token's header come from. */
export interface KeySource {
  /**
   * The keys that may have signed a token with this header and `alg` (at least one), or null when
   * none is known yet (fetch() may find it). Throws a TokenError when the keys it knows for the
   * token may not verify it.
   */
  keysFor(header: JwsHeader, alg: JwsAlgorithm): readonly VerificationKeyMaterial[] | null;
  /** Fetches the keys again, unless that was tried too recently (then rejects with a TokenError). */
  fetch(): Promise<void>;
}


export interface RemoteKeysOptions {
  /** How long a fetched set is used before a token starts a fetch in the background (jose's default: 10 minutes). */
  readonly maxAgeMs?: number;
  /**
   * A fetch in the background failed (its error names the address with its query values blanked):
   * the keys fetched before stay in use.
   */
  readonly onRefreshFailed?: (error: Error) => void;
}

/** Most keys of a JWKS tried for one token (one without `kid`); see remoteKeySource. */
const MAX_KEYS_TRIED = 4;

/**
 * Keys of a JWKS endpoint, used synchronously from a cache. jose fetches and parses the set; the
 * pace is ours: a fetch (for an unknown `kid`, or because the set is older than jose's 10-minute
 * cache age) starts at most once per cooldown, however many tokens ask for one, so that tokens
 * with made-up `kid`s cannot turn the relay into a flood of requests to the identity provider.
 */
export function remoteKeySource(url: string, cooldownMs: number, options: RemoteKeysOptions = {}): KeySource {
  const remote = createRemoteJWKSet(new URL(url), options.maxAgeMs === undefined ? {} : { cacheMaxAge: options.maxAgeMs });
  const imported = new Map<string, PublicKeyResult>();
  // On the monotonic clock: a wall clock stepped back would hold every fetch off for that long.
  let lastFetchStartedMs = -Infinity;
  let pending: Promise<void> | undefined;

  function fetchAllowed(): boolean {
    return pending !== undefined || performance.now() - lastFetchStartedMs >= cooldownMs;
  }

  function fetchKeys(): Promise<void> {
    if (!pending) {
      lastFetchStartedMs = performance.now();
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
        // The cached keys stay in use and the next token retries after the cooldown; but an
        // identity provider that stays down must be seen before its keys rotate, when every
        // token would be refused at once.
        fetchKeys().catch((error: unknown) => options.onRefreshFailed?.(jwksFetchFailure(url, error)));
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
