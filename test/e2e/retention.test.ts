// Contract section 1 (RELAY_RETENTION) and section 3 (`cursor_expired`): events older than the
// retention leave the log, a cursor that points into what was pruned is refused instead of
// resuming with a hole, and a cursor after it still resumes. relay.prune works in small batches,
// one caller at a time.
import t, { type Test } from 'tap';
import WebSocket from 'ws';
import { changeCatalog } from '../helpers/catalog.ts';
import { loadConfig } from '../../src/config.ts';
import { createEventLog } from '../../src/db/event-log.ts';
import { createTestDatabase } from '../helpers/database.ts';
import { guarded } from '../helpers/guard.ts';
import { describeDifference, eventsUntil, positionAt, readLog } from '../helpers/event-log.ts';
import { watchLogLines } from '../helpers/log-lines.ts';
import { nextFrame, subscribe } from '../helpers/frames.ts';
import { startTestRelay, type TestRelay } from '../helpers/relay.ts';
import { startTcpProxy } from '../helpers/tcp-proxy.ts';
import type { Frame, TestClient } from '../helpers/ws-client.ts';
import { ageCommits } from '../helpers/aged-commits.ts';

const ADMIN = { role: 'admin', sub: 'admin-1' };
const dataOf = (frame: Frame): Record<string, unknown> => frame.data as Record<string, unknown>;
const idIs = (id: string) => (frame: Frame): boolean => dataOf(frame).id === id;

async function insertOrders(relay: TestRelay, ids: string[]): Promise<void> {
  const db = await relay.db.pool.connect();
  try {
    await db.query('begin');
    for (const id of ids) await db.query(`insert into orders (id, hospital_id, status) values ($1, 'H1', 'placed')`, [id]);
    await db.query('commit');
  } finally {
    db.release();
  }
}

async function subscribed(client: TestClient, topic: string, extra: Record<string, unknown> = {}): Promise<void> {
  const reply = await subscribe(client, topic, extra);
  if (reply.type !== 'subscribed') throw new Error(`subscribe ${topic} ${JSON.stringify(extra)}: the relay answered ${JSON.stringify(reply)}`);
}

async function prunedThrough(relay: TestRelay): Promise<number> {
  const { rows } = await relay.db.pool.query<{ pruned_through: string }>('select pruned_through from relay.log_identity');
  return Number(rows[0]!.pruned_through);
}

/** After a refused `since`: no subscription was left behind, and live delivery works. */
async function expectNoSubscriptionLeft(t: Test, relay: TestRelay, client: TestClient, what: string, id: string): Promise<void> {
  const reply = await subscribe(client, 'orders');
  t.match(reply, { type: 'subscribed', topic: 'orders' }, `${what}: no subscription was left behind; subscribing without since works`);
  await insertOrders(relay, [id]);
  t.match(await nextFrame(client, `the live order ${id}`), { type: 'event', data: { id } }, `${what}: then live events arrive`);
}

