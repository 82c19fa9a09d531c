// JWT_JWKS_URL: the relay fetches the key set at start-up and verifies from its cache; a token
// whose `kid` it does not know triggers a refetch, at most once per JWT_JWKS_COOLDOWN however many
// such tokens come, so a key rotation is picked up and made-up kids cannot flood the identity provider.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignJWT, exportJWK, type JWK } from 'jose';
import t, { type Test } from 'tap';
import { nextFrame } from '../helpers/frames.ts';
import { startTestRelay, type TestRelay } from '../helpers/relay.ts';
import { generateTestKeyPair, nowSeconds, type TestKeyPair } from '../helpers/tokens.ts';
import { connectClient, upgradeRefusal } from '../helpers/ws-client.ts';

const ADMIN = { role: 'admin', sub: 'admin-1' };

interface JwksServer {
  readonly url: string;
  /** When each fetch arrived (ms since the epoch). */
  readonly fetches: number[];
  publish(keys: readonly TestKeyPair[]): Promise<void>;
}

async function publicJwk(keys: TestKeyPair, kid: string): Promise<JWK> {
  const { d: _private, ...jwk } = await exportJWK(keys.privateKey);
  return { ...jwk, kid, alg: 'ES256', use: 'sig' };
}

/** A JWKS endpoint on a free port, publishing what the test tells it to. */
async function startJwksServer(t: Test, kids: Map<TestKeyPair, string>): Promise<JwksServer> {
  let body = '{"keys":[]}';
  const fetches: number[] = [];
  const server = createServer((_request, response) => {
    fetches.push(Date.now());
    response.writeHead(200, { 'content-type': 'application/json' }).end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks`,
    fetches,
    async publish(keys) {
      body = JSON.stringify({ keys: await Promise.all(keys.map((key) => publicJwk(key, kids.get(key)!))) });
    },
  };
}

function jwksEnv(url: string, cooldown?: string): Record<string, string> {
  return { JWT_SECRET: undefined as unknown as string, JWT_JWKS_URL: url, ...(cooldown && { JWT_JWKS_COOLDOWN: cooldown }) };
}

const k1 = generateTestKeyPair('ec-p256');
const k2 = generateTestKeyPair('ec-p256');
const kids = new Map([
  [k1, 'k1'],
  [k2, 'k2'],
]);

function tokenBy(keys: TestKeyPair, kid: string, claims: Record<string, unknown> = ADMIN): Promise<string> {
  return new SignJWT({ exp: nowSeconds() + 600, ...claims }).setProtectedHeader({ alg: 'ES256', kid }).sign(keys.privateKey);
}

function url(relay: TestRelay, token: string): string {
  return `${relay.wsUrl}?access_token=${token}`;
}

t.test('keys are fetched once at start-up and used from the cache', async (t) => {
  const jwks = await startJwksServer(t, kids);
  await jwks.publish([k1]);
  const relay = await startTestRelay(t, jwksEnv(jwks.url));
  t.equal(jwks.fetches.length, 1, 'fetched at start-up');
  for (let i = 0; i < 5; i++) {
    const client = await connectClient(url(relay, await tokenBy(k1, 'k1', { ...ADMIN, sub: `s${i}` })));
    t.match(client.welcome, { type: 'welcome', role: 'admin' });
    await client.close();
  }
  t.equal(jwks.fetches.length, 1, 'five connections, no more fetches');
});

t.test('unknown kids within the cooldown are refused without a fetch, however many', async (t) => {
  const jwks = await startJwksServer(t, kids);
  await jwks.publish([k1]);
  const relay = await startTestRelay(t, jwksEnv(jwks.url)); // the default cooldown, 30 s
  const client = await connectClient(url(relay, await tokenBy(k1, 'k1')));
  await jwks.publish([k1, k2]);
  for (let i = 0; i < 20; i++) {
    const refusal = await upgradeRefusal(url(relay, await tokenBy(k2, i === 0 ? 'k2' : `made-up-${i}`)));
    t.match(refusal, { status: 401, body: { error: 'unauthorized', reason: 'unknown signing key' } }, `token ${i} with an unknown kid`);
  }
  t.equal(jwks.fetches.length, 1, '20 unknown kids within the cooldown: no fetch beyond the start-up one');
  client.send({ type: 'ping', ref: 'still' });
  t.strictSame(await nextFrame(client, 'pong'), { type: 'pong', ref: 'still' }, 'connections made with k1 go on');
  await client.close();
});

t.test('after the cooldown, a new kid is fetched once, and its tokens work on upgrade and in auth', async (t) => {
  const jwks = await startJwksServer(t, kids);
  await jwks.publish([k1]);
  const relay = await startTestRelay(t, jwksEnv(jwks.url, '1s'));
  const client = await connectClient(url(relay, await tokenBy(k1, 'k1')));
  await jwks.publish([k1, k2]);
  // Waiting for a clock, not for an event: the cooldown is a duration by definition.
  const cooldownOver = jwks.fetches.at(-1)! + 1000 - Date.now();
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, cooldownOver)));

  // The refetch goes through `auth`, which may wait for it; upgrades then verify synchronously.
  client.send({ type: 'auth', token: await tokenBy(k2, 'k2', { role: 'hospital', sub: 'n1', hospital_id: 'H1' }), ref: 'rotate' });
  t.match(await nextFrame(client, 'authed'), { type: 'authed', ref: 'rotate' }, 'auth with the new key is accepted');
  t.equal(jwks.fetches.length, 2, 'one refetch for the new kid');
  const second = await connectClient(url(relay, await tokenBy(k2, 'k2')));
  t.match(second.welcome, { type: 'welcome', role: 'admin' }, 'an upgrade with the new key');
  await second.close();
  const refusal = await upgradeRefusal(url(relay, await tokenBy(k2, 'made-up')));
  t.match(refusal.body, { reason: 'unknown signing key' }, 'a made-up kid right after');
  t.equal(jwks.fetches.length, 2, 'within the cooldown again: no fetch');
  await client.close();
});

t.test('during a rotation (old and new key published), tokens without kid signed by either connect, with no refetch', async (t) => {
  const jwks = await startJwksServer(t, kids);
  await jwks.publish([k1, k2]);
  const relay = await startTestRelay(t, jwksEnv(jwks.url));
  for (const [name, keys] of [['the old key', k1], ['the new key', k2]] as const) {
    for (let i = 0; i < 3; i++) {
      const token = await new SignJWT({ ...ADMIN, sub: `s${i}`, exp: nowSeconds() + 600 }).setProtectedHeader({ alg: 'ES256' }).sign(keys.privateKey);
      const client = await connectClient(url(relay, token));
      t.match(client.welcome, { type: 'welcome', role: 'admin', sub: `s${i}` }, `${name}, no kid, connection ${i}`);
      await client.close();
    }
  }
  const forged = await new SignJWT({ ...ADMIN, exp: nowSeconds() + 600 }).setProtectedHeader({ alg: 'ES256' }).sign(generateTestKeyPair('ec-p256').privateKey);
  t.match(await upgradeRefusal(url(relay, forged)), { status: 401, body: { reason: 'bad signature' } }, 'no kid, signed by neither key');
  t.equal(jwks.fetches.length, 1, 'the start-up fetch only: a token without kid no longer asks for a refetch');
});
