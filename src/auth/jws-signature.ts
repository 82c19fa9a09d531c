// Checks a JWS signature with node:crypto, synchronously. jose's verification is asynchronous
// (WebCrypto), and an asynchronous WebSocket upgrade is what this uWebSockets.js build gets wrong
// (see src/ws/server.ts); the signature is the only part done here, with the primitives jose
// itself would use.

import { constants, createHmac, timingSafeEqual, verify, type KeyObject } from 'node:crypto';
import type { JwsAlgorithm } from './algorithms.ts';

type Scheme =
  | { readonly kind: 'hmac'; readonly hash: string }
  | { readonly kind: 'rsa'; readonly hash: string }
  | { readonly kind: 'rsa-pss'; readonly hash: string }
  | { readonly kind: 'ecdsa'; readonly hash: string; readonly curve: string }
  | { readonly kind: 'eddsa' };

/** How each accepted `alg` is checked (RFC 7518 section 3, RFC 8037). */
const SCHEMES: Readonly<Record<JwsAlgorithm, Scheme>> = {
  HS256: { kind: 'hmac', hash: 'sha256' },
  HS384: { kind: 'hmac', hash: 'sha384' },
  HS512: { kind: 'hmac', hash: 'sha512' },
  RS256: { kind: 'rsa', hash: 'sha256' },
  RS384: { kind: 'rsa', hash: 'sha384' },
  RS512: { kind: 'rsa', hash: 'sha512' },
  PS256: { kind: 'rsa-pss', hash: 'sha256' },
  PS384: { kind: 'rsa-pss', hash: 'sha384' },
  PS512: { kind: 'rsa-pss', hash: 'sha512' },
  ES256: { kind: 'ecdsa', hash: 'sha256', curve: 'prime256v1' },
  ES384: { kind: 'ecdsa', hash: 'sha384', curve: 'secp384r1' },
  ES512: { kind: 'ecdsa', hash: 'sha512', curve: 'secp521r1' },
  EdDSA: { kind: 'eddsa' },
  Ed25519: { kind: 'eddsa' },
};

/** A key as configured: an HMAC secret, or a public KeyObject. */
export type VerificationKeyMaterial = Uint8Array | KeyObject;

/**
 * Whether `signature` signs `signingInput` (`header.payload`, ASCII) under `alg` with `key`.
 * A key of the wrong kind for the algorithm (an HMAC secret for RS256, a P-256 key for ES384, a
 * public key for HS256) never verifies: that is the key-confusion attack.
 */
export function verifyJwsSignature(
  alg: JwsAlgorithm,
  key: VerificationKeyMaterial,
  signingInput: Buffer,
  signature: Buffer,
): boolean {
  const scheme = SCHEMES[alg];
  if (scheme.kind === 'hmac') {
    if (!(key instanceof Uint8Array)) return false;
    const expected = createHmac(scheme.hash, key).update(signingInput).digest();
    return expected.length === signature.length && timingSafeEqual(expected, signature);
  }
  if (key instanceof Uint8Array || key.type !== 'public') return false;
  const type = key.asymmetricKeyType;
  try {
    switch (scheme.kind) {
      case 'rsa':
        return type === 'rsa' && verify(scheme.hash, signingInput, key, signature);
      case 'rsa-pss':
        return (
          (type === 'rsa' || type === 'rsa-pss') &&
          verify(
            scheme.hash,
            signingInput,
            { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST },
            signature,
          )
        );
      case 'ecdsa':
        return (
          type === 'ec' &&
          key.asymmetricKeyDetails?.namedCurve === scheme.curve &&
          verify(scheme.hash, signingInput, { key, dsaEncoding: 'ieee-p1363' }, signature)
        );
      case 'eddsa':
        // Both names mean Ed25519 here (src/auth/algorithms.ts): `Ed25519` names that curve alone,
        // and Ed448 keys are refused for `EdDSA` too, as JWT_PUBLIC_KEY refuses them.
        return type === 'ed25519' && verify(null, signingInput, key, signature);
    }
  } catch {
    // node:crypto throws on a signature of the wrong length or shape: that is a bad signature.
    return false;
  }
}