t.test('with RELAY_RETENTION=1s the relay prunes old events by itself, and their cursors are cursor_expired', async (t) => {
  const relay = await startTestRelay(t, { RELAY_RETENTION: '1s' });
  const logs = watchLogLines(relay.logLines);
  t.equal(await prunedThrough(relay), 0, 'nothing is pruned in a fresh log');
  const admin = await relay.connect(ADMIN);
  await subscribed(admin, 'orders');
  const mark = logs.mark();
  await insertOrders(relay, ['old-1']);
  await insertOrders(relay, ['old-2']);
  await insertOrders(relay, ['old-3a', 'old-3b']);
  const frames = await admin.take(4);
  const cursors = frames.map((frame) => String(frame.cursor));
  const lastPos = positionAt(cursors.at(-1)!).pos;

  // The relay prunes on its own timer; each pass that deletes something says so.
  let after = mark;
  let through = 0;
  const passes: Record<string, unknown>[] = [];
  while (through < lastPos) {
    const line = await logs.waitFor((l) => l.msg === 'retention: pruned old events', {
      after,
      timeoutMs: 10_000,
      what: `the relay pruning the events older than 1s (pruned through ${through}, the writes end at position ${lastPos})`,
    });
    passes.push(line);
    after = relay.logLines.indexOf(line) + 1;
    through = await prunedThrough(relay);
  }
  t.ok(passes.every((line) => typeof line.commits === 'number' && line.commits > 0), `the log line says how many commits went: ${JSON.stringify(passes.map((line) => line.commits))}`);
  t.ok(through >= lastPos, `relay.log_identity.pruned_through advanced to ${through}`);
  const ids = frames.map((frame) => positionAt(String(frame.cursor)).id);
  const { rows } = await relay.db.pool.query<{ events: number; commits: number }>(
    `select (select count(*)::int from relay.events where id = any($1::bigint[])) as events,
            (select count(*)::int from relay.commits where pos <= $2) as commits`,
    [ids, lastPos],
  );
  t.strictSame(rows[0], { events: 0, commits: 0 }, 'the old events and their commits are gone from relay.events and relay.commits');

  const client = await relay.connect(ADMIN);
  const reply = await subscribe(client, 'orders', { since: cursors[1], ref: 'old' });
  t.match(reply, { type: 'error', code: 'cursor_expired', topic: 'orders', ref: 'old' }, 'a cursor older than the pruned position: cursor_expired');
  t.equal(typeof reply.message, 'string', 'with a message saying what to do');
  await expectNoSubscriptionLeft(t, relay, client, 'after cursor_expired', 'new-1');
});

