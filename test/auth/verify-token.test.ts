import { createPublicKey, sign as cryptoSign, type KeyObject } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CompactSign, SignJWT, exportJWK, type JWK } from 'jose';
import t, { type Test } from 'tap';
import { verifyJwsSignature } from '../../src/auth/jws-signature.ts';
import { createTokenVerifier, type TokenVerifier } from '../../src/auth/verify-token.ts';
import { TokenError, refusalCause } from '../../src/auth/token-error.ts';
import { loadConfig, type KeyedAuthConfig } from '../../src/config.ts';
import {
  TEST_SECRET,
  generateTestKeyPair,
  nowSeconds,
  signHmacToken,
  signHmacTokenText,
  signPss256ByHand,
  signByHand,
  signToken,
  signWithPublicKeyAsSecret,
  unsecuredToken,
  withBrokenSignature,
  withPayload,
} from '../helpers/tokens.ts';

const rsa = generateTestKeyPair('rsa');
const otherRsa = generateTestKeyPair('rsa');
const rsaPss = generateTestKeyPair('rsa-pss');
const ec256 = generateTestKeyPair('ec-p256');
const ec384 = generateTestKeyPair('ec-p384');
const ed25519 = generateTestKeyPair('ed25519');
const ed448 = generateTestKeyPair('ed448');
const rsa1024 = generateTestKeyPair('rsa-1024');

// Auth configs come from loadConfig, as in production, so the two are tested together.
function authFrom(env: Record<string, string>): KeyedAuthConfig {
  const { auth } = loadConfig(env, () => {
    throw new Error('no files in this test');
  });
  if (auth.kind === 'dev') throw new Error('expected a key source');
  return auth;
}

function verifierFor(env: Record<string, string>, rules: { issuer?: string; audience?: string[]; roleClaim?: string } = {}): TokenVerifier {
  return createTokenVerifier(authFrom(env), { roleClaim: 'role', ...rules });
}

// The reason a token is refused, checking on the way that neither the refusal nor its cause for
// the log quotes the token.
async function refusal(verifier: TokenVerifier, token: string): Promise<string> {
  return (await refusalWithCause(verifier, token)).reason;
}

async function refusalWithCause(verifier: TokenVerifier, token: string): Promise<{ reason: string; cause?: string }> {
  try {
    await verifier.verify(token);
  } catch (error) {
    if (!(error instanceof TokenError)) throw error;
    if (token.length > 10 && error.message.includes(token)) throw new Error('the message quotes the token');
    const cause = refusalCause(error);
    if (token.length > 10 && cause?.includes(token)) throw new Error('the cause quotes the token');
    return { reason: error.reason, ...(cause !== undefined && { cause }) };
  }
  return { reason: 'accepted' };
}

const claims = { role: 'driver', sub: 'd-42' };
const secretEnv = { JWT_SECRET: TEST_SECRET };
const rsaEnv = { JWT_PUBLIC_KEY: rsa.publicKeyPem };

