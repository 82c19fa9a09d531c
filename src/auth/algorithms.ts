// The JWS algorithms the relay can accept, grouped by the kind of key that verifies them. Only what
// jose 6 verifies on Node 20: no Ed448 (jose 6 dropped it), no ML-DSA (needs a newer Node).

/** HMAC algorithms, verified with JWT_SECRET. */
export const HMAC_ALGORITHMS = ['HS256', 'HS384', 'HS512'] as const;

/** RSA algorithms (PKCS#1 v1.5 and PSS), verified with an RSA public key. */
export const RSA_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'] as const;

/** RSA-PSS algorithms only, for keys whose type restricts them to PSS. */
export const RSA_PSS_ALGORITHMS = ['PS256', 'PS384', 'PS512'] as const;

/** ECDSA algorithms; each one is bound to a single curve. */
export const EC_ALGORITHMS = ['ES256', 'ES384', 'ES512'] as const;

/** Ed25519 signatures: `EdDSA` (RFC 8037) and its fully specified name `Ed25519` (RFC 9864). */
export const EDDSA_ALGORITHMS = ['EdDSA', 'Ed25519'] as const;

/** Every algorithm that a public key or a JWKS can verify. */
export const ASYMMETRIC_ALGORITHMS = [...RSA_ALGORITHMS, ...EC_ALGORITHMS, ...EDDSA_ALGORITHMS] as const;

/** An asymmetric `alg` value: verified with a public key or a JWKS. */
export type AsymmetricAlgorithm = (typeof ASYMMETRIC_ALGORITHMS)[number];

/** What a JWK must hold to verify an algorithm. */
export interface JwkShape {
  readonly kty: string;
  readonly crv?: string;
}

/**
 * The JWK `kty` (and `crv`) of the keys that can verify each asymmetric algorithm (RFC 7518
 * section 6, RFC 8037): how a JWKS member is matched to a token that names no `kid`.
 */
export const JWK_SHAPE_BY_ALGORITHM: Readonly<Record<AsymmetricAlgorithm, JwkShape>> = {
  RS256: { kty: 'RSA' },
  RS384: { kty: 'RSA' },
  RS512: { kty: 'RSA' },
  PS256: { kty: 'RSA' },
  PS384: { kty: 'RSA' },
  PS512: { kty: 'RSA' },
  ES256: { kty: 'EC', crv: 'P-256' },
  ES384: { kty: 'EC', crv: 'P-384' },
  ES512: { kty: 'EC', crv: 'P-521' },
  EdDSA: { kty: 'OKP', crv: 'Ed25519' },
  Ed25519: { kty: 'OKP', crv: 'Ed25519' },
};

/** Every algorithm the relay knows; `none` is deliberately absent. */
export const SUPPORTED_ALGORITHMS = [...HMAC_ALGORITHMS, ...ASYMMETRIC_ALGORITHMS] as const;

/** A JWS `alg` value the relay can verify. */
export type JwsAlgorithm = (typeof SUPPORTED_ALGORITHMS)[number];

/** An HMAC `alg` value. */
export type HmacAlgorithm = (typeof HMAC_ALGORITHMS)[number];

/**
 * Shortest secret per HMAC algorithm, in bytes: RFC 7518 section 3.2 requires a key at least as
 * long as the hash output.
 */
export const HMAC_MIN_SECRET_BYTES = { HS256: 32, HS384: 48, HS512: 64 } as const satisfies Record<
  HmacAlgorithm,
  number
>;

/** Whether `name` is an algorithm the relay can verify (case-sensitive, as in a JWS header). */
export function isSupportedAlgorithm(name: string): name is JwsAlgorithm {
  return (SUPPORTED_ALGORITHMS as readonly string[]).includes(name);
}

/** The HMAC algorithms that a secret of `secretBytes` bytes is long enough for. */
export function hmacAlgorithmsForSecret(secretBytes: number): readonly HmacAlgorithm[] {
  return HMAC_ALGORITHMS.filter((alg) => secretBytes >= HMAC_MIN_SECRET_BYTES[alg]);
}