t.test('after a prune: a cursor past the pruned position resumes; one inside a pruned transaction is refused, never cut short', async (t) => {
  const relay = await startTestRelay(t);
  const admin = await relay.connect(ADMIN);
  await subscribed(admin, 'orders');
  await insertOrders(relay, ['o1']);
  await insertOrders(relay, ['o2']);
  await insertOrders(relay, ['t1', 't2', 't3']);
  await insertOrders(relay, ['o4']);
  await insertOrders(relay, ['o5']);
  await insertOrders(relay, ['o6']);
  const frames = await admin.take(8);
  const cursor = Object.fromEntries(frames.map((frame) => [String(dataOf(frame).id), String(frame.cursor)]));

  // Age the first three commits by an hour, then prune with a retention of half an hour: exactly
  // they go, through the three-event transaction, whatever the clock does meanwhile.
  await ageCommits(relay.db.pool, 'pos <= $1', [positionAt(cursor.t1!).pos]);
  const { rows: pruned } = await relay.db.pool.query<{ pruned: number }>(`select relay.prune('30 minutes', 1000) as pruned`);
  t.equal(pruned[0]!.pruned, 3, 'the three oldest commits are pruned');
  t.equal(await prunedThrough(relay), positionAt(cursor.t1!).pos, 'pruned_through is the position of the three-event transaction');
  const left = await readLog(relay.db.pool, 'orders');
  t.strictSame(left.map((event) => event.data.id), ['o4', 'o5', 'o6'], 'the log keeps what came after');

  const cases: Array<[since: string, what: string]> = [
    ['o2', 'a cursor of a pruned commit'],
    ['t1', 'the first event of a pruned transaction whose other events (t2, t3) were pruned with it'],
    ['t2', 'the middle event of a pruned transaction (t3 was pruned with it)'],
  ];
  for (const [since, what] of cases) {
    const client = await relay.connect(ADMIN);
    const reply = await subscribe(client, 'orders', { since: cursor[since], ref: since });
    if (reply.type === 'subscribed') {
      await insertOrders(relay, [`probe-${since}`]);
      const got = await eventsUntil(client, 'orders', idIs(`probe-${since}`), `${what}: the resumed stream`);
      const order = frames.map((frame) => String(dataOf(frame).id));
      const missing = order.slice(order.indexOf(since) + 1, order.indexOf('o4'));
      t.fail(
        `since ${since} (${cursor[since]}; ${what}): the relay answered subscribed instead of cursor_expired and resumed with ` +
          `${got.map((frame) => dataOf(frame).id).join(', ')}: ${missing.join(', ')} silently missing`,
      );
      continue;
    }
    t.match(reply, { type: 'error', code: 'cursor_expired', topic: 'orders', ref: since }, `since ${since} (${what}): cursor_expired`);
    await expectNoSubscriptionLeft(t, relay, client, `since ${since}`, `live-${since}`);
  }

  // The last event of the pruned transaction: nothing after it was pruned, so resuming loses
  // nothing; cursor_expired is acceptable too (the event itself is older than the retention).
  const boundary = await relay.connect(ADMIN);
  const reply = await subscribe(boundary, 'orders', { since: cursor.t3, ref: 't3' });
  if (reply.type === 'subscribed') {
    await insertOrders(relay, ['after-t3']);
    const got = await eventsUntil(boundary, 'orders', idIs('after-t3'), 'resuming from t3');
    const expected = (await readLog(relay.db.pool, 'orders')).map((event) => String(event.data.id));
    t.strictSame(got.map((frame) => dataOf(frame).id), expected.slice(0, expected.indexOf('after-t3') + 1), 'since t3 (the last event of the pruned transaction): everything after it');
  } else {
    t.match(reply, { type: 'error', code: 'cursor_expired', ref: 't3' }, 'since t3: cursor_expired');
  }

  const client = await relay.connect(ADMIN);
  await subscribed(client, 'orders', { since: cursor.o4 });
  await insertOrders(relay, ['sentinel']);
  const got = await eventsUntil(client, 'orders', idIs('sentinel'), 'resuming from o4 until the sentinel order');
  const log = (await readLog(relay.db.pool, 'orders')).map((event) => event.cursor);
  const fromO4 = log.slice(log.indexOf(cursor.o4!) + 1, log.findIndex((c) => c === got.at(-1)!.cursor) + 1);
  t.equal(describeDifference(got.map((frame) => String(frame.cursor)), fromO4), 'identical', 'a cursor after the pruned position resumes with exactly the events after it');
  t.strictSame(got.slice(0, 2).map((frame) => dataOf(frame).id), ['o5', 'o6'], 'starting with o5 and o6');
});

