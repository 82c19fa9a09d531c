// Real tokens for tests: signed with jose (or by hand where jose cannot, or must not, sign).
import { constants, createHmac, generateKeyPairSync, sign as cryptoSign, type KeyObject } from 'node:crypto';
import { SignJWT, base64url } from 'jose';

/** Claims of a test token; `exp` / `nbf` / `iat` are raw seconds since the epoch. */
export type TestClaims = Record<string, unknown>;

/** Seconds since the epoch, now. */
export function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

/** A secret long enough for every HMAC algorithm (64 bytes). */
export const TEST_SECRET = 'test-secret-that-is-long-enough-for-HS512-0123456789abcdefghijkl';

/** An HS256/384/512 token over `claims`, signed with `secret`. */
export function signHmacToken(secret: string, claims: TestClaims, alg: 'HS256' | 'HS384' | 'HS512' = 'HS256'): Promise<string> {
  return signToken(new TextEncoder().encode(secret), alg, claims);
}

/**
 * An HS256 token whose payload is `payloadText` as written, signed by hand: JSON.stringify (and so
 * jose) cannot write a number that a double does not hold, such as the claim 9007199254740993.
 */
export function signHmacTokenText(secret: string, payloadText: string): string {
  const signingInput = `${encodeJson({ alg: 'HS256', typ: 'JWT' })}.${base64url.encode(payloadText)}`;
  return `${signingInput}.${base64url.encode(createHmac('sha256', secret).update(signingInput).digest())}`;
}

/** A token signed with any key jose accepts, with `claims` exactly as given. */
export function signToken(key: KeyObject | Uint8Array, alg: string, claims: TestClaims): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg, typ: 'JWT' }).sign(key);
}

/** Key pair kinds the tests use. */
export type TestKeyKind = 'rsa' | 'rsa-pss' | 'ec-p256' | 'ec-p384' | 'ec-p521' | 'ed25519' | 'ed448' | 'rsa-1024' | 'secp256k1';

/** A generated key pair: the public half as PEM (what JWT_PUBLIC_KEY holds), the private as a KeyObject. */
export interface TestKeyPair {
  readonly publicKeyPem: string;
  readonly privateKeyPem: string;
  readonly privateKey: KeyObject;
}

/** Generates a key pair of `kind` (RSA ones take ~100 ms: generate once per test file). */
export function generateTestKeyPair(kind: TestKeyKind): TestKeyPair {
  const { publicKey, privateKey } = generateKeyObjects(kind);
  return {
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    privateKey,
  };
}

function generateKeyObjects(kind: TestKeyKind): { publicKey: KeyObject; privateKey: KeyObject } {
  switch (kind) {
    case 'rsa':
      return generateKeyPairSync('rsa', { modulusLength: 2048 });
    case 'rsa-1024':
      return generateKeyPairSync('rsa', { modulusLength: 1024 });
    case 'rsa-pss':
      return generateKeyPairSync('rsa-pss', {
        modulusLength: 2048,
        hashAlgorithm: 'sha256',
        mgf1HashAlgorithm: 'sha256',
        // @types/node 20 types saltLength as a string here; Node wants the number of bytes.
        saltLength: 32 as unknown as string,
      });
    case 'ec-p256':
      return generateKeyPairSync('ec', { namedCurve: 'P-256' });
    case 'ec-p384':
      return generateKeyPairSync('ec', { namedCurve: 'P-384' });
    case 'ec-p521':
      return generateKeyPairSync('ec', { namedCurve: 'P-521' });
    case 'secp256k1':
      return generateKeyPairSync('ec', { namedCurve: 'secp256k1' });
    case 'ed25519':
      return generateKeyPairSync('ed25519');
    case 'ed448':
      return generateKeyPairSync('ed448');
  }
}

/**
 * A PS256 token signed by an `rsa-pss` private key, built by hand: jose cannot use such a key on
 * Node 20 (it cannot be exported as a JWK).
 */
export function signPss256ByHand(privateKey: KeyObject, claims: TestClaims): string {
  const signingInput = `${encodeJson({ alg: 'PS256', typ: 'JWT' })}.${encodeJson(claims)}`;
  const signature = cryptoSign('sha256', Buffer.from(signingInput), {
    key: privateKey,
    padding: constants.RSA_PKCS1_PSS_PADDING,
    saltLength: 32,
  });
  return `${signingInput}.${base64url.encode(signature)}`;
}

/**
 * A token with `header` and `claims` whose signature `sign` makes from the signing input: for
 * keys jose will not sign with (Ed448, RSA under 2048 bits), as an attacker or a careless
 * identity provider could.
 */
export function signByHand(header: Record<string, unknown>, claims: TestClaims, sign: (signingInput: Buffer) => Buffer): string {
  const signingInput = `${encodeJson(header)}.${encodeJson(claims)}`;
  return `${signingInput}.${base64url.encode(sign(Buffer.from(signingInput)))}`;
}

/** An unsecured token (`alg: none`, empty signature), built by hand since jose will not make one to verify. */
export function unsecuredToken(claims: TestClaims): string {
  return `${encodeJson({ alg: 'none', typ: 'JWT' })}.${encodeJson(claims)}.`;
}

/**
 * The key-confusion attack: an HS256 token whose HMAC secret is the server's public key PEM, which
 * a verifier that picks the algorithm from the token would accept.
 */
export function signWithPublicKeyAsSecret(publicKeyPem: string, claims: TestClaims): Promise<string> {
  return signToken(new TextEncoder().encode(publicKeyPem), 'HS256', claims);
}

/** `token` with its payload swapped for `claims`, keeping the original signature. */
export function withPayload(token: string, claims: TestClaims): string {
  const [header, , signature] = token.split('.');
  return `${header}.${encodeJson(claims)}.${signature}`;
}

/** `token` with one signature byte flipped: well-formed, wrongly signed. */
export function withBrokenSignature(token: string): string {
  const [header, payload, signature = ''] = token.split('.');
  const bytes = base64url.decode(signature);
  bytes[0] = (bytes[0] ?? 0) ^ 0xff;
  return `${header}.${payload}.${base64url.encode(bytes)}`;
}

function encodeJson(value: unknown): string {
  return base64url.encode(JSON.stringify(value));
}