t.test('valid tokens are accepted, one per key type and algorithm', async (t) => {
  const exp = nowSeconds() + 600;
  const cases: Array<[string, Record<string, string>, () => Promise<string> | string]> = [
    ['HS256', secretEnv, () => signHmacToken(TEST_SECRET, { ...claims, exp }, 'HS256')],
    ['HS384', secretEnv, () => signHmacToken(TEST_SECRET, { ...claims, exp }, 'HS384')],
    ['HS512', secretEnv, () => signHmacToken(TEST_SECRET, { ...claims, exp }, 'HS512')],
    ['RS256', rsaEnv, () => signToken(rsa.privateKey, 'RS256', { ...claims, exp })],
    ['RS512', rsaEnv, () => signToken(rsa.privateKey, 'RS512', { ...claims, exp })],
    ['PS256 with an RSA key', rsaEnv, () => signToken(rsa.privateKey, 'PS256', { ...claims, exp })],
    ['PS256 with an RSA-PSS key', { JWT_PUBLIC_KEY: rsaPss.publicKeyPem }, () => signPss256ByHand(rsaPss.privateKey, { ...claims, exp })],
    ['ES256', { JWT_PUBLIC_KEY: ec256.publicKeyPem }, () => signToken(ec256.privateKey, 'ES256', { ...claims, exp })],
    ['ES384', { JWT_PUBLIC_KEY: ec384.publicKeyPem }, () => signToken(ec384.privateKey, 'ES384', { ...claims, exp })],
    ['EdDSA', { JWT_PUBLIC_KEY: ed25519.publicKeyPem }, () => signToken(ed25519.privateKey, 'EdDSA', { ...claims, exp })],
    ['Ed25519', { JWT_PUBLIC_KEY: ed25519.publicKeyPem }, () => signToken(ed25519.privateKey, 'Ed25519', { ...claims, exp })],
  ];
  for (const [name, env, sign] of cases) {
    const verified = await verifierFor(env).verify(await sign());
    t.same({ role: verified.role, sub: verified.sub, exp: verified.exp }, { role: 'driver', sub: 'd-42', exp }, name);
    t.equal(verified.claims.sub, 'd-42', `${name}: claims are exposed`);
  }
});

t.test('sub and exp are optional', async (t) => {
  const verified = await verifierFor(secretEnv).verify(await signHmacToken(TEST_SECRET, { role: 'admin' }));
  t.same({ role: verified.role, sub: verified.sub, exp: verified.exp }, { role: 'admin', sub: null, exp: null });
});

t.test('the role claim is read at a dotted path, own properties only', async (t) => {
  const nested = verifierFor(secretEnv, { roleClaim: 'app.role' });
  const ok = await nested.verify(await signHmacToken(TEST_SECRET, { app: { role: 'merchant' }, role: 'admin' }));
  t.equal(ok.role, 'merchant', 'the nested claim wins over a top-level one');

  const cases: Array<[string, Record<string, unknown>]> = [
    ['no app claim', { role: 'admin' }],
    ['app is a string', { app: 'role' }],
    ['app.role missing', { app: {} }],
    ['app.role empty', { app: { role: '' } }],
    ['app.role a number', { app: { role: 7 } }],
    ['app.role an array', { app: { role: ['admin'] } }],
    ['app.role null', { app: { role: null } }],
  ];
  for (const [name, payload] of cases) {
    t.equal(await refusal(nested, await signHmacToken(TEST_SECRET, payload)), 'missing role claim', name);
  }
  const top = verifierFor(secretEnv);
  t.equal(await refusal(top, await signHmacToken(TEST_SECRET, { sub: 'x' })), 'missing role claim', 'no role at all');
  // JSON.parse makes "__proto__" an own key; a role inside it must not count as the token's role.
  const protoPayload = JSON.parse('{"__proto__": {"role": "admin"}}') as Record<string, unknown>;
  t.equal(await refusal(top, await signHmacToken(TEST_SECRET, protoPayload)), 'missing role claim', '__proto__.role');
  const viaProto = verifierFor(secretEnv, { roleClaim: '__proto__.role' });
  t.equal((await viaProto.verify(await signHmacToken(TEST_SECRET, protoPayload))).role, 'admin', 'an explicit __proto__ path reads the own key');
  t.equal(await refusal(verifierFor(secretEnv, { roleClaim: 'constructor.name' }), await signHmacToken(TEST_SECRET, {})), 'missing role claim', 'constructor.name');
});