t.test('retention that overtakes a slow replay ends it with cursor_expired, never with a hole', async (t) => {
  const total = 30_000;
  const relay = await startTestRelay(t);
  await changeCatalog(relay, `select relay.allow('backlog', 'admin'); select relay.allow('sentinel', 'admin')`);
  const probe = await relay.connect(ADMIN);
  await subscribed(probe, 'sentinel');
  await relay.db.pool.query(`select relay.publish('sentinel', 'mark', '{}')`);
  const before = String((await nextFrame(probe, 'the sentinel before the backlog')).cursor);
  // The backlog is one transaction: a page of the replay can end in the middle of it.
  await relay.db.pool.query(
    `select relay.publish('backlog', 'tick', jsonb_build_object('n', n, 'pad', repeat('x', 700))) from generate_series(1, $1) n`,
    [total],
  );
  await relay.db.pool.query(`select relay.publish('sentinel', 'mark', '{}')`);
  await nextFrame(probe, 'the sentinel after the backlog', undefined, 30_000);

  // The client reads the first events and stops reading; meanwhile retention deletes the backlog's
  // transaction (aged by an hour, pruned with a retention of half an hour: exactly it and what came
  // before), and a new event is committed. Then the client reads on.
  const socket = new WebSocket(`${relay.wsUrl}?access_token=${await relay.token(ADMIN)}`);
  t.teardown(() => socket.terminate());
  const numbers: number[] = [];
  let ending: Frame | undefined;
  const outcome = new Promise<void>((resolve, reject) => {
    socket.on('close', (code) => reject(new Error(`the relay closed the connection (${code}) during the replay`)));
    socket.on('message', (raw) => {
      const frame = JSON.parse(raw.toString()) as Frame;
      if (frame.type === 'welcome') {
        socket.send(JSON.stringify({ type: 'subscribe', topic: 'backlog', since: before }));
        return;
      }
      if (frame.type === 'subscribed') return;
      const n = frame.type === 'event' ? dataOf(frame).n : undefined;
      if (typeof n !== 'number' || n === total) {
        ending = frame.type === 'event' ? { type: 'event', n } : frame;
        if (typeof n === 'number') numbers.push(n);
        resolve();
        return;
      }
      // Keep only the numbers: 30,000 frames of 760 bytes need not stay in memory.
      numbers.push(n);
      if (numbers.length === 100) {
        socket.pause();
        const backlogPos = positionAt(String(frame.cursor)).pos;
        (async () => {
          await ageCommits(relay.db.pool, 'pos <= $1', [backlogPos]);
          await relay.db.pool.query(`select relay.prune('30 minutes', 1000)`);
          await relay.db.pool.query(`select relay.publish('backlog', 'tick', '{"n": "written after the prune"}')`);
          socket.resume();
        })().catch(reject);
      }
    });
  });
  await guarded(outcome, 60_000, 'the replay of the backlog ending');
  const gapAt = numbers.findIndex((n, index) => n !== index + 1);
  t.equal(gapAt, -1, `the replayed events are 1, 2, 3, ... with no hole (${numbers.length} received)`);
  if (numbers.at(-1) === total) {
    t.comment('the replay finished before the prune reached it (the client paused too late to see it overtaken)');
    return;
  }
  if (ending?.type === 'event') {
    t.fail(
      `after ${numbers.length} of ${total} events the replay went live (next frame ${JSON.stringify(ending)}): ` +
        `the ${total - numbers.length} pruned events after tick ${numbers.length} are silently missing instead of a cursor_expired`,
    );
    return;
  }
  t.match(ending, { type: 'error', code: 'cursor_expired', topic: 'backlog' }, `after ${numbers.length} of ${total} events, the replay ends with cursor_expired`);
  const reply = guarded(
    new Promise<Frame>((resolve) => socket.once('message', (raw) => resolve(JSON.parse(raw.toString()) as Frame))),
    10_000,
    'the reply to subscribe after cursor_expired',
  );
  socket.send(JSON.stringify({ type: 'subscribe', topic: 'backlog' }));
  t.match(await reply, { type: 'subscribed', topic: 'backlog' }, 'the ended subscription is gone: subscribing again without since works');
});

