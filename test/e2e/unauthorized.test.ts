// Contract section 3: a token that is missing or fails any check is refused before the upgrade with
// HTTP 401 and `{"error":"unauthorized","reason":...}`; good tokens of every key kind get a welcome.
// No token, refused or accepted, ever reaches the log.
import t, { type Test } from 'tap';
import WebSocket from 'ws';
import { TEST_SECRET as RELAY_SECRET, startTestRelay, type TestRelay } from '../helpers/relay.ts';
import {
  generateTestKeyPair,
  nowSeconds,
  signHmacToken,
  signToken,
  signWithPublicKeyAsSecret,
  unsecuredToken,
  withBrokenSignature,
  withPayload,
} from '../helpers/tokens.ts';
import { connectClient, upgradeRefusal, type Frame } from '../helpers/ws-client.ts';

const ADMIN = { role: 'admin', sub: 'admin-1' };

/** Settings for a relay keyed by a public key: JWT_SECRET (set by startTestRelay) must go. */
function publicKeyEnv(pem: string): Record<string, string> {
  return { JWT_SECRET: undefined as unknown as string, JWT_PUBLIC_KEY: pem };
}

function withExpiry(claims: Record<string, unknown>): Record<string, unknown> {
  return { exp: nowSeconds() + 3600, ...claims };
}

/** Asserts the refusal the contract promises, and that the reason says what went wrong. */
async function assertRefused(t: Test, relay: TestRelay, token: string | null, reason: RegExp, label: string): Promise<void> {
  const url = token === null ? relay.wsUrl : `${relay.wsUrl}?access_token=${encodeURIComponent(token)}`;
  const refusal = await upgradeRefusal(url).catch((error: unknown) => ({
    status: -1,
    body: { error: `the upgrade was not refused with a JSON 401: ${String(error)}` } as Record<string, unknown>,
  }));
  t.equal(refusal.status, 401, `${label}: HTTP 401 and no upgrade`);
  t.match(refusal.body, { error: 'unauthorized', reason: String }, `${label}: the JSON body`);
  t.match(String(refusal.body.reason), reason, `${label}: the reason says why (${String(refusal.body.reason)})`);
}

/** A client that sends its token in the Authorization header; resolves with the welcome frame. */
function welcomeWithHeader(url: string, authorization: string): Promise<Frame> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, { headers: { authorization } });
    socket.once('message', (data) => {
      resolve(JSON.parse(data.toString()) as Frame);
      socket.close();
    });
    socket.once('unexpected-response', (_request, response) => reject(new Error(`upgrade refused: ${response.statusCode}`)));
    socket.once('error', reject);
  });
}

/** Fails if any log line holds a token, or the signature part of one (a partial leak is a leak). */
function assertTokensNotLogged(t: Test, relay: TestRelay, tokens: readonly string[]): void {
  const logged = JSON.stringify(relay.logLines);
  t.ok(relay.logLines.length > 0, 'the relay did log');
  for (const token of tokens) {
    const signature = token.split('.')[2] ?? '';
    const leaked = logged.includes(token) || (signature.length >= 16 && logged.includes(signature));
    t.notOk(leaked, `the log does not hold the token ${token.slice(0, 12)}...`);
  }
}

t.test('an HMAC relay refuses every bad token with 401 before the upgrade', async (t) => {
  const relay = await startTestRelay(t);
  const now = nowSeconds();
  const good = await signHmacToken(RELAY_SECRET, withExpiry(ADMIN));
  const cases: Array<[label: string, token: string | null, reason: RegExp]> = [
    ['missing token', null, /missing/],
    ['empty access_token', '', /missing/],
    ['malformed token', 'not-a-jwt', /malformed/],
    ['three garbage parts', 'abc.def.ghi', /malformed/],
    ['signed with another secret', await signHmacToken('another-secret-that-is-also-32-bytes-long!', withExpiry(ADMIN)), /signature/],
    ['payload swapped, signature kept', withPayload(good, withExpiry({ role: 'admin', sub: 'mallory' })), /signature/],
    ['signature bytes flipped', withBrokenSignature(good), /signature/],
    ['expired', await signHmacToken(RELAY_SECRET, { ...ADMIN, exp: now - 60 }), /expired/],
    ['not yet valid', await signHmacToken(RELAY_SECRET, { ...ADMIN, nbf: now + 3600, exp: now + 7200 }), /not yet valid/],
    ['alg none', unsecuredToken(withExpiry(ADMIN)), /algorithm|malformed|signature/],
    ['without the role claim', await signHmacToken(RELAY_SECRET, withExpiry({ sub: 'no-role' })), /role/],
    ['with an empty role', await signHmacToken(RELAY_SECRET, withExpiry({ role: '', sub: 'x' })), /role/],
    ['with a non-string role', await signHmacToken(RELAY_SECRET, withExpiry({ role: ['admin'], sub: 'x' })), /role/],
  ];
  for (const [label, token, reason] of cases) await assertRefused(t, relay, token, reason, label);

  const client = await connectClient(`${relay.wsUrl}?access_token=${good}`);
  t.match(client.welcome, { type: 'welcome', role: 'admin', sub: 'admin-1' }, 'the good token of the same relay is welcomed');
  await client.close();
  assertTokensNotLogged(t, relay, [good, ...cases.map(([, token]) => token).filter((token): token is string => !!token && token.length > 20)]);
});