t.test('refused tokens, each with its client-safe reason', async (t) => {
  const now = nowSeconds();
  const strict = { issuer: 'https://id.example', audience: ['relay', 'api'] };
  const good = { ...claims, iss: 'https://id.example', aud: 'relay' };
  const rsaToken = await signToken(rsa.privateKey, 'RS256', good);
  const cases: Array<[string, Record<string, string>, () => Promise<string> | string, string]> = [
    ['expired', secretEnv, () => signHmacToken(TEST_SECRET, { ...good, exp: now - 60 }), 'token expired'],
    ['nbf in the future', secretEnv, () => signHmacToken(TEST_SECRET, { ...good, nbf: now + 3600 }), 'token not yet valid'],
    ['wrong iss', secretEnv, () => signHmacToken(TEST_SECRET, { ...good, iss: 'https://evil.example' }), 'issuer mismatch'],
    ['no iss', secretEnv, () => signHmacToken(TEST_SECRET, { ...claims, aud: 'relay' }), 'issuer mismatch'],
    ['wrong aud', secretEnv, () => signHmacToken(TEST_SECRET, { ...good, aud: 'billing' }), 'audience mismatch'],
    ['no aud', secretEnv, () => signHmacToken(TEST_SECRET, { ...claims, iss: 'https://id.example' }), 'audience mismatch'],
    ['alg none', secretEnv, () => unsecuredToken(good), 'algorithm not accepted'],
    ['alg none against a public key', rsaEnv, () => unsecuredToken(good), 'algorithm not accepted'],
    ['HS256 signed with the public key PEM', rsaEnv, () => signWithPublicKeyAsSecret(rsa.publicKeyPem, good), 'algorithm not accepted'],
    ['tampered payload', rsaEnv, () => withPayload(rsaToken, { ...good, role: 'admin' }), 'bad signature'],
    ['broken signature', rsaEnv, () => withBrokenSignature(rsaToken), 'bad signature'],
    ['signed by another key', rsaEnv, () => signToken(otherRsa.privateKey, 'RS256', good), 'bad signature'],
    ['wrong HMAC secret', secretEnv, () => signHmacToken(`${TEST_SECRET}x`, good), 'bad signature'],
    ['RS256 against an EC key', { JWT_PUBLIC_KEY: ec256.publicKeyPem }, () => rsaToken, 'algorithm not accepted'],
    ['sub not a string', secretEnv, () => signHmacToken(TEST_SECRET, { ...good, sub: 42 }), 'invalid claims'],
    ['exp not a number', secretEnv, () => signHmacToken(TEST_SECRET, { ...good, exp: 'tomorrow' }), 'invalid claims'],
    ['empty string', secretEnv, () => '', 'malformed token'],
    ['one segment', secretEnv, () => 'abc', 'malformed token'],
    ['four segments', secretEnv, () => 'a.b.c.d', 'malformed token'],
    ['header not JSON', secretEnv, () => 'bm90IGpzb24.e30.c2ln', 'malformed token'],
    ['payload not an object', secretEnv, () => signHmacTokenRaw('[1,2]'), 'malformed token'],
    ['too long', secretEnv, () => `${'a'.repeat(20_000)}.b.c`, 'malformed token'],
  ];
  for (const [name, env, make, reason] of cases) {
    t.equal(await refusal(verifierFor(env, strict), await make()), reason, name);
  }
  t.equal(await refusal(verifierFor(secretEnv, strict), await signHmacToken(TEST_SECRET, { ...good, aud: ['web', 'api'] })), 'accepted', 'any one audience suffices');
});

t.test('JWT_ALGORITHMS narrows what is accepted', async (t) => {
  const pssOnly = verifierFor({ ...rsaEnv, JWT_ALGORITHMS: 'PS256' });
  t.equal(await refusal(pssOnly, await signToken(rsa.privateKey, 'RS256', claims)), 'algorithm not accepted', 'RS256 refused');
  t.equal(await refusal(pssOnly, await signToken(rsa.privateKey, 'PS256', claims)), 'accepted', 'PS256 accepted');

  const hs256Only = verifierFor({ ...secretEnv, JWT_ALGORITHMS: 'HS256' });
  t.equal(await refusal(hs256Only, await signHmacToken(TEST_SECRET, claims, 'HS512')), 'algorithm not accepted', 'HS512 refused');
  t.equal(await refusal(hs256Only, await signHmacToken(TEST_SECRET, claims, 'HS256')), 'accepted', 'HS256 accepted');

  const edOnly = verifierFor({ JWT_PUBLIC_KEY: ed25519.publicKeyPem, JWT_ALGORITHMS: 'EdDSA' });
  t.equal(await refusal(edOnly, await signToken(ed25519.privateKey, 'Ed25519', claims)), 'algorithm not accepted', 'Ed25519 refused');
});

