// Contract section 3: "A connection that stops reading is closed with 4008 once its unsent data
// passes the limit, and the process's memory stays bounded". Clients that pause reading while
// events flood are closed by the relay itself (4008, not a bare 1006 drop), while a client that
// reads keeps receiving every event, batch after batch, without waiting for the slow ones. And a
// client that reads is not closed as slow because its replay had large events to send.
import t from 'tap';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { collectFrames } from '../helpers/event-collector.ts';
import { subscribe } from '../helpers/frames.ts';
import { startTestRelay } from '../helpers/relay.ts';
import { tcpSocketOf, type Frame } from '../helpers/ws-client.ts';

const ADMIN = { role: 'admin', sub: 'admin-1' };
const LIMIT_BYTES = 256 * 1024;
const PAUSED_CLIENTS = 4;
/** One commit, read at once: 1.6 MB, past uWS's backstop (twice the limit), so the relay must check within a batch. */
const BATCH_ROWS = 400;
const ROW_PAD_BYTES = 4000;
/** A guard only: the kernel buffers of a paused loopback client hold a few MB before the relay's own fill. */
const MAX_BATCHES = 200;

const isEvent = (frame: Frame): boolean => frame.type === 'event';

t.test('clients that stop reading are closed with 4008; a reading client gets every event meanwhile', async (t) => {
  const relay = await startTestRelay(t, { RELAY_MAX_BACKPRESSURE: `${LIMIT_BYTES}`, LOG_LEVEL: 'info' });
  const honest = await relay.connect(ADMIN);
  await subscribe(honest, 'orders');
  const honestFrames = collectFrames(honest);

  const paused = [];
  for (let i = 0; i < PAUSED_CLIENTS; i++) {
    const client = await relay.connect(ADMIN);
    await subscribe(client, 'orders');
    // The ws client stops reading its TCP socket: the kernel buffers fill, then the relay's.
    tcpSocketOf(client).pause();
    paused.push(client);
  }
  const slowClosed = (): number => relay.logLines.filter((line) => line.msg === 'a client fell too far behind; closing it').length;
  const rssBefore = process.memoryUsage().rss;

  let batches = 0;
  let inserted = 0;
  while (slowClosed() < PAUSED_CLIENTS && batches < MAX_BATCHES) {
    const first = inserted;
    await relay.db.pool.query(
      `insert into orders (id, status, rider)
       select 'o' || n, 'placed', jsonb_build_object('pad', repeat('x', $2::int)) from generate_series($1::int, $1::int + $3::int - 1) n`,
      [first, ROW_PAD_BYTES, BATCH_ROWS],
    );
    inserted += BATCH_ROWS;
    batches++;
    // The reading client is served at the pace of the writes, not of the slowest subscriber.
    const lastId = `o${inserted - 1}`;
    await honestFrames.waitFor((frame) => isEvent(frame) && (frame.data as { id: string }).id === lastId, `the honest client receiving ${lastId}`);
  }
  t.equal(slowClosed(), PAUSED_CLIENTS, `every paused client was closed by the relay (after ${batches} batches of ${BATCH_ROWS} events)`);
  const closeLines = relay.logLines.filter((line) => line.msg === 'a client fell too far behind; closing it');
  for (const line of closeLines) {
    t.ok(Number(line.unsentBytes) > LIMIT_BYTES && Number(line.unsentBytes) < 2 * LIMIT_BYTES, `closed at ${String(line.unsentBytes)} unsent bytes, past the limit and below uWS's backstop`);
  }
  const rssGrowthMb = (process.memoryUsage().rss - rssBefore) / 1e6;
  t.ok(rssGrowthMb < 200, `memory stayed bounded: RSS grew ${rssGrowthMb.toFixed(0)} MB while ${(inserted * ROW_PAD_BYTES) / 1e6} MB of events went out`);

  const ids = honestFrames.events('orders').map((frame) => (frame.data as { id: string }).id);
  t.strictSame(ids, Array.from({ length: inserted }, (_, i) => `o${i}`), 'the honest client received every event once, in order');

  for (const client of paused) {
    tcpSocketOf(client).resume();
  }
  const codes = await Promise.all(paused.map((client) => client.closed().then((info) => info.code)));
  t.strictSame(codes, Array.from({ length: PAUSED_CLIENTS }, () => 4008), 'once they read again, each paused client sees 4008 after what was sent');
  t.equal(honest.socket.readyState, honest.socket.OPEN, 'the honest client is still connected');
});

