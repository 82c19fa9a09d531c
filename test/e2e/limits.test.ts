// The limits of the settings table, end to end: each one refuses what is over it, says so, and
// leaves everything under it (and every other client) alone.
import t from 'tap';
import WebSocket from 'ws';
import { framesBeforePong, nextFrame, subscribe } from '../helpers/frames.ts';
import { readLog } from '../helpers/event-log.ts';
import { guarded } from '../helpers/guard.ts';
import { startTestRelay } from '../helpers/relay.ts';
import { connectClient, upgradeRefusal, type Frame } from '../helpers/ws-client.ts';

const ADMIN = { role: 'admin', sub: 'admin-1' };

t.test('RELAY_MAX_MESSAGES_PER_SECOND: a burst over it gets rate_limited, a flood is closed with 1008', async (t) => {
  const relay = await startTestRelay(t, { RELAY_MAX_MESSAGES_PER_SECOND: '5' });
  const witness = await relay.connect(ADMIN);
  await subscribe(witness, 'orders');
  const client = await relay.connect(ADMIN);
  for (let i = 0; i < 40; i++) client.send({ type: 'ping', ref: i });
  const closed = await guarded(client.closed(), 10_000, 'the flooding client being closed');
  const frames: Frame[] = [...client.buffered()];
  t.strictSame(
    frames.slice(0, 5),
    [0, 1, 2, 3, 4].map((ref) => ({ type: 'pong', ref })),
    'the first five (the burst) are answered',
  );
  const limited = frames.filter((frame) => frame.type === 'error');
  t.ok(limited.length >= 5, `then rate_limited errors (${limited.length})`);
  t.ok(limited.every((frame) => frame.code === 'rate_limited'), 'every refusal says rate_limited');
  const refs = frames.map((frame) => frame.ref);
  t.ok(
    refs.every((ref, index) => typeof ref === 'number' && (index === 0 || ref > (refs[index - 1] as number))),
    `every reply, refusals too, carries the ref of its message, in order (${JSON.stringify(refs)})`,
  );
  t.ok(frames.length < 40, 'not every message was handled');
  t.equal(closed.code, 1008, 'going on past the limit closes with 1008 (policy violation)');
  t.strictSame(await framesBeforePong(witness), [], 'another client is untouched');
});

t.test('a wall clock stepped back does not starve connections of their message budget', async (t) => {
  // The budget refills with time: measured on the wall clock, a clock set back an hour (NTP, a VM
  // resumed) refilled nothing for an hour, and every connection was refused, then closed.
  const relay = await startTestRelay(t, { RELAY_MAX_MESSAGES_PER_SECOND: '5' });
  const client = await relay.connect(ADMIN);
  for (let i = 0; i < 5; i++) client.send({ type: 'ping', ref: i });
  t.strictSame((await client.take(5)).map((frame) => frame.type), Array(5).fill('pong'), 'the burst spends the budget');
  const wallClock = Date.now;
  const stepped = wallClock() - 3_600_000;
  Date.now = () => stepped;
  t.teardown(() => void (Date.now = wallClock));
  // Waiting for a clock, not for an event: a refill is a duration by definition.
  await new Promise((resolve) => setTimeout(resolve, 1_000));
  for (let i = 5; i < 8; i++) client.send({ type: 'ping', ref: i });
  t.strictSame((await client.take(3)).map((frame) => `${frame.type} ${String(frame.ref)}`), ['pong 5', 'pong 6', 'pong 7'], 'a second later, the budget has refilled');
});