t.test('relay.prune deletes the oldest commits in batches of at most batch_size, one caller at a time', async (t) => {
  const db = await createTestDatabase(t);
  const commit = async (events: number): Promise<void> => {
    const client = await db.pool.connect();
    try {
      await client.query('begin');
      for (let i = 0; i < events; i++) await client.query(`select relay.publish('p', 'e', '{}')`);
      await client.query('commit');
    } finally {
      client.release();
    }
  };
  const state = async (): Promise<{ commits: number[]; events: number; through: number }> => {
    const { rows } = await db.pool.query<{ commits: string[] | null; events: number; through: string }>(
      `select (select array_agg(pos order by pos) from relay.commits) as commits,
              (select count(*)::int from relay.events) as events,
              (select pruned_through from relay.log_identity) as through`,
    );
    return { commits: (rows[0]!.commits ?? []).map(Number), events: rows[0]!.events, through: Number(rows[0]!.through) };
  };
  const prune = async (client: { query: typeof db.pool.query } = db.pool): Promise<number> => {
    const { rows } = await client.query<{ pruned: number }>(`select relay.prune('0 seconds'::interval, 2) as pruned`);
    return rows[0]!.pruned;
  };

  for (const events of [1, 2, 1, 3, 1]) await commit(events);
  const initial = await state();
  t.equal(initial.commits.length, 5, 'five commits in the log');
  const eventsOf = async (pos: number[]): Promise<number> => {
    const { rows } = await db.pool.query<{ n: number }>(
      `select count(*)::int as n from relay.events e join relay.commits c on c.xid = e.xid where c.pos = any($1::bigint[])`,
      [pos],
    );
    return rows[0]!.n;
  };
  const sizes = [1, 2, 1, 3, 1];
  t.equal(await eventsOf(initial.commits), 8, 'eight events in them');
  const results: number[] = [];
  let remaining = initial.commits;
  let events = initial.events;
  for (;;) {
    const pruned = await prune();
    results.push(pruned);
    const now = await state();
    const gone = remaining.slice(0, pruned);
    t.strictSame(now.commits, remaining.slice(pruned), `a call deleting ${pruned} commits took the oldest ones`);
    const goneEvents = gone.reduce((sum, pos) => sum + sizes[initial.commits.indexOf(pos)]!, 0);
    t.equal(now.events, events - goneEvents, `and exactly their ${goneEvents} events`);
    if (pruned > 0) t.equal(now.through, gone.at(-1), `pruned_through advanced to ${gone.at(-1)}`);
    remaining = now.commits;
    events = now.events;
    if (pruned === 0) break;
  }
  t.strictSame(results, [2, 2, 1, 0], 'batches of at most 2, until nothing is left');

  // Two callers at once: the second finds the first one's lock and prunes nothing.
  for (let i = 0; i < 4; i++) await commit(1);
  const first = await db.pool.connect();
  const second = await db.pool.connect();
  try {
    await first.query('begin');
    t.equal(await prune(first), 2, 'the first caller prunes a batch (its transaction still open)');
    const before = await state();
    // A guard, not a wait: a prune that queued behind the first caller's row locks would otherwise
    // hang this test until the first caller commits, which it does only after this call.
    await second.query(`set lock_timeout = '5s'`);
    const concurrent = await prune(second).catch((error: Error) => `failed: ${error.message}`);
    t.equal(concurrent, 0, 'a second caller meanwhile prunes nothing: it returns 0 at once, without waiting for the first');
    await second.query(`reset lock_timeout`);
    t.strictSame(await state(), before, 'and deleted nothing');
    await first.query('commit');
    t.equal(await prune(second), 2, 'once the first caller is done, the next call prunes again');
    t.equal(await prune(second), 0, 'and then nothing is left');
  } finally {
    first.release();
    second.release();
  }

  // Many callers racing: no error, no batch over 2, every commit pruned exactly once.
  for (let i = 0; i < 20; i++) await commit(1);
  const raced = await Promise.all(Array.from({ length: 10 }, () => prune()));
  t.ok(raced.every((n) => n >= 0 && n <= 2), `each racing call pruned at most 2 (${raced.join(', ')})`);
  let total = raced.reduce((sum, n) => sum + n, 0);
  for (let n = await prune(); n > 0; n = await prune()) total += n;
  t.equal(total, 20, 'together they pruned the 20 commits, each once');
  t.strictSame((await state()).commits, [], 'the log is empty');
});

t.test('the longest RELAY_RETENTION accepted prunes without an error, keeping every event', async (t) => {
  // 100000000d used to be accepted, then every prune failed with "timestamp out of range".
  const { retentionMs } = loadConfig({ RELAY_RETENTION: '3650d' });
  t.throws(() => loadConfig({ RELAY_RETENTION: '3651d' }), /at most 3650d/, 'one day more is refused at start-up');
  const db = await createTestDatabase(t);
  await db.pool.query(`select relay.publish('p', 'e', '{}')`);
  t.equal(await createEventLog(db.pool).prune(retentionMs, 10), 0, 'relay.prune with now() minus 3650 days: nothing pruned');
  const { rows } = await db.pool.query<{ n: number }>('select count(*)::int as n from relay.events');
  t.equal(rows[0]!.n, 1, 'the event is still in the log');
});

