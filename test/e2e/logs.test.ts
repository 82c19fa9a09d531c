// README, operations: logs never hold a token, wherever a client puts one (the URL, an auth frame,
// a malformed frame), and every line about a connection carries that connection's id. The relay
// logs at debug level into a sink that the test reads line by line.
import { createPublicKey, sign as cryptoSign } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignJWT, type JWK } from 'jose';
import t from 'tap';
import { nextFrame } from '../helpers/frames.ts';
import { watchLogLines, type LogLine } from '../helpers/log-lines.ts';
import { startTestRelay, TEST_SECRET } from '../helpers/relay.ts';
import { generateTestKeyPair, nowSeconds, signByHand, signHmacToken } from '../helpers/tokens.ts';
import { connectClient, rawUpgradeRefusal, upgradeRefusal, type TestClient } from '../helpers/ws-client.ts';

/** Log messages about one connection: each must carry the connection's id. */
const CONNECTION_MESSAGES = new Set([
  'connection opened',
  'connection closed',
  'bad request',
  'bad request: not a UTF-8 text frame',
  'auth: refreshed token refused',
  'frame over the limit; closing with 1009',
]);

t.test('no token reaches the log, and each connection logs under one id', async (t) => {
  const relay = await startTestRelay(t);
  const logs = watchLogLines(relay.logLines);
  const secrets: string[] = [];
  const token = async (claims: Record<string, unknown>): Promise<string> => {
    const signed = await relay.token(claims);
    secrets.push(signed, signed.split('.')[2]!);
    return signed;
  };
  const opaque = 'opaque-secret-0123456789';
  secrets.push(opaque);

  // In the URL: refused (expired, or not a JWT at all) and accepted.
  const expired = await token({ role: 'admin', sub: 'late', exp: nowSeconds() - 60 });
  t.equal((await upgradeRefusal(`${relay.wsUrl}?access_token=${expired}`)).status, 401, 'an expired token in the URL: 401');
  t.equal((await upgradeRefusal(`${relay.wsUrl}?x=1&access_token=${opaque}`)).status, 401, 'an opaque token in the URL: 401');
  const refusals = relay.logLines.filter((line) => line.msg === 'upgrade refused');
  t.equal(refusals.length, 2, 'both refusals are logged');
  t.equal(refusals[1]?.url, '/ws?x=1&access_token=[redacted]', 'with the URL, its token blanked');

  const clients = new Map<string, TestClient>();
  for (const sub of ['alice', 'bob']) {
    clients.set(sub, await connectClient(`${relay.wsUrl}?access_token=${await token({ role: 'admin', sub })}`));
  }
  const alice = clients.get('alice')!;
  const bob = clients.get('bob')!;
  const fresh = await token({ role: 'admin', sub: 'alice' });
  const refused = await token({ role: 'admin', sub: 'alice', exp: nowSeconds() - 5 });

  // In auth frames, accepted and refused, and in malformed frames of every kind.
  const frames: Array<[client: TestClient, frame: string | Buffer]> = [
    [alice, JSON.stringify({ type: 'auth', token: fresh, ref: 1 })],
    [alice, JSON.stringify({ type: 'auth', token: refused, ref: 2 })],
    [alice, `{"type":"auth","token":"${fresh}"`],
    [alice, JSON.stringify({ type: fresh })],
    [bob, JSON.stringify({ type: 'auth', token: opaque })],
    [bob, JSON.stringify({ type: 'auth', token: [fresh] })],
    [bob, JSON.stringify({ type: 'subscribe', topic: 'orders', since: fresh })],
    [bob, Buffer.from(JSON.stringify({ type: 'auth', token: fresh }))],
    [bob, `{"token":"${opaque}"}`],
  ];
  for (const [client, frame] of frames) {
    client.sendRaw(frame);
    await nextFrame(client, `the reply to ${String(frame).slice(0, 30)}`);
  }
  // Logged before the welcome frame that connectClient awaited.
  const opened = new Map<string, unknown>();
  for (const line of relay.logLines) if (line.msg === 'connection opened') opened.set(String(line.sub), line.connection);
  await alice.close();
  await bob.close();
  for (const sub of ['alice', 'bob']) {
    await logs.waitFor((line) => line.msg === 'connection closed' && line.connection === opened.get(sub), {
      what: `${sub}'s connection closing`,
    });
  }

  const text = relay.logLines.map((line) => JSON.stringify(line)).join('\n');
  for (const secret of secrets) t.notOk(text.includes(secret), `no log line holds ${secret.slice(0, 12)}...`);
  t.notMatch(text, /eyJ[A-Za-z0-9_-]{4,}/, 'nor any part of a JWT');

  t.ok(opened.get('alice') !== undefined && opened.get('bob') !== undefined, 'each connection logged its opening with an id');
  t.not(opened.get('alice'), opened.get('bob'), 'two connections, two ids');
  const about = (id: unknown): LogLine[] => relay.logLines.filter((line) => line.connection === id);
  for (const sub of ['alice', 'bob']) {
    const lines = about(opened.get(sub)).map((line) => line.msg);
    t.ok(lines.includes('connection closed') && lines.includes('bad request'), `${sub}: opening, bad requests and closing under one id (${lines.join(', ')})`);
  }
  t.ok(about(opened.get('alice')).some((line) => line.msg === 'auth: refreshed token refused'), "alice's refused auth is logged under her id");
  t.ok(about(opened.get('bob')).some((line) => line.msg === 'bad request: not a UTF-8 text frame'), "bob's binary frame is logged under his id");
  const orphans = relay.logLines.filter((line) => CONNECTION_MESSAGES.has(line.msg as string) && line.connection === undefined);
  t.strictSame(orphans, [], 'no line about a connection lacks its id');
});