t.test('refusals wait their turn: a frame refused while an earlier one awaits the log is answered after it', async (t) => {
  const relay = await startTestRelay(t, { RELAY_MAX_MESSAGES_PER_SECOND: '3' });
  const witness = await relay.connect(ADMIN);
  await subscribe(witness, 'orders');
  await relay.db.pool.query(`select relay.publish('orders', 'note', '{"n": 1}')`);
  await relay.db.pool.query(`select relay.publish('orders', 'note', '{"n": 2}')`);
  // Once live delivery has passed event 2, it is the replay's: sent with the first page, before
  // the pings' replies. (Before that, it came as a live event held for the replay, after them.)
  await nextFrame(witness, 'event 2, live', (frame) => (frame.data as { n?: number } | undefined)?.n === 2);
  const [first] = await readLog(relay.db.pool, 'orders');
  const client = await relay.connect(ADMIN);
  // The subscribe awaits its first page from the log; the pings arrive meanwhile.
  client.send({ type: 'subscribe', topic: 'orders', since: first!.cursor, ref: 'sub' });
  for (let i = 0; i < 5; i++) client.send({ type: 'ping', ref: i });
  const replies = await client.take(7);
  t.strictSame(
    replies.map((frame) => `${frame.type === 'error' ? String(frame.code) : frame.type} ${String(frame.ref ?? (frame.data as { n: number } | undefined)?.n)}`),
    ['subscribed sub', 'event 2', 'pong 0', 'pong 1', 'rate_limited 2', 'rate_limited 3', 'rate_limited 4'],
    'the subscription and its replay, the two pings the budget allows, then the refusals, each with its ref',
  );
});

t.test('an auth counts as one message per subscription it re-decides: auths in a row are rate_limited', async (t) => {
  // An auth re-decides every subscription (its grants and its filter, with the new claims): with
  // 100 subscriptions of large filters, 100 auths a second, each counted as one message, took 7
  // cores (/tmp/exh/bench/auth-cost.mjs in the review that found it). A budget of 8 holds three
  // subscribes, one auth over them (1 + 3) and the second auth's own message; the second auth, sent
  // at once, needs 3 more tokens, which take 375 ms to come back. Counted as one, it was answered.
  const relay = await startTestRelay(t, { RELAY_MAX_MESSAGES_PER_SECOND: '8' });
  const client = await relay.connect(ADMIN);
  const token = await relay.token(ADMIN);
  for (const topic of ['orders', 'inventory', 'driver_locations']) client.send({ type: 'subscribe', topic, ref: topic });
  client.send({ type: 'auth', token, ref: 'auth 1' });
  client.send({ type: 'auth', token, ref: 'auth 2' });
  const replies = await client.take(5);
  t.strictSame(
    replies.map((frame) => `${frame.type === 'error' ? String(frame.code) : frame.type} ${String(frame.ref)}`),
    ['subscribed orders', 'subscribed inventory', 'subscribed driver_locations', 'authed auth 1', 'rate_limited auth 2'],
    'the subscribes and the first auth are answered, the second auth is refused',
  );
  t.match(replies[4], { message: /one message per subscription \(3 more\)/ }, 'the refusal says why');
});

t.test('RELAY_MAX_SUBSCRIPTIONS: one more gives too_many_subscriptions; unsubscribing makes room', async (t) => {
  const relay = await startTestRelay(t, { RELAY_MAX_SUBSCRIPTIONS: '2' });
  const client = await relay.connect(ADMIN);
  t.match(await subscribe(client, 'orders'), { type: 'subscribed' });
  t.match(await subscribe(client, 'inventory'), { type: 'subscribed' });
  t.match(
    await subscribe(client, 'driver_locations', { ref: 'third' }),
    { type: 'error', code: 'too_many_subscriptions', topic: 'driver_locations', ref: 'third', message: /2 subscriptions/ },
  );
  t.match(await subscribe(client, 'orders'), { code: 'already_subscribed' }, 'already_subscribed still comes first');
  client.send({ type: 'unsubscribe', topic: 'orders' });
  t.match(await nextFrame(client, 'unsubscribed'), { type: 'unsubscribed' });
  t.match(await subscribe(client, 'driver_locations'), { type: 'subscribed' }, 'room again after an unsubscribe');
});