t.test('retention that deletes events a live stream held back has not delivered closes its clients with 1011, never leaves them a hole', async (t) => {
  const relay = await startTestRelay(t, { RELAY_RETENTION: '1s' });
  const logs = watchLogLines(relay.logLines);
  const admin = await relay.connect(ADMIN);
  await subscribed(admin, 'orders');
  // A writer draws its commit position early and stays open: live delivery waits at it.
  const writer = await relay.db.pool.connect();
  t.teardown(() => writer.release());
  await writer.query(`begin; insert into orders (id, hospital_id, status) values ('held', 'H1', 'placed'); set constraints all immediate`);
  await insertOrders(relay, ['gone-1']);
  await insertOrders(relay, ['gone-2']);
  const { rows } = await relay.db.pool.query<{ pos: string }>('select max(pos) as pos from relay.commits');
  const gonePos = Number(rows[0]!.pos);

  // Retention deletes them while the stream still waits for the writer.
  let after = 0;
  while ((await prunedThrough(relay)) < gonePos) {
    const line = await logs.waitFor((l) => l.msg === 'retention: pruned old events', { after, timeoutMs: 10_000, what: 'a retention pass' });
    after = relay.logLines.indexOf(line) + 1;
  }
  await writer.query('commit');
  await insertOrders(relay, ['after']);

  const delivered = nextFrame(admin, 'the order written after', idIs('after')).then(
    () => 'delivered without what was deleted',
    () => 'closed first',
  );
  t.equal(await Promise.race([admin.closed().then(({ code }) => code), delivered]), 1011, 'the live client is closed with 1011');
  const line = await logs.waitFor((l) => l.msg === 'retention deleted events this relay had not delivered yet; closed every connection', {
    what: 'the relay saying why',
  });
  t.ok(Number(line.prunedThrough) >= gonePos, `it names how far retention went (${String(line.prunedThrough)})`);
});

t.test('a relay started on a log that retention emptied does not take the pruned past for events it missed', async (t) => {
  const db = await createTestDatabase(t);
  await db.pool.query(`insert into orders (id, hospital_id, status) values ('old-1', 'H1', 'placed')`);
  await db.pool.query(`insert into orders (id, hospital_id, status) values ('old-2', 'H1', 'placed')`);
  // Retention (of another relay, long before this one starts) deletes the whole log.
  await ageCommits(db.pool);
  await db.pool.query(`select relay.prune('30 minutes', 1000)`);
  const { rows } = await db.pool.query<{ n: string }>('select count(*) as n from relay.commits');
  t.equal(Number(rows[0]!.n), 0, 'the log is empty, its pruned position is not 0');

  const relay = await startTestRelay(t, {}, db);
  const admin = await relay.connect(ADMIN);
  await subscribed(admin, 'orders');
  // A transaction draws a position and rolls back (a deferred check failing at commit, say): the
  // stream waits for it to end, then passes that position as rolled back.
  const writer = await relay.db.pool.connect();
  t.teardown(() => writer.release());
  await writer.query(`begin; set constraints all immediate; insert into orders (id, hospital_id, status) values ('rolled-back', 'H1', 'placed')`);
  await writer.query('rollback');
  await insertOrders(relay, ['after']);

  const delivered = nextFrame(admin, 'the order written after the rollback', idIs('after')).then(
    () => 'delivered',
    (error: Error) => error.message,
  );
  const outcome = await Promise.race([admin.closed().then(({ code, reason }) => `closed with ${code} (${reason})`), delivered]);
  t.equal(outcome, 'delivered', 'the live client gets the next event; nothing it could have received was deleted');
});

