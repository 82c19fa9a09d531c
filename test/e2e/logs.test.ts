// README, operations: logs never hold a token, wherever a client puts one (the URL, an auth frame,
// a malformed frame), and every line about a connection carries that connection's id. The relay
// logs at debug level into a sink that the test reads line by line.
import t from 'tap';
import { nextFrame } from '../helpers/frames.ts';
import { watchLogLines, type LogLine } from '../helpers/log-lines.ts';
import { startTestRelay } from '../helpers/relay.ts';
import { nowSeconds } from '../helpers/tokens.ts';
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