t.test('RELAY_MAX_CONNECTIONS: the upgrade past it gets HTTP 503; a closed connection makes room', async (t) => {
  const relay = await startTestRelay(t, { RELAY_MAX_CONNECTIONS: '2' });
  const first = await relay.connect(ADMIN);
  await relay.connect(ADMIN);
  const refusal = await upgradeRefusal(`${relay.wsUrl}?access_token=${await relay.token(ADMIN)}`);
  t.strictSame(refusal, { status: 503, body: { error: 'unavailable', reason: 'too many connections' } });
  await first.close();
  await relay.connect(ADMIN).then(
    (client) => t.match(client.welcome, { type: 'welcome' }, 'a connection once one closed'),
    (error: unknown) => t.fail(`refused after a close: ${String(error)}`),
  );
});

t.test('RELAY_MAX_CONNECTIONS_PER_SUBJECT: one subject past it gets HTTP 429, other subjects and tokens without sub do not; a close makes room', async (t) => {
  const relay = await startTestRelay(t, { RELAY_MAX_CONNECTIONS_PER_SUBJECT: '2', LOG_LEVEL: 'info' });
  const first = await relay.connect(ADMIN);
  // The second comes with a token of another role: the limit is the subject's, whatever it may see.
  await relay.connect({ role: 'hospital', sub: 'admin-1', hospital_id: 'H1' });
  const token = await relay.token(ADMIN);
  const refusal = await upgradeRefusal(`${relay.wsUrl}?access_token=${token}`);
  t.strictSame(refusal, {
    status: 429,
    body: { error: 'too_many_connections', reason: "this token's subject already has 2 connections open" },
  });
  const logged = relay.logLines.filter((line) => line.msg === 'upgrade refused');
  t.match(logged, [{ reason: "this token's subject already has 2 connections open", cause: 'sub "admin-1"' }], 'the log names the subject');
  t.notOk(JSON.stringify(logged).includes(token), 'and not the token');
  const others = await Promise.all([relay.connect({ role: 'admin', sub: 'admin-2' }), relay.connect({ role: 'admin' }), relay.connect({ role: 'admin' }), relay.connect({ role: 'admin' })]);
  t.strictSame(
    others.map((client) => [client.welcome.type, client.welcome.sub ?? null]),
    [['welcome', 'admin-2'], ['welcome', null], ['welcome', null], ['welcome', null]],
    'another subject, and three tokens without sub, are welcome',
  );
  await first.close();
  await relay.connect(ADMIN).then(
    (client) => t.match(client.welcome, { type: 'welcome', sub: 'admin-1' }, 'the subject connects again once one closed'),
    (error: unknown) => t.fail(`refused after a close: ${String(error)}`),
  );
  t.match(await upgradeRefusal(`${relay.wsUrl}?access_token=${await relay.token(ADMIN)}`), { status: 429 }, 'and is at its limit again');
});

t.test('RELAY_ALLOWED_ORIGINS: a browser from another origin is refused with 403; listed and origin-less clients are welcome', async (t) => {
  const relay = await startTestRelay(t, { RELAY_ALLOWED_ORIGINS: 'https://app.example,http://localhost:3000' });
  const url = `${relay.wsUrl}?access_token=${await relay.token(ADMIN)}`;
  for (const origin of ['https://evil.example', 'https://app.example.evil.example', 'http://app.example', 'null']) {
    t.strictSame(
      await upgradeRefusal(url, { origin }),
      { status: 403, body: { error: 'forbidden', reason: 'origin not allowed' } },
      `Origin: ${origin}`,
    );
  }
  for (const origin of ['https://app.example', 'https://APP.example:443', 'http://localhost:3000']) {
    const welcomed = await new Promise<boolean>((resolve) => {
      const socket = new WebSocket(url, { origin });
      socket.once('open', () => {
        socket.close();
        resolve(true);
      });
      socket.once('unexpected-response', () => resolve(false));
      socket.once('error', () => resolve(false));
    });
    t.ok(welcomed, `Origin: ${origin} is welcome`);
  }
  const noOrigin = await connectClient(url);
  t.match(noOrigin.welcome, { type: 'welcome' }, 'a client without Origin (not a browser) is welcome');
  await noOrigin.close();
  const refusedToken = await upgradeRefusal(`${relay.wsUrl}?access_token=bad`, { origin: 'https://evil.example' });
  t.equal(refusedToken.status, 403, 'the origin is checked before the token');
});

