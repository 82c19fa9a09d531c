import { createPublicKey, type KeyObject } from 'node:crypto';
import { EC_ALGORITHMS, EDDSA_ALGORITHMS, RSA_ALGORITHMS, RSA_PSS_ALGORITHMS, type JwsAlgorithm } from './algorithms.ts';

/** A public key jose can verify with, and the algorithms that fit it. */
export interface VerificationKey {
  readonly key: KeyObject;
  readonly algorithms: readonly JwsAlgorithm[];
}

/** Outcome of {@link parsePublicKey}: the key, or a one-line problem for the config error. */
export type PublicKeyResult = ({ readonly ok: true } & VerificationKey) | { readonly ok: false; readonly problem: string };

// jose refuses RSA keys under 2048 bits at verification time; refusing them at start-up instead
// turns every later 401 into one clear config error.
const MIN_RSA_BITS = 2048;

// OpenSSL curve names, as KeyObject reports them, to the one ECDSA algorithm of each curve.
const EC_ALGORITHM_BY_CURVE: Readonly<Record<string, (typeof EC_ALGORITHMS)[number]>> = {
  prime256v1: 'ES256',
  secp384r1: 'ES384',
  secp521r1: 'ES512',
};

const PSS_ALGORITHM_BY_HASH: Readonly<Record<string, (typeof RSA_PSS_ALGORITHMS)[number]>> = {
  sha256: 'PS256',
  sha384: 'PS384',
  sha512: 'PS512',
};

/**
 * Parses PEM text (SPKI, PKCS#1 or an X.509 certificate) into a key jose can verify with, and the
 * algorithms its type allows. Pure: no I/O.
 */
export function parsePublicKey(pem: string): PublicKeyResult {
  // createPublicKey would happily derive the public half of a private key; a private key in the
  // relay's environment is a leak waiting to happen, so say so instead.
  if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(pem)) {
    return { ok: false, problem: 'is a private key; give the public key only' };
  }
  let key: KeyObject;
  try {
    key = createPublicKey(pem);
  } catch {
    // Node's message names OpenSSL internals, not what the user should do.
    return { ok: false, problem: 'is not a PEM public key (SPKI, PKCS#1 or X.509 certificate)' };
  }
  return checkVerificationKey(key);
}

/**
 * The algorithms a public key may verify, or why it may verify none: the one set of rules for
 * JWT_PUBLIC_KEY and for each key of a JWKS (RSA of at least 2048 bits, the three JWS curves,
 * Ed25519 and not Ed448), so that neither source accepts a key the other refuses.
 */
export function checkVerificationKey(key: KeyObject): PublicKeyResult {
  const details = key.asymmetricKeyDetails ?? {};
  switch (key.asymmetricKeyType) {
    case 'rsa':
      return checkRsaBits(details.modulusLength) ?? { ok: true, key, algorithms: RSA_ALGORITHMS };
    case 'rsa-pss': {
      const restricted = details.hashAlgorithm ? PSS_ALGORITHM_BY_HASH[details.hashAlgorithm] : undefined;
      if (details.hashAlgorithm && !restricted) {
        return { ok: false, problem: `is an RSA-PSS key restricted to ${details.hashAlgorithm}, which no JWS algorithm uses` };
      }
      return (
        checkRsaBits(details.modulusLength) ?? {
          ok: true,
          key: asPlainRsaKey(key),
          algorithms: restricted ? [restricted] : RSA_PSS_ALGORITHMS,
        }
      );
    }
    case 'ec': {
      const alg = details.namedCurve ? EC_ALGORITHM_BY_CURVE[details.namedCurve] : undefined;
      if (!alg) return { ok: false, problem: `uses the EC curve ${details.namedCurve ?? '(unknown)'}; JWTs use P-256, P-384 or P-521` };
      return { ok: true, key, algorithms: [alg] };
    }
    case 'ed25519':
      return { ok: true, key, algorithms: EDDSA_ALGORITHMS };
    case 'ed448':
      return { ok: false, problem: 'is an Ed448 key, which jose 6 cannot verify; use Ed25519' };
    default:
      return { ok: false, problem: `is a ${key.asymmetricKeyType ?? 'unknown'} key, which cannot verify JWTs` };
  }
}

function checkRsaBits(modulusLength: number | undefined): PublicKeyResult | null {
  if (modulusLength !== undefined && modulusLength >= MIN_RSA_BITS) return null;
  return { ok: false, problem: `is a ${modulusLength ?? '?'}-bit RSA key; at least ${MIN_RSA_BITS} bits are needed` };
}

/**
 * The same RSA public key under the plain rsaEncryption type. Node 20 cannot export an `rsa-pss`
 * KeyObject as a JWK, which jose needs to import it, so the key's PSS-only marking is dropped:
 * its modulus and exponent (the PKCS#1 RSAPublicKey inside the SPKI's BIT STRING) are unchanged,
 * and the accepted algorithms stay limited to PS* by the caller.
 */
function asPlainRsaKey(key: KeyObject): KeyObject {
  const spki = key.export({ format: 'der', type: 'spki' });
  const outer = readDerHeader(spki, 0); // SEQUENCE { AlgorithmIdentifier, BIT STRING }
  const algorithm = readDerHeader(spki, outer.contentStart);
  const bits = readDerHeader(spki, algorithm.contentEnd);
  // The BIT STRING's first content byte counts unused bits (always 0 for a key).
  const pkcs1 = spki.subarray(bits.contentStart + 1, bits.contentEnd);
  return createPublicKey({ key: pkcs1, format: 'der', type: 'pkcs1' });
}

// Minimal DER TLV header reader; the input comes from Node's own export, so it is well-formed.
function readDerHeader(der: Buffer, at: number): { contentStart: number; contentEnd: number } {
  const first = der[at + 1] ?? 0;
  if (first < 0x80) return { contentStart: at + 2, contentEnd: at + 2 + first };
  const lengthBytes = first & 0x7f;
  let length = 0;
  for (let i = 0; i < lengthBytes; i++) length = length * 256 + (der[at + 2 + i] ?? 0);
  const contentStart = at + 2 + lengthBytes;
  return { contentStart, contentEnd: contentStart + length };
}