t.test('a token in the Authorization: Bearer header works like the query parameter', async (t) => {
  const relay = await startTestRelay(t);
  const good = await relay.token(ADMIN);
  t.match(await welcomeWithHeader(relay.wsUrl, `Bearer ${good}`), { type: 'welcome', role: 'admin', sub: 'admin-1' });
  const forged = await signHmacToken('another-secret-that-is-also-32-bytes-long!', withExpiry(ADMIN));
  const refusal = await upgradeRefusal(relay.wsUrl, { authorization: `Bearer ${forged}` });
  t.equal(refusal.status, 401, 'a bad header token is refused');
  t.match(refusal.body, { error: 'unauthorized', reason: /signature/ });
  assertTokensNotLogged(t, relay, [good, forged]);
});

t.test('JWT_ISSUER and JWT_AUDIENCE are required when set', async (t) => {
  const relay = await startTestRelay(t, { JWT_ISSUER: 'https://issuer.test', JWT_AUDIENCE: 'pg-relay,backup-relay' });
  const sign = (claims: Record<string, unknown>) => signHmacToken(RELAY_SECRET, withExpiry({ ...ADMIN, ...claims }));
  const good = await sign({ iss: 'https://issuer.test', aud: 'pg-relay' });
  const client = await connectClient(`${relay.wsUrl}?access_token=${good}`);
  t.match(client.welcome, { type: 'welcome', role: 'admin' }, 'right iss and aud: welcome');
  await client.close();
  const second = await connectClient(`${relay.wsUrl}?access_token=${await sign({ iss: 'https://issuer.test', aud: ['other', 'backup-relay'] })}`);
  t.match(second.welcome, { type: 'welcome' }, 'any one of the accepted audiences suffices');
  await second.close();

  const refused: Array<[string, string, RegExp]> = [
    ['wrong iss', await sign({ iss: 'https://evil.test', aud: 'pg-relay' }), /issuer/],
    ['no iss', await sign({ aud: 'pg-relay' }), /issuer/],
    ['wrong aud', await sign({ iss: 'https://issuer.test', aud: 'someone-else' }), /audience/],
    ['no aud', await sign({ iss: 'https://issuer.test' }), /audience/],
  ];
  for (const [label, token, reason] of refused) await assertRefused(t, relay, token, reason, label);
  assertTokensNotLogged(t, relay, [good, ...refused.map(([, token]) => token)]);
});

t.test('with an RSA JWT_PUBLIC_KEY: RS256 is welcomed, key confusion and HS256 are refused', async (t) => {
  const keys = generateTestKeyPair('rsa');
  const relay = await startTestRelay(t, publicKeyEnv(keys.publicKeyPem));
  const good = await signToken(keys.privateKey, 'RS256', withExpiry(ADMIN));
  const client = await connectClient(`${relay.wsUrl}?access_token=${good}`);
  t.match(client.welcome, { type: 'welcome', role: 'admin', sub: 'admin-1' }, 'RS256 signed by the matching private key');
  await client.close();

  const confused = await signWithPublicKeyAsSecret(keys.publicKeyPem, withExpiry(ADMIN));
  await assertRefused(t, relay, confused, /algorithm/, 'HS256 signed with the public key PEM as secret');
  await assertRefused(t, relay, await signHmacToken(RELAY_SECRET, withExpiry(ADMIN)), /algorithm/, 'an HS256 token');
  const otherKeys = generateTestKeyPair('rsa');
  const otherKeyToken = await signToken(otherKeys.privateKey, 'RS256', withExpiry(ADMIN));
  await assertRefused(t, relay, otherKeyToken, /signature/, 'RS256 signed by another key');
  await assertRefused(t, relay, await signToken(keys.privateKey, 'RS256', { ...ADMIN, exp: nowSeconds() - 60 }), /expired/, 'expired RS256');
  await assertRefused(t, relay, unsecuredToken(withExpiry(ADMIN)), /algorithm|malformed|signature/, 'alg none');
  assertTokensNotLogged(t, relay, [good, confused, otherKeyToken]);
});

for (const [kind, alg] of [
  ['ec-p256', 'ES256'],
  ['ed25519', 'EdDSA'],
] as const) {
  t.test(`with a ${kind} JWT_PUBLIC_KEY: ${alg} is welcomed`, async (t) => {
    const keys = generateTestKeyPair(kind);
    const relay = await startTestRelay(t, publicKeyEnv(keys.publicKeyPem));
    const good = await signToken(keys.privateKey, alg, withExpiry({ role: 'hospital', sub: 'n1', hospital_id: 'H1' }));
    const client = await connectClient(`${relay.wsUrl}?access_token=${good}`);
    t.match(client.welcome, { type: 'welcome', role: 'hospital', sub: 'n1' });
    client.send({ type: 'subscribe', topic: 'orders' });
    t.match(await client.next(), { type: 'subscribed', topic: 'orders' }, 'and works like any other connection');
    await client.close();
    const other = await signToken(generateTestKeyPair(kind).privateKey, alg, withExpiry(ADMIN));
    await assertRefused(t, relay, other, /signature/, `${alg} signed by another key`);
    await assertRefused(t, relay, await signWithPublicKeyAsSecret(keys.publicKeyPem, withExpiry(ADMIN)), /algorithm/, 'key confusion');
    assertTokensNotLogged(t, relay, [good, other]);
  });
}