t.test('RELAY_MAX_FILTER_DEPTH and RELAY_MAX_FILTER_NODES: bad_request saying where', async (t) => {
  const relay = await startTestRelay(t, { RELAY_MAX_FILTER_DEPTH: '3', RELAY_MAX_FILTER_NODES: '4' });
  const client = await relay.connect(ADMIN);
  t.match(await subscribe(client, 'orders', { filter: { not: { not: { not: { status: 'x' } } } } }), {
    type: 'error',
    code: 'bad_request',
    message: 'filter.not.not.not: nested deeper than 3 levels',
  });
  t.match(await subscribe(client, 'orders', { filter: { or: [{ a: 1 }, { b: 2 }, { c: 3 }, { d: 4 }] } }), {
    code: 'bad_request',
    message: /more than 4 nodes/,
  });
  t.match(await subscribe(client, 'orders', { filter: { not: { not: { status: 'x' } } } }), { type: 'subscribed' }, 'at the limits: accepted');
});

t.test('RELAY_MAX_FRAME_SIZE: a frame over it closes with 1009', async (t) => {
  const relay = await startTestRelay(t, { RELAY_MAX_FRAME_SIZE: '2KiB' });
  const client = await relay.connect(ADMIN);
  const padded = (bytes: number): string => {
    const head = '{"type":"ping","ref":"big","pad":"';
    return `${head}${'x'.repeat(bytes - head.length - 2)}"}`;
  };
  client.sendRaw(padded(2048));
  t.strictSame(await nextFrame(client, 'pong'), { type: 'pong', ref: 'big' }, '2 KiB exactly is fine');
  client.sendRaw(padded(2049));
  t.equal((await client.closed()).code, 1009);
});

t.test('frames waiting behind one the relay cannot answer yet are held up to RELAY_MAX_BACKPRESSURE, then the sender is closed with 1008', async (t) => {
  const relay = await startTestRelay(t, { RELAY_MAX_BACKPRESSURE: '1MiB' });
  await relay.db.pool.query(`select relay.publish('orders', 'note', '{"n": 1}')`);
  const [first] = await readLog(relay.db.pool, 'orders');
  const witness = await relay.connect(ADMIN);
  const client = await relay.connect(ADMIN);
  // The log cannot be read while this lock is held: the subscribe below waits for its first page
  // (as it would for a PostgreSQL that stopped answering), and every later frame waits behind it.
  const locker = await relay.db.pool.connect();
  await locker.query('begin');
  await locker.query('lock table relay.events in access exclusive mode');
  t.teardown(async () => {
    await locker.query('rollback').catch(() => undefined);
    locker.release();
  });
  client.send({ type: 'subscribe', topic: 'orders', since: first!.cursor, ref: 'sub' });
  // Within the message rate and the frame size: 40 frames of 60 KB, about 2.4 MB to hold for it.
  const pad = 'x'.repeat(60_000);
  for (let i = 0; i < 40; i++) client.send({ type: 'ping', ref: i, pad });
  const closed = await guarded(client.closed(), 10_000, 'the client whose waiting frames passed 1 MiB being closed');
  t.equal(closed.code, 1008, 'closed with 1008: it sent more than the relay could answer');
  t.strictSame(await framesBeforePong(witness), [], 'another client is untouched');
});