t.test('a token read from an oddly written query is blanked in the log, however it is encoded', async (t) => {
  const relay = await startTestRelay(t);
  const expired = await relay.token({ role: 'admin', sub: 'late', exp: nowSeconds() - 60 });
  // `e` as %65 at the start of the header and the payload: the relay decodes it, and no eyJ shows.
  const encoded = expired.replace(/^e/, '%65').replace('.e', '.%65');
  const targets = [`/ws??access_token=${encoded}`, `/ws?x=1#&access_token=${encoded}`, `/ws?%61ccess_token=${encoded}`];
  for (const target of targets) {
    const refusal = await rawUpgradeRefusal(relay.httpUrl, target);
    // "token expired" shows that the relay did read this token, and verified its signature.
    t.match(refusal, { status: 401, body: { error: 'unauthorized', reason: 'token expired' } }, `${target.slice(0, 20)}...: read as a token`);
  }
  // Logged before the 401 was written, so before the client had it.
  const urls = relay.logLines.filter((line) => line.msg === 'upgrade refused').map((line) => line.url);
  t.strictSame(urls, ['/ws??access_token=[redacted]', '/ws?x=1#&access_token=[redacted]', '/ws?%61ccess_token=[redacted]'], 'each refused URL is logged, its token blanked');
  const text = JSON.stringify(relay.logLines);
  const [, payload, signature] = expired.split('.') as [string, string, string];
  for (const [what, secret] of [
    ['the token', expired],
    ['the token as sent', encoded],
    ['its payload', payload.slice(3)],
    ['its signature', signature],
  ] as const) {
    t.notOk(text.includes(secret), `no log line holds ${what}`);
  }
});

t.test('a refusal logs its cause with its reason (a refused JWKS key, an alg, a clock), and never the token', async (t) => {
  const small = generateTestKeyPair('rsa-1024');
  const ec = generateTestKeyPair('ec-p256');
  const jwk = (key: typeof ec, extra: JWK): JWK => ({ ...(createPublicKey(key.privateKey).export({ format: 'jwk' }) as JWK), ...extra });
  const keys = [jwk(small, { kid: 'small', alg: 'RS256' }), jwk(ec, { kid: 'ec', alg: 'ES256' })];
  const server = createServer((_request, response) => response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys })));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const jwksUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks`;
  const relay = await startTestRelay(t, { JWT_SECRET: undefined as unknown as string, JWT_JWKS_URL: jwksUrl });
  const logs = watchLogLines(relay.logLines);
  const claims = { role: 'admin', sub: 'alice', exp: nowSeconds() + 600 };
  const byEc = (extra: Record<string, unknown> = {}) =>
    new SignJWT({ ...claims, ...extra }).setProtectedHeader({ alg: 'ES256', kid: 'ec' }).sign(ec.privateKey);

  // jose will not sign with a 1024-bit key: signed by hand.
  const bySmallKey = signByHand({ alg: 'RS256', kid: 'small' }, claims, (input) => cryptoSign('sha256', input, small.privateKey));
  const byHmac = await signHmacToken(TEST_SECRET, claims);
  const refusals: Array<[what: string, token: string, reason: string, cause: RegExp]> = [
    ['a token whose JWKS key is a 1024-bit RSA key', bySmallKey, 'unknown signing key', /is a 1024-bit RSA key; at least 2048 bits are needed/],
    ['an HS256 token, with keys from a JWKS', byHmac, 'algorithm not accepted', /^alg HS256; accepted here: RS256, /],
  ];
  for (const [what, token, reason, cause] of refusals) {
    const mark = logs.mark();
    t.match(await upgradeRefusal(`${relay.wsUrl}?access_token=${token}`), { status: 401, body: { reason } }, `${what}: 401 ${reason}`);
    const line = await logs.waitFor((logged) => logged.msg === 'upgrade refused', { after: mark, what: `the refusal of ${what}` });
    t.equal(line.reason, reason, `${what}: the log has the reason`);
    t.match(line.cause, cause, `${what}: and the cause (${String(line.cause)})`);
  }

  const client = await connectClient(`${relay.wsUrl}?access_token=${await byEc()}`);
  t.teardown(() => client.close());
  const early = await byEc({ nbf: nowSeconds() + 300 });
  const mark = logs.mark();
  client.send({ type: 'auth', token: early, ref: 'early' });
  const reply = await nextFrame(client, 'the refused auth');
  t.match(reply, { type: 'error', code: 'bad_request', message: 'token refused: token not yet valid', ref: 'early' }, 'the client has the reason only');
  const line = await logs.waitFor((logged) => logged.msg === 'auth: refreshed token refused', { after: mark, what: 'the refused auth' });
  t.match(line, { reason: 'token not yet valid', cause: /^nbf is 3\d\d s ahead of this relay's clock$/ }, 'a refused auth logs how far ahead nbf is');

  const text = relay.logLines.map((logged) => JSON.stringify(logged)).join('\n');
  for (const [what, token] of [['the 1024-bit key\'s token', bySmallKey], ['the HS256 token', byHmac], ['the early token', early]] as const) {
    t.notOk(text.includes(token) || text.includes(token.split('.')[2]!), `no log line holds ${what} or its signature`);
  }
  t.notMatch(text, /eyJ[A-Za-z0-9_-]{4,}/, 'nor any part of a JWT');
});