t.test('a short secret only accepts the HMAC algorithms its length allows', async (t) => {
  const secret32 = 'k'.repeat(32);
  const verifier = verifierFor({ JWT_SECRET: secret32 });
  t.equal(await refusal(verifier, await signHmacToken(secret32, claims, 'HS512')), 'algorithm not accepted');
  t.equal(await refusal(verifier, await signHmacToken(secret32, claims, 'HS256')), 'accepted');
});

t.test('a JWKS endpoint: keys by kid, unknown kids, an endpoint in trouble', async (t) => {
  const jwk = { ...(await exportJWK(ec256.privateKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
  delete jwk.d; // publish the public half only
  let status = 200;
  const server = createServer((_req, res) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ keys: [jwk] }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks`;

  const verifier = verifierFor({ JWT_JWKS_URL: url });
  const signed = (kid: string) => new SignJWT(claims).setProtectedHeader({ alg: 'ES256', kid }).sign(ec256.privateKey);
  t.equal((await verifier.verify(await signed('k1'))).role, 'driver', 'a token signed by the published key');
  t.equal(await refusal(verifier, await signed('k2')), 'unknown signing key', 'a kid the set does not hold');
  t.equal(await refusal(verifier, await signHmacToken(TEST_SECRET, claims)), 'algorithm not accepted', 'HS256 never via JWKS');

  status = 500;
  const fresh = verifierFor({ JWT_JWKS_URL: url });
  t.equal(await refusal(fresh, await signed('k1')), 'signing keys unavailable', 'the endpoint answers 500');

  const unreachable = verifierFor({ JWT_JWKS_URL: 'http://127.0.0.1:1/jwks' });
  t.equal(await refusal(unreachable, await signed('k1')), 'signing keys unavailable', 'the endpoint is unreachable');
});

// An HS256 token whose payload is exactly `payloadJson`, which need not be an object.
function signHmacTokenRaw(payloadJson: string): Promise<string> {
  const encode = (text: string) => new TextEncoder().encode(text);
  return new CompactSign(encode(payloadJson)).setProtectedHeader({ alg: 'HS256' }).sign(encode(TEST_SECRET));
}

/** The public half of `privateKey` as a JWK, with `extra` members (kid, alg, use). */
function publicJwk(privateKey: KeyObject, extra: JWK = {}): JWK {
  return { ...(createPublicKey(privateKey).export({ format: 'jwk' }) as JWK), ...extra };
}

/** A JWKS endpoint on a free port serving `keys`; `fetches` counts its requests. */
async function serveJwks(t: Test, keys: readonly JWK[]): Promise<{ url: string; fetches: () => number }> {
  let fetches = 0;
  const server = createServer((_req, res) => {
    fetches++;
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks`, fetches: () => fetches };
}

t.test('a JWKS refresh that fails in the background is reported, its address blanked, and the keys fetched before stay in use', async (t) => {
  const jwk = { ...(await exportJWK(ec256.privateKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
  delete jwk.d;
  let status = 200;
  const server = createServer((_req, res) => {
    res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [jwk] }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const secret = 'api-key-0123456789';
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks?api_key=${secret}`;
  let reported!: (error: Error) => void;
  const refreshFailed = new Promise<Error>((resolve) => (reported = resolve));
  // A set that is stale at once, and no cooldown: every token asks for a refresh in the background.
  const auth = { ...authFrom({ JWT_JWKS_URL: url }), refetchCooldownMs: 0 };
  const verifier = createTokenVerifier(auth, { roleClaim: 'role' }, { maxAgeMs: 0, onRefreshFailed: reported });
  await verifier.prefetch();
  status = 500;
  const token = await new SignJWT(claims).setProtectedHeader({ alg: 'ES256', kid: 'k1' }).sign(ec256.privateKey);
  t.equal(verifier.verifyNow(token)?.role, 'driver', 'the token verifies with the keys fetched before');
  const error = await refreshFailed;
  t.match(error.message, /^cannot fetch the JWKS at http:\/\/127\.0\.0\.1:\d+\/jwks\?api_key=\[redacted\]: /, 'the report names the address, its query blanked');
  t.notMatch(error.message, secret, 'never the key in its query');

  // A kid the set does not hold makes verify() fetch at once (no cooldown here), and fail.
  const unknownKid = await new SignJWT(claims).setProtectedHeader({ alg: 'ES256', kid: 'k2' }).sign(ec256.privateKey);
  const refused = await refusalWithCause(verifier, unknownKid);
  t.equal(refused.reason, 'signing keys unavailable', 'a token whose key needs the failed fetch is refused');
  t.match(refused.cause, /^cannot fetch the JWKS at http:\/\/127\.0\.0\.1:\d+\/jwks\?api_key=\[redacted\]: Expected 200 OK/, 'its cause names the address, its query blanked, and what failed');
  t.notMatch(refused.cause, secret, 'never the key in its query');
});

t.test('a wall clock stepped back does not hold JWKS fetches off', async (t) => {
  // The cooldown is a duration: measured on the wall clock, a clock set back an hour (NTP, a VM
  // resumed) refused every new kid for an hour without asking the identity provider.
  const jwks = await serveJwks(t, [publicJwk(ec256.privateKey, { kid: 'k1', alg: 'ES256' })]);
  const auth = { ...authFrom({ JWT_JWKS_URL: jwks.url }), refetchCooldownMs: 0 };
  const verifier = createTokenVerifier(auth, { roleClaim: 'role' });
  await verifier.prefetch();
  t.equal(jwks.fetches(), 1, 'fetched at start');
  const wallClock = Date.now;
  const stepped = wallClock() - 3_600_000;
  Date.now = () => stepped;
  t.teardown(() => void (Date.now = wallClock));
  const unknownKid = await new SignJWT(claims).setProtectedHeader({ alg: 'ES256', kid: 'k2' }).sign(ec256.privateKey);
  t.equal(await refusal(verifier, unknownKid), 'unknown signing key', 'the new kid is not in the set');
  t.equal(jwks.fetches(), 2, 'but the set was fetched again to look for it');
});

t.test('a JWKS key is held to the rules of JWT_PUBLIC_KEY: no Ed448, no RSA under 2048 bits', async (t) => {
  // What JWT_PUBLIC_KEY refuses at start-up, a JWKS used to verify with.
  for (const [name, keys] of [['Ed448', ed448], ['1024-bit RSA', rsa1024]] as const) {
    t.throws(() => authFrom({ JWT_PUBLIC_KEY: keys.publicKeyPem }), /^JWT_PUBLIC_KEY: /, `JWT_PUBLIC_KEY refuses an ${name} key`);
  }
  const jwks = await serveJwks(t, [
    publicJwk(ed448.privateKey, { kid: 'ed448' }),
    publicJwk(rsa1024.privateKey, { kid: 'rsa1024', alg: 'RS256' }),
    publicJwk(ed25519.privateKey, { kid: 'ed25519' }),
  ]);
  const verifier = verifierFor({ JWT_JWKS_URL: jwks.url });
  const byEd448 = (alg: string) => signByHand({ alg, kid: 'ed448' }, claims, (input) => cryptoSign(null, input, ed448.privateKey));
  const byRsa1024 = signByHand({ alg: 'RS256', kid: 'rsa1024' }, claims, (input) => cryptoSign('sha256', input, rsa1024.privateKey));
  t.equal(await refusal(verifier, byEd448('Ed25519')), 'unknown signing key', 'alg Ed25519 with an Ed448 key of the set');
  t.equal(await refusal(verifier, byEd448('EdDSA')), 'unknown signing key', 'alg EdDSA with an Ed448 key of the set');
  t.equal(await refusal(verifier, byRsa1024), 'unknown signing key', 'RS256 with a 1024-bit RSA key of the set');
  const good = await new SignJWT(claims).setProtectedHeader({ alg: 'Ed25519', kid: 'ed25519' }).sign(ed25519.privateKey);
  t.equal(await refusal(verifier, good), 'accepted', 'the Ed25519 key of the same set verifies');
});

t.test('an Ed448 key never verifies EdDSA or Ed25519, whoever hands it over', async (t) => {
  const ed448Public = createPublicKey(ed448.privateKey);
  for (const alg of ['EdDSA', 'Ed25519'] as const) {
    const token = signByHand({ alg }, claims, (input) => cryptoSign(null, input, ed448.privateKey));
    const [header, payload, signature] = token.split('.') as [string, string, string];
    const valid = verifyJwsSignature(alg, ed448Public, Buffer.from(`${header}.${payload}`), Buffer.from(signature, 'base64url'));
    t.equal(valid, false, `${alg}: a good Ed448 signature does not count`);
  }
});

t.test('a JWKS token without kid: each key its alg can use is tried, so a rotation works, with no refetch', async (t) => {
  const ecNew = generateTestKeyPair('ec-p256');
  const jwks = await serveJwks(t, [
    publicJwk(rsa.privateKey, { kid: 'rsa-old' }),
    publicJwk(otherRsa.privateKey, { kid: 'rsa-new' }),
    publicJwk(rsa1024.privateKey, { kid: 'rsa-small' }),
    publicJwk(ec256.privateKey, { kid: 'ec-old', alg: 'ES256', use: 'sig' }),
    publicJwk(ecNew.privateKey, { kid: 'ec-new', alg: 'ES256', use: 'sig' }),
    publicJwk(ec384.privateKey, { kid: 'ec384' }),
    publicJwk(ed448.privateKey, { kid: 'ed448' }),
    publicJwk(ed25519.privateKey, { kid: 'ed25519' }),
  ]);
  const verifier = verifierFor({ JWT_JWKS_URL: jwks.url });
  const withoutKid = (key: KeyObject, alg: string) => new SignJWT(claims).setProtectedHeader({ alg }).sign(key);
  const accepted: Array<[string, KeyObject, string]> = [
    ['RS256, the old RSA key', rsa.privateKey, 'RS256'],
    ['RS256, the new RSA key', otherRsa.privateKey, 'RS256'],
    ['PS256, the new RSA key', otherRsa.privateKey, 'PS256'],
    ['ES256, the old P-256 key', ec256.privateKey, 'ES256'],
    ['ES256, the new P-256 key', ecNew.privateKey, 'ES256'],
    ['ES384, the only P-384 key', ec384.privateKey, 'ES384'],
    ['EdDSA, the Ed25519 key beside an Ed448 one', ed25519.privateKey, 'EdDSA'],
  ];
  for (const [name, key, alg] of accepted) t.equal(await refusal(verifier, await withoutKid(key, alg)), 'accepted', name);
  const stranger = generateTestKeyPair('ec-p256');
  t.equal(await refusal(verifier, await withoutKid(stranger.privateKey, 'ES256')), 'bad signature', 'ES256 by a key not in the set');
  const byRsa1024 = signByHand({ alg: 'RS256' }, claims, (input) => cryptoSign('sha256', input, rsa1024.privateKey));
  t.equal(await refusal(verifier, byRsa1024), 'bad signature', 'RS256 by the 1024-bit key of the set: not tried');
  // Before, a token without kid facing several keys asked for a refetch, each time.
  t.equal(jwks.fetches(), 1, 'one fetch for all of them');
});

t.test('a token without kid tries at most 4 keys of a JWKS', async (t) => {
  const keys = Array.from({ length: 5 }, () => generateTestKeyPair('ec-p256'));
  const jwkOf = (index: number) => publicJwk(keys[index]!.privateKey, { kid: `k${index}` });
  const four = verifierFor({ JWT_JWKS_URL: (await serveJwks(t, [0, 1, 2, 3].map(jwkOf))).url });
  const five = verifierFor({ JWT_JWKS_URL: (await serveJwks(t, [0, 1, 2, 3, 4].map(jwkOf))).url });
  const signed = (index: number, kid?: string) =>
    new SignJWT(claims).setProtectedHeader({ alg: 'ES256', ...(kid && { kid }) }).sign(keys[index]!.privateKey);
  t.equal(await refusal(four, await signed(3)), 'accepted', 'four P-256 keys: the fourth signed it');
  t.equal(await refusal(five, await signed(4)), 'unknown signing key', 'five P-256 keys: not tried');
  t.equal(await refusal(five, await signed(4, 'k4')), 'accepted', 'five P-256 keys: a token with kid is fine');
});

t.test("a refusal's cause tells the operator what was wrong, from the header, claims and settings", async (t) => {
  const now = nowSeconds();
  const verifier = verifierFor({ JWT_SECRET: 'k'.repeat(32) }, { issuer: 'https://idp.example', audience: ['relay'] });
  const good = { ...claims, iss: 'https://idp.example', aud: 'relay' };
  const hmac = (payload: Record<string, unknown>, alg: 'HS256' | 'HS512' = 'HS256') => signHmacToken('k'.repeat(32), payload, alg);
  const cases: Array<[string, Promise<string> | string, string, RegExp]> = [
    ['alg none', unsecuredToken(good), 'algorithm not accepted', /^alg "none" is not one pg-relay supports$/],
    ['HS512 with a 32-byte secret', hmac(good, 'HS512'), 'algorithm not accepted', /^alg HS512; accepted here: HS256$/],
    ['nbf two minutes ahead', hmac({ ...good, nbf: now + 120 }), 'token not yet valid', /^nbf is 1(19|20) s ahead of this relay's clock$/],
    ['iat ten minutes ahead', hmac({ ...good, iat: now + 600 }), 'token not yet valid', /^iat is (599|600) s ahead of this relay's clock \(60 s allowed\)$/],
    ['exp a minute ago', hmac({ ...good, exp: now - 60 }), 'token expired', /^exp passed (60|61) s ago by this relay's clock$/],
    ['another issuer', hmac({ ...good, iss: 'https://other.example' }), 'issuer mismatch', /^iss "https:\/\/other\.example"; JWT_ISSUER is "https:\/\/idp\.example"$/],
    ['another audience', hmac({ ...good, aud: ['a', 'b'] }), 'audience mismatch', /^aud \["a","b"\]; JWT_AUDIENCE is "relay"$/],
    ['a long issuer, cut short', hmac({ ...good, iss: 'x'.repeat(500) }), 'issuer mismatch', /^iss "x{39}\.\.\.; /],
    ['no role', hmac({ ...good, role: 7 }), 'missing role claim', /^no non-empty string at JWT_ROLE_CLAIM "role"$/],
  ];
  for (const [name, token, reason, cause] of cases) {
    t.match(await refusalWithCause(verifier, await token), { reason, cause }, name);
  }
});

t.test('a fractional exp is expired as soon as it passes, not at the end of its second', async (t) => {
  const verifier = verifierFor(secretEnv);
  // Halfway between the start of the current second and now: passed, though a clock read to the
  // whole second says it has not come yet. Signed by hand and checked at once, within the second.
  const passedWithinThisSecond = (): number => {
    const now = Date.now() / 1000;
    return Math.floor(now) + (now - Math.floor(now)) / 2;
  };
  const exp = passedWithinThisSecond();
  const expired = await refusal(verifier, signHmacTokenText(TEST_SECRET, JSON.stringify({ ...claims, exp })));
  t.equal(expired, 'token expired', `exp ${exp}, passed by ${(Date.now() / 1000 - exp).toFixed(3)} s: refused`);
  // The other way round: a fractional nbf that has come is valid at once.
  const nbf = passedWithinThisSecond();
  const valid = await refusal(verifier, signHmacTokenText(TEST_SECRET, JSON.stringify({ ...claims, nbf })));
  t.equal(valid, 'accepted', `nbf ${nbf}, come ${(Date.now() / 1000 - nbf).toFixed(3)} s ago: accepted`);
});