t.test('a resuming client that reads is not cut off, even when one page of its replay is many times the limit', async (t) => {
  const relay = await startTestRelay(t, { RELAY_MAX_BACKPRESSURE: `${LIMIT_BYTES}` });
  // A live subscriber of the small orders only: it learns when the relay is past the big ones
  // without receiving them (a 12 MB burst in one read would pass its limit too: live delivery
  // cannot wait for one client).
  const live = await relay.connect(ADMIN);
  await subscribe(live, 'orders', { filter: { status: 'marker' } });
  const liveFrames = collectFrames(live);
  await relay.db.pool.query(`insert into orders (id, status) values ('start', 'marker')`);
  const start = await liveFrames.waitFor(isEvent, 'the start order');

  // 600 events of 20 KB: a replay page (500 events) holds 10 MB, forty times the limit.
  const rows = 600;
  await relay.db.pool.query(
    `insert into orders (id, status, rider)
     select 'r' || n, 'placed', jsonb_build_object('pad', repeat('y', 20000)) from generate_series(0, $1::int - 1) n`,
    [rows],
  );
  await relay.db.pool.query(`insert into orders (id, status) values ('end', 'marker')`);
  // Resumed once the relay is past them: live events that arrive while a client catches up are
  // held for it, and holding more than the limit closes it too (a separate rule).
  await liveFrames.waitFor((frame) => isEvent(frame) && (frame.data as { id: string }).id === 'end', 'the end order, live');
  await live.close();

  const client = await relay.connect(ADMIN);
  const frames = collectFrames(client);
  client.send({ type: 'subscribe', topic: 'orders', since: start.cursor });
  await frames.waitFor((frame) => isEvent(frame) && (frame.data as { id: string }).id === 'end', 'the end order, replayed');
  const ids = frames.events('orders').map((frame) => (frame.data as { id: string }).id);
  t.strictSame(ids, [...Array.from({ length: rows }, (_, i) => `r${i}`), 'end'], 'every event after the cursor, once, in order');
  t.equal(client.socket.readyState, client.socket.OPEN, 'the client is still connected');
  t.equal(relay.logLines.filter((line) => String(line.msg).includes('fell too far behind')).length, 0, 'nobody was closed as too slow');
});

t.test('clients paused in the middle of a replay of large events each hold about a send budget, not a page', async (t) => {
  // Collected on demand, so that what the relay holds is measured apart from what it dropped.
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const heldBytes = (): number => {
    gc();
    const { heapUsed, external } = process.memoryUsage();
    return heapUsed + external;
  };
  const relay = await startTestRelay(t);
  const live = await relay.connect(ADMIN);
  await subscribe(live, 'orders', { filter: { status: 'marker' } });
  const liveFrames = collectFrames(live);
  await relay.db.pool.query(`insert into orders (id, status) values ('start', 'marker')`);
  const start = await liveFrames.waitFor(isEvent, 'the start order');
  // 300 orders of 200 KB: a page of 500 events would hold all 60 MB.
  await relay.db.pool.query(
    `insert into orders (id, status, rider)
     select 'r' || n, 'placed', jsonb_build_object('pad', repeat('y', 200000)) from generate_series(1, 300) n`,
  );
  await relay.db.pool.query(`insert into orders (id, status) values ('end', 'marker')`);
  await liveFrames.waitFor((frame) => isEvent(frame) && (frame.data as { id: string }).id === 'end', 'the end order, live');
  const before = heldBytes();

  const clients = 4;
  const paused = [];
  for (let i = 0; i < clients; i++) {
    const client = await relay.connect(ADMIN);
    t.match(await subscribe(client, 'orders', { since: start.cursor }), { type: 'subscribed' });
    // Read nothing more: the replay waits for this client with whatever it holds.
    tcpSocketOf(client).pause();
    paused.push(client);
  }
  const grewMb = (heldBytes() - before) / 2 ** 20;
  t.ok(grewMb < clients * 25, `${clients} paused replays hold ${grewMb.toFixed(0)} MB in all (at most 25 MB each; a page of 500 would be 60 MB each)`);
  // Dropped, not closed: a client that reads nothing never sees the relay's close frame, and a
  // close would wait for it for ws's 30 s.
  for (const client of paused) client.socket.terminate();
});
