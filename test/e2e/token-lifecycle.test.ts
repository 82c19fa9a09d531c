// Contract section 3: "At exp, unless refreshed, the server sends token_expired and closes with
// code 4001"; `auth` replaces the claims and the expiry. Expiries are checked once a second, so
// a connection ends within about a second after its token's exp.
import t, { type Test } from 'tap';
import { framesBeforePong, nextFrame, subscribe } from '../helpers/frames.ts';
import { readLog } from '../helpers/event-log.ts';
import { guarded } from '../helpers/guard.ts';
import { watchLogLines } from '../helpers/log-lines.ts';
import { TEST_SECRET, startTestRelay } from '../helpers/relay.ts';
import { nowSeconds, signHmacToken } from '../helpers/tokens.ts';
import { connectClient } from '../helpers/ws-client.ts';

const ADMIN = { role: 'admin', sub: 'admin-1' };
const CLOSE_GUARD_MS = 8_000;

t.test('at exp the client gets token_expired, then close 4001; not before exp', async (t) => {
  const relay = await startTestRelay(t);
  const exp = nowSeconds() + 2;
  const client = await relay.connect({ ...ADMIN, exp });
  await subscribe(client, 'orders');
  const expired = await nextFrame(client, 'token_expired', undefined, CLOSE_GUARD_MS);
  t.ok(Date.now() / 1000 >= exp, 'not before the token expired');
  t.match(expired, { type: 'error', code: 'token_expired', message: String }, 'an error frame says why');
  const closed = await guarded(client.closed(), CLOSE_GUARD_MS, 'the close after token_expired');
  t.equal(closed.code, 4001, 'closed with 4001: reconnect with a fresh token');
  t.ok(Date.now() / 1000 < exp + 3, 'within about a second of exp');
  const stats = await (await fetch(`${relay.httpUrl}/health`)).json();
  t.match(stats, { sessions: 0, subscriptions: 0 }, 'its session and subscription are gone');
});

t.test('an exp with a fraction of a second: the connection ends after it, never before', async (t) => {
  const relay = await startTestRelay(t);
  // RFC 7519 allows a fractional NumericDate. .999: whatever the phase of the relay's one-second
  // tick, a close in the second that starts at the whole part comes before exp (it used to).
  const exp = nowSeconds() + 2.999;
  const client = await connectClient(`${relay.wsUrl}?access_token=${await signHmacToken(TEST_SECRET, { ...ADMIN, exp })}`);
  t.teardown(() => client.close());
  t.equal(client.welcome.exp, exp, 'welcome says the exp as given');
  await nextFrame(client, 'token_expired', undefined, CLOSE_GUARD_MS);
  const seconds = Date.now() / 1000;
  t.ok(seconds >= exp, `token_expired at ${seconds.toFixed(3)}, not before exp ${exp}`);
  t.ok(seconds < exp + 2, 'within about a second after exp');
  t.equal((await guarded(client.closed(), CLOSE_GUARD_MS, 'the close')).code, 4001);
});

t.test('auth with a later exp keeps the connection past the old exp; a shorter one ends it sooner', async (t) => {
  const relay = await startTestRelay(t);
  const exp = nowSeconds() + 3;
  // Same exp, same tick: when the witness is closed, the refreshed connection's old exp has passed too.
  const witness = await relay.connect({ ...ADMIN, exp });
  const refreshed = await relay.connect({ ...ADMIN, exp });
  await subscribe(refreshed, 'orders');
  const later = nowSeconds() + 3600;
  refreshed.send({ type: 'auth', token: await relay.token({ ...ADMIN, exp: later }), ref: 'r' });
  t.strictSame(await nextFrame(refreshed, 'authed'), { type: 'authed', exp: later, ref: 'r' });

  t.equal((await guarded(witness.closed(), CLOSE_GUARD_MS, 'the witness closing at exp')).code, 4001, 'the witness expired');
  t.strictSame(await framesBeforePong(refreshed), [], 'the refreshed connection got no token_expired and still answers');
  await relay.db.pool.query(`insert into orders (id, status) values ('after-refresh', 'placed')`);
  t.match(await nextFrame(refreshed, 'an event after the old exp'), { type: 'event', data: { id: 'after-refresh' } }, 'and still receives events');

  // Two, not one: nowSeconds() + 1 can be a few milliseconds away, and the relay rightly refuses
  // a token that expired on its way.
  const sooner = nowSeconds() + 2;
  refreshed.send({ type: 'auth', token: await relay.token({ ...ADMIN, exp: sooner }) });
  t.match(await nextFrame(refreshed, 'authed'), { type: 'authed', exp: sooner });
  t.match(await nextFrame(refreshed, 'token_expired', undefined, CLOSE_GUARD_MS), { code: 'token_expired' }, 'the new, shorter exp applies');
  t.equal((await guarded(refreshed.closed(), CLOSE_GUARD_MS, 'the close')).code, 4001);
});