/**
 * A relay behind a TCP proxy whose live delivery has read the first 1,000 events of a commit of
 * 1,500 (at most 1,000 a query): the second read, the rest of the commit as a page, has its reply
 * held at the proxy, the relay cut off there.
 */
async function relayCutOffInsideACommit(t: Test) {
  const db = await createTestDatabase(t);
  // The proxy's dropAll cuts the pool's connections too; an idle one failing must not end the file.
  db.pool.on('error', () => undefined);
  const server = new URL(db.url);
  const proxy = await startTcpProxy({ host: server.hostname, port: Number(server.port || 5432) });
  t.teardown(() => proxy.close());
  const relay = await startTestRelay(t, { DATABASE_URL: proxy.urlFor(db.url) }, db);
  t.teardown(() => proxy.releaseReplies());
  const admin = await relay.connect(ADMIN);
  await subscribed(admin, 'orders');
  const caught = proxy.holdRepliesAfter('relay-read-log-page');
  await db.pool.query(`insert into orders (id, hospital_id, status) select 'big-' || n, 'H1', 'placed' from generate_series(1, 1500) n`);
  await caught;
  const firstRead = await admin.take(1000);
  return { db, proxy, relay, admin, firstRead };
}

t.test('retention that deletes the rest of a commit live delivery is reading in pages closes its clients with 1011, never leaves them a hole', async (t) => {
  const { db, proxy, relay, admin, firstRead } = await relayCutOffInsideACommit(t);
  t.equal(dataOf(firstRead.at(-1)!).id, 'big-1000', 'the first read of the commit is delivered');

  // Meanwhile retention deletes that commit (it was cut off longer than the retention), not the next one.
  const { rows } = await db.pool.query<{ pos: string }>('select max(pos) as pos from relay.commits');
  await ageCommits(db.pool, 'pos = $1', [rows[0]!.pos]);
  await db.pool.query(`select relay.prune('30 minutes', 1000)`);
  await insertOrders(relay, ['after']);
  // The link resets: the held reply is lost, and the relay reads the rest of the commit again.
  proxy.dropAll();
  proxy.releaseReplies();

  const next = nextFrame(admin, 'the frame after big-1000').then(
    (frame) => `received ${String(dataOf(frame).id)} next: big-1001 to big-1500 silently missing`,
    () => 'nothing',
  );
  t.equal(await Promise.race([admin.closed().then(({ code }) => `closed with ${code}`), next]), 'closed with 1011', 'the live client is closed with 1011');
});

// The same, where retention went past that commit too: the stream says so once. It went on to the
// gap the deleted commits leave, settled it, and closed every connection again, the clients that
// had reconnected meanwhile included.
t.test('retention past a commit read in pages closes the clients once, not again at the gap it leaves', async (t) => {
  const { db, proxy, relay, admin } = await relayCutOffInsideACommit(t);
  // Retention deletes that commit and the one after it.
  await db.pool.query(`insert into orders (id, hospital_id, status) values ('gone', 'H1', 'placed')`);
  const { rows } = await db.pool.query<{ pos: string }>('select max(pos) as pos from relay.commits');
  await ageCommits(db.pool, 'pos >= $1 - 1', [rows[0]!.pos]);
  await db.pool.query(`select relay.prune('30 minutes', 1000)`);
  proxy.dropAll();
  proxy.releaseReplies();
  t.equal((await admin.closed()).code, 1011, 'the live client is closed with 1011');

  // A client that reconnects gets what is committed next, and the relay said it once.
  const again = await relay.connect(ADMIN);
  await subscribed(again, 'orders');
  await insertOrders(relay, ['after']);
  await nextFrame(again, 'the order written after', idIs('after'));
  const said = relay.logLines.filter((line) => line.msg === 'retention deleted events this relay had not delivered yet; closed every connection');
  t.equal(said.length, 1, 'one report, one close of every connection');
});