t.test('a token without exp never expires; auth can add an exp to it', async (t) => {
  const relay = await startTestRelay(t);
  // relay.token() adds an hour unless told otherwise: sign one with no exp by hand.
  const forever = await signHmacToken(TEST_SECRET, ADMIN);
  const client = await connectClient(`${relay.wsUrl}?access_token=${forever}`);
  t.teardown(() => client.close());
  t.equal(client.welcome.exp, null, 'welcome says exp null');
  const exp = nowSeconds() + 2; // at least a second away (see above)
  client.send({ type: 'auth', token: await relay.token({ ...ADMIN, exp }) });
  t.match(await nextFrame(client, 'authed'), { type: 'authed', exp });
  t.match(await nextFrame(client, 'token_expired', undefined, CLOSE_GUARD_MS), { code: 'token_expired' });
  t.equal((await guarded(client.closed(), CLOSE_GUARD_MS, 'the close')).code, 4001);
});

t.test('a refused auth keeps the old exp: the connection still ends at it', async (t) => {
  const relay = await startTestRelay(t);
  const exp = nowSeconds() + 2;
  const client = await relay.connect({ ...ADMIN, exp });
  client.send({ type: 'auth', token: await relay.token({ ...ADMIN, exp: nowSeconds() - 10 }), ref: 'old' });
  t.match(await nextFrame(client, 'the refusal'), { type: 'error', code: 'bad_request', ref: 'old', message: /expired/ });
  t.match(await nextFrame(client, 'token_expired', undefined, CLOSE_GUARD_MS), { code: 'token_expired' });
  t.equal((await guarded(client.closed(), CLOSE_GUARD_MS, 'the close')).code, 4001);
});

/**
 * A relay whose replays' first reads wait, while `stallReads()` holds its lock, for as long as a
 * test needs (and the frames behind them, past exp); the cursor of the log's one event.
 */
async function relayWithStallableReads(t: Test) {
  const relay = await startTestRelay(t);
  await relay.db.pool.query(`select relay.publish('orders', 'note', '{"n": 1}')`);
  const [first] = await readLog(relay.db.pool, 'orders');
  const locker = await relay.db.pool.connect();
  t.teardown(() => locker.release());
  const logs = watchLogLines(relay.logLines);
  return {
    relay,
    cursor: first!.cursor,
    stallReads: async (): Promise<void> => {
      await locker.query('begin');
      await locker.query('lock table relay.events in access exclusive mode');
    },
    resumeReads: async (): Promise<void> => {
      await locker.query('rollback');
    },
    refreshWaitsPastExp: () =>
      logs.waitFor((line) => line.msg === 'token expired while a refresh sent before it waits; deciding after it', {
        after: logs.mark(),
        timeoutMs: CLOSE_GUARD_MS,
        what: 'the expiry tick finding the token expired while the refresh waits',
      }),
  };
}

t.test('an auth sent before exp, waiting behind a slow read, keeps the connection; without one, it ends at exp as ever', async (t) => {
  const { relay, cursor, stallReads, resumeReads, refreshWaitsPastExp } = await relayWithStallableReads(t);
  const client = await relay.connect({ ...ADMIN, exp: nowSeconds() + 2 });
  await stallReads();
  client.send({ type: 'subscribe', topic: 'orders', since: cursor, ref: 'resume' });
  client.send({ type: 'auth', token: await relay.token({ ...ADMIN, exp: nowSeconds() + 3600 }), ref: 'refresh' });
  await refreshWaitsPastExp();
  await resumeReads();
  t.match(await nextFrame(client, 'the reply to the resume'), { type: 'subscribed', ref: 'resume' });
  t.match(await nextFrame(client, 'the reply to the refresh'), { type: 'authed', ref: 'refresh' }, 'the refresh sent before exp was handled');
  t.strictSame(await framesBeforePong(client), [], 'and the connection goes on');

  // No refresh waiting: the read in flight does not keep the connection past exp.
  const late = await relay.connect({ ...ADMIN, exp: nowSeconds() + 2 });
  await stallReads();
  late.send({ type: 'subscribe', topic: 'orders', since: cursor, ref: 'resume' });
  late.send({ type: 'ping', ref: 'waiting' });
  t.match(await nextFrame(late, 'token_expired', undefined, CLOSE_GUARD_MS), { type: 'error', code: 'token_expired' });
  t.equal((await guarded(late.closed(), CLOSE_GUARD_MS, 'the close')).code, 4001);
  await resumeReads();
});

t.test('a refresh sent before exp that waits past the grace ends the connection all the same', async (t) => {
  const { relay, cursor, stallReads, resumeReads, refreshWaitsPastExp } = await relayWithStallableReads(t);
  const exp = nowSeconds() + 2;
  const client = await relay.connect({ ...ADMIN, exp });
  await stallReads();
  client.send({ type: 'subscribe', topic: 'orders', since: cursor, ref: 'resume' });
  client.send({ type: 'auth', token: await relay.token({ ...ADMIN, exp: nowSeconds() + 3600 }), ref: 'refresh' });
  await refreshWaitsPastExp();
  // The read never comes back while the lock is held: an expired token is not served for longer.
  t.match(await nextFrame(client, 'token_expired', undefined, 3 * CLOSE_GUARD_MS), { type: 'error', code: 'token_expired' });
  t.ok(Date.now() / 1000 >= exp + 5, 'after the grace of 5 s');
  t.equal((await guarded(client.closed(), CLOSE_GUARD_MS, 'the close')).code, 4001);
  await resumeReads();
});
