// Events are delivered if and only if their transaction commits, after it commits, stamped with a
// position that follows commit order (contract section 2; docs/cursors.md).

import { randomBytes } from 'node:crypto';
import t, { type Test } from 'tap';
import pg from 'pg';
import { finishesWithoutLockWait, waitOrFinish } from '../helpers/backend-waits.ts';
import { createTestDatabase } from '../helpers/database.ts';
import { eventsBeforeSentinel, listenForEvents, type EventNotification, type Listener } from '../helpers/notifications.ts';
import { twoPhaseCommitOff } from '../helpers/two-phase.ts';

const db = await createTestDatabase(t);

await db.pool.query(`create table items (id int primary key, label text)`);
await db.pool.query(`select relay.watch('items', 'items')`);
await db.pool.query(`create table notes (id int primary key, body text)`);
await db.pool.query(`select relay.watch('notes', 'notes')`);

let nextId = 0;
/** A fresh primary key, so that tests never collide on the shared tables. */
const newId = (): number => ++nextId;

async function listen(t: Test): Promise<Listener<EventNotification>> {
  const listener = await listenForEvents(db.url);
  t.teardown(() => listener.close());
  return listener;
}

/** A connection of its own, for a transaction that stays open across awaits. */
async function connect(t: Test): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  t.teardown(() => client.end());
  return client;
}

const ids = (events: EventNotification[]): unknown[] => events.map((e) => e.data?.['id']);

t.test('the sentinel technique sees what was notified before it', async (t) => {
  const listener = await listen(t);
  await db.pool.query(`select relay.publish('check', 'before-sentinel', '{}')`);
  const before = await eventsBeforeSentinel(listener, db.pool);
  t.same(
    before.map((e) => e.event),
    ['before-sentinel'],
  );
});

t.test('a rolled-back transaction publishes nothing and leaves nothing in the log', async (t) => {
  const listener = await listen(t);
  const writer = await connect(t);
  const id = newId();
  await writer.query('begin');
  await writer.query(`insert into items values ($1, 'lost')`, [id]);
  await writer.query(`select relay.publish('items', 'custom', '{"lost": true}')`);
  const { rows } = await writer.query<{ xid: string }>(`select pg_current_xact_id()::text as xid`);
  await writer.query('rollback');
  t.same(await eventsBeforeSentinel(listener, db.pool), [], 'nothing notified');
  const log = await db.pool.query(`select 1 from relay.events where xid = $1::xid8`, [rows[0]?.xid]);
  t.equal(log.rows.length, 0, 'no event of it in relay.events');
});

t.test('events appear only after COMMIT', async (t) => {
  const listener = await listen(t);
  const writer = await connect(t);
  const id = newId();
  await writer.query('begin');
  await writer.query(`insert into items values ($1, 'pending')`, [id]);
  await writer.query(`select relay.publish('items', 'custom', '{}')`);
  t.same(await eventsBeforeSentinel(listener, db.pool), [], 'nothing notified while the writer has not committed');
  await writer.query('commit');
  const [inserted, custom] = await listener.take(2);
  t.match(inserted, { topic: 'items', event: 'insert', data: { id } });
  t.match(custom, { topic: 'items', event: 'custom' });
});

t.test('a rolled-back savepoint’s events are dropped, the rest of the transaction’s are delivered', async (t) => {
  const listener = await listen(t);
  const writer = await connect(t);
  const [a, b, c] = [newId(), newId(), newId()];
  await writer.query('begin');
  await writer.query(`insert into items values ($1, 'kept')`, [a]);
  await writer.query('savepoint s');
  await writer.query(`insert into items values ($1, 'dropped')`, [b]);
  await writer.query(`select relay.publish('items', 'dropped', '{}')`);
  await writer.query('rollback to savepoint s');
  await writer.query(`insert into items values ($1, 'kept')`, [c]);
  await writer.query('commit');
  const events = await eventsBeforeSentinel(listener, db.pool);
  t.same(ids(events), [a, c]);
  t.equal(events[0]?.pos, events[1]?.pos);
});

t.test('the first event of a transaction may be in a rolled-back savepoint', async (t) => {
  // The first event is the one that arranges the commit stamp: rolling it back must not lose the
  // events that follow.
  const listener = await listen(t);
  const writer = await connect(t);
  const [a, b, c] = [newId(), newId(), newId()];
  await writer.query('begin');
  await writer.query('savepoint s');
  await writer.query(`insert into items values ($1, 'dropped')`, [a]);
  await writer.query('rollback to savepoint s');
  await writer.query(`insert into items values ($1, 'kept')`, [b]);
  await writer.query('savepoint t');
  await writer.query(`insert into items values ($1, 'kept')`, [c]);
  await writer.query('release savepoint t');
  await writer.query('commit');
  t.same(ids(await eventsBeforeSentinel(listener, db.pool)), [b, c]);
});

t.test('nested savepoints: only the rolled-back level is dropped', async (t) => {
  const listener = await listen(t);
  const writer = await connect(t);
  const [a, b, c] = [newId(), newId(), newId()];
  await writer.query('begin');
  await writer.query('savepoint outer_level');
  await writer.query(`insert into items values ($1, 'kept')`, [a]);
  await writer.query('savepoint inner_level');
  await writer.query(`insert into items values ($1, 'dropped')`, [b]);
  await writer.query('rollback to savepoint inner_level');
  await writer.query('release savepoint outer_level');
  await writer.query(`insert into notes values ($1, 'kept')`, [c]);
  await writer.query('commit');
  t.same(ids(await eventsBeforeSentinel(listener, db.pool)), [a, c]);
});

t.test('a PL/pgSQL exception block rolls back its own events', async (t) => {
  const listener = await listen(t);
  const [a, b] = [newId(), newId()];
  await db.pool.query(`
    do $$
    begin
      begin
        insert into items values (${a}, 'dropped');
        perform relay.publish('items', 'dropped', '{}');
        raise exception 'undo';
      exception when raise_exception then
        null;
      end;
      insert into items values (${b}, 'kept');
    end $$`);
  t.same(ids(await eventsBeforeSentinel(listener, db.pool)), [b]);
});

t.test('events of one transaction share a position and ascend in id', async (t) => {
  const listener = await listen(t);
  const writer = await connect(t);
  const [a, b, c] = [newId(), newId(), newId()];
  await writer.query('begin');
  await writer.query(`insert into items values ($1, 'x')`, [a]);
  await writer.query(`insert into notes values ($1, 'x')`, [b]);
  await writer.query(`select relay.publish('other', 'custom', '{}')`);
  await writer.query(`update items set label = 'y' where id = $1`, [a]);
  await writer.query(`delete from notes where id = $1`, [b]);
  await writer.query(`insert into items values ($1, 'x')`, [c]);
  await writer.query('commit');
  const events = await eventsBeforeSentinel(listener, db.pool);
  t.same(
    events.map((e) => `${e.topic}:${e.event}`),
    ['items:insert', 'notes:insert', 'other:custom', 'items:update', 'notes:delete', 'items:insert'],
    'in statement order, each once',
  );
  t.equal(new Set(events.map((e) => e.pos)).size, 1, 'one position');
  t.equal(new Set(events.map((e) => e.ts)).size, 1, 'one commit time');
  t.ok(
    events.every((e, i) => i === 0 || e.id > (events[i - 1]?.id ?? Infinity)),
    `ids ascend: ${events.map((e) => e.id).join(', ')}`,
  );
});

t.test('positions follow COMMIT order, not statement order', async (t) => {
  const listener = await listen(t);
  const first = await connect(t);
  const second = await connect(t);
  const [a, b] = [newId(), newId()];
  await first.query('begin');
  await first.query(`insert into items values ($1, 'written first, committed last')`, [a]);
  await second.query('begin');
  await second.query(`insert into items values ($1, 'written last, committed first')`, [b]);
  await withDeadline(second.query('commit'), 'the second transaction’s COMMIT waited for the first one');
  const committedFirst = await listener.next();
  t.match(committedFirst, { data: { id: b } }, 'the first commit is notified first');
  await first.query('commit');
  const committedLast = await listener.next();
  t.match(committedLast, { data: { id: a } });
  t.ok(committedLast.id < committedFirst.id, 'ids follow statement order');
  t.ok(
    committedFirst.pos < committedLast.pos,
    `positions follow commit order: ${committedFirst.pos} < ${committedLast.pos}`,
  );
});

t.test('concurrent committers: positions ascend in notification order, transactions never interleave', async (t) => {
  const writers = 8;
  const transactionsEach = 10;
  const listener = await listen(t);
  const clients = await Promise.all(Array.from({ length: writers }, () => connect(t)));
  await Promise.all(
    clients.map(async (client) => {
      for (let i = 0; i < transactionsEach; i++) {
        const [a, b] = [newId(), newId()];
        await client.query('begin');
        await client.query(`insert into items values ($1, 'a')`, [a]);
        await client.query(`insert into notes values ($1, 'b')`, [b]);
        await client.query('commit');
      }
    }),
  );
  const events = await eventsBeforeSentinel(listener, db.pool);
  t.equal(events.length, writers * transactionsEach * 2, 'every event once');
  const positions = events.map((e) => e.pos);
  const outOfOrder = positions.findIndex((pos, i) => i > 0 && pos < (positions[i - 1] ?? 0));
  t.equal(outOfOrder, -1, 'positions never go back in notification (= commit) order');
  const pairs = events.filter((_, i) => i % 2 === 0).map((e, i) => [e, events[2 * i + 1]] as const);
  t.ok(
    pairs.every(([x, y]) => x.topic === 'items' && y?.topic === 'notes' && x.pos === y.pos),
    'the two events of each transaction arrive together with one position',
  );
  t.equal(new Set(positions).size, writers * transactionsEach, 'one position per transaction');
});

t.test('SET CONSTRAINTS ALL IMMEDIATE mid-transaction: every event once, one position', async (t) => {
  const listener = await listen(t);
  const writer = await connect(t);
  const [a, b, c] = [newId(), newId(), newId()];
  await writer.query('begin');
  await writer.query(`insert into items values ($1, 'before')`, [a]);
  // From here on the writer holds the commit lock until it ends: the test commits nothing else
  // meanwhile (a sentinel would wait for it).
  await writer.query('set constraints all immediate');
  await writer.query(`insert into items values ($1, 'after')`, [b]);
  await writer.query('set constraints all deferred');
  await writer.query(`insert into items values ($1, 'later')`, [c]);
  const { rows } = await writer.query<{ xid: string }>(`select pg_current_xact_id()::text as xid`);
  await writer.query('commit');
  const events = await eventsBeforeSentinel(listener, db.pool);
  t.same(ids(events), [a, b, c]);
  t.equal(new Set(events.map((e) => e.pos)).size, 1, 'one position');
  const commits = await db.pool.query(`select pos from relay.commits where xid = $1::xid8`, [rows[0]?.xid]);
  t.same(
    commits.rows.map((r: { pos: string }) => Number(r.pos)),
    [events[0]?.pos],
    'relay.commits records the transaction once',
  );
});

t.test('a commit stamp taken early and then rolled back to a savepoint is taken again', async (t) => {
  const listener = await listen(t);
  const writer = await connect(t);
  const [a, b] = [newId(), newId()];
  await writer.query('begin');
  await writer.query(`insert into items values ($1, 'kept')`, [a]);
  await writer.query('savepoint s');
  await writer.query('set constraints all immediate');
  await writer.query(`insert into items values ($1, 'dropped')`, [b]);
  await writer.query('rollback to savepoint s');
  await writer.query('commit');
  const events = await eventsBeforeSentinel(listener, db.pool);
  t.same(ids(events), [a]);
  const commits = await db.pool.query(`select pos from relay.commits c join relay.events e using (xid) where e.id = $1`, [
    events[0]?.id,
  ]);
  t.same(
    commits.rows.map((r: { pos: string }) => Number(r.pos)),
    [events[0]?.pos],
  );
});

t.test('a transaction rolled back after its commit stamp publishes nothing', async (t) => {
  const listener = await listen(t);
  const writer = await connect(t);
  await writer.query('begin');
  await writer.query(`insert into items values ($1, 'lost')`, [newId()]);
  await writer.query('set constraints all immediate');
  const { rows } = await writer.query<{ xid: string }>(`select pg_current_xact_id()::text as xid`);
  await writer.query('rollback');
  t.same(await eventsBeforeSentinel(listener, db.pool), []);
  const commits = await db.pool.query(`select 1 from relay.commits where xid = $1::xid8`, [rows[0]?.xid]);
  t.equal(commits.rows.length, 0);
});

t.test('a deferred trigger that publishes at commit time is delivered too', async (t) => {
  // Runs after the relay's own commit trigger when that fired first: the event must still go out.
  await db.pool.query(`
    create function publish_late() returns trigger language plpgsql as $$
    begin
      perform relay.publish('late', 'at_commit', jsonb_build_object('id', NEW.id));
      return null;
    end $$;
    create table late_source (id int primary key);
    create constraint trigger zz_publish_late after insert on late_source
      deferrable initially deferred for each row execute function publish_late();`);
  const listener = await listen(t);
  const writer = await connect(t);
  const [a, b] = [newId(), newId()];
  await writer.query('begin');
  await writer.query(`select relay.publish('late', 'early', '{}')`);
  await writer.query(`insert into late_source values ($1)`, [a]);
  await writer.query('commit');
  await writer.query(`insert into late_source values ($1)`, [b]);
  const events = await eventsBeforeSentinel(listener, db.pool);
  t.same(
    events.map((e) => [e.event, e.data?.['id']]),
    [
      ['early', undefined],
      ['at_commit', a],
      ['at_commit', b],
    ],
  );
  t.equal(events[0]?.pos, events[1]?.pos, 'one position for the transaction');
});

/** Each event's `label`, for the events of row `id` of items, in the order the listener read them. */
const labelsOf = (events: EventNotification[], id: number): unknown[] =>
  events.filter((e) => e.topic === 'items' && e.data?.['id'] === id).map((e) => e.data?.['label']);

async function backendPid(client: pg.ClientBase): Promise<number> {
  const { rows } = await client.query<{ pid: number }>('select pg_backend_pid() as pid');
  return rows[0]!.pid;
}

t.test('events appended at commit after the stamp keep its position when no other was drawn since', async (t) => {
  // A position left behind holds back delivery of the later ones until its transaction has ended:
  // a transaction that draws again only when it must leaves no gap for a relay to wait out.
  const listener = await listen(t);
  const writer = await connect(t);
  const { rows } = await db.pool.query<{ drawn: string }>(`select pg_sequence_last_value('relay.commit_position')::text as drawn`);
  await writer.query('begin');
  await writer.query(`select relay.publish('late', 'early', '{}')`);
  await writer.query(`insert into late_source values ($1)`, [newId()]);
  await writer.query('commit');
  const events = await eventsBeforeSentinel(listener, db.pool);
  t.same(events.map((e) => e.event), ['early', 'at_commit']);
  t.equal(events[1]?.pos, Number(rows[0]!.drawn) + 1, 'the position drawn first, the next one after the last commit');
});

t.test('a write after the position was drawn early moves the transaction after the commits it followed', async (t) => {
  // SET CONSTRAINTS ALL IMMEDIATE draws the position mid-transaction. A write made after it, on a
  // row that another transaction changed and committed meanwhile, must come after that change:
  // with the early position, subscribers ended on the other transaction's value, not the table's.
  const listener = await listen(t);
  const early = await connect(t);
  const [row, other] = [newId(), newId()];
  await db.pool.query(`insert into items values ($1, 'start')`, [row]);
  await early.query('begin');
  await early.query(`insert into items values ($1, 'drawn early')`, [other]);
  await early.query('set constraints all immediate');
  await db.pool.query(`update items set label = 'committed in between' where id = $1`, [row]);
  await early.query(`update items set label = 'written last' where id = $1`, [row]);
  await early.query('commit');
  const events = await eventsBeforeSentinel(listener, db.pool);
  const { rows } = await db.pool.query<{ label: string }>(`select label from items where id = $1`, [row]);
  t.equal(rows[0]?.label, 'written last');
  t.same(labelsOf(events, row), ['start', 'committed in between', 'written last'], 'the last event of the row is its value in the table');
  t.same(labelsOf(events, other), ['drawn early'], 'the earlier event of that transaction comes with it');
  const position = (label: string): number | undefined => events.find((e) => e.data?.['label'] === label)?.pos;
  t.ok(
    position('committed in between')! < position('written last')!,
    `the write made last has the higher position: ${position('committed in between')} < ${position('written last')}`,
  );
});

t.test('a deferred trigger that writes a watched row at commit, after waiting for its lock, is ordered after its holder', async (t) => {
  // The commit stamp fires first (queued by the transaction's first event), then the application's
  // deferred trigger, whose update waits for another writer's row lock. That writer commits first,
  // so its change must come first.
  await db.pool.query(`
    create table audit_requests (item_id int);
    create function audit_item() returns trigger language plpgsql as $$
    begin
      update items set label = 'audited' where id = NEW.item_id;
      return null;
    end $$;
    create constraint trigger audit_item after insert on audit_requests
      deferrable initially deferred for each row execute function audit_item();`);
  const listener = await listen(t);
  const auditor = await connect(t);
  const canceller = await connect(t);
  const [shipped, audited] = [newId(), newId()];
  await db.pool.query(`insert into items values ($1, 'new'), ($2, 'new')`, [shipped, audited]);
  await auditor.query('begin');
  await auditor.query(`update items set label = 'shipped' where id = $1`, [shipped]);
  await auditor.query(`insert into audit_requests values ($1)`, [audited]);
  const auditorPid = await backendPid(auditor);
  await canceller.query('begin');
  await canceller.query(`update items set label = 'cancelled' where id = $1`, [audited]);
  const auditorCommit = auditor.query('commit');
  const outcome = await waitOrFinish(db.pool, auditorPid, auditorCommit, ['Lock']);
  t.equal(outcome, 'Lock', 'the audit at commit waits for the row lock of the cancelling transaction');
  await canceller.query('commit');
  await auditorCommit;
  const events = await eventsBeforeSentinel(listener, db.pool);
  const { rows } = await db.pool.query<{ label: string }>(`select label from items where id = $1`, [audited]);
  t.equal(rows[0]?.label, 'audited');
  t.same(labelsOf(events, audited), ['new', 'cancelled', 'audited'], 'subscribers end on the value the table holds');
  t.same(labelsOf(events, shipped), ['new', 'shipped']);
});

t.test('the position is drawn only under the lock that relay.wait_for_committers waits for', async (t) => {
  // wait_for_committers waits for every transaction that holds ROW EXCLUSIVE on relay.commits:
  // a committer must hold it before it draws, also when its session runs the stamp's cached plan.
  const writer = await connect(t);
  const locker = await connect(t);
  const drawn = async (): Promise<string> => {
    const { rows } = await db.pool.query<{ drawn: string }>(`select pg_sequence_last_value('relay.commit_position')::text as drawn`);
    return rows[0]!.drawn;
  };
  const pid = await backendPid(writer);
  for (const round of ['first', 'second']) {
    await locker.query('begin');
    await locker.query('lock table relay.commits in access exclusive mode');
    const before = await drawn();
    const commit = writer.query(`insert into items values ($1, $2)`, [newId(), round]);
    t.equal(await waitOrFinish(db.pool, pid, commit, ['Lock']), 'Lock', `${round} commit: the stamp waits for relay.commits`);
    t.equal(await drawn(), before, `${round} commit: no position drawn while it waits`);
    await locker.query('rollback');
    await commit;
    t.equal(BigInt(await drawn()), BigInt(before) + 1n, `${round} commit: drawn once it holds the lock`);
  }
});

const twoPhaseOff = await twoPhaseCommitOff(db.pool);

t.test('a prepared transaction that drew a position does not hold back its session, and is waited for until it ends', { skip: twoPhaseOff }, async (t) => {
  // A database of its own: PREPARE TRANSACTION refuses a transaction that notifies, which its
  // commit stamp does when a reader has armed the wake-up bell (the other tests' listeners do).
  const own = await createTestDatabase(t);
  const connectOwn = async (): Promise<pg.Client> => {
    const client = new pg.Client({ connectionString: own.url });
    await client.connect();
    t.teardown(() => client.end());
    return client;
  };
  const writer = await connectOwn();
  const writerPid = await backendPid(writer);
  const gid = `relay_test_${randomBytes(6).toString('hex')}`;
  let prepared = false;
  const endPrepared = async (how: 'commit' | 'rollback'): Promise<void> => {
    await own.pool.query(`${how} prepared '${gid}'`);
    prepared = false;
  };
  t.teardown(() => (prepared ? endPrepared('rollback') : undefined));
  await writer.query('begin');
  await writer.query(`insert into orders (id, hospital_id) values ('prepared', 'H1')`);
  await writer.query(`prepare transaction '${gid}'`);
  prepared = true;
  const next = writer.query(`insert into orders (id, hospital_id) values ('next', 'H1')`);
  t.ok(
    await finishesWithoutLockWait(own.pool, writerPid, next, () => endPrepared('rollback')),
    'the session commits its next events at once (it waited for COMMIT PREPARED, and statement_timeout does not apply at commit)',
  );
  if (!prepared) return;

  const waiter = await connectOwn();
  const waiterPid = await backendPid(waiter);
  const wait = waiter.query('select relay.wait_for_committers()');
  t.equal(
    await waitOrFinish(own.pool, waiterPid, wait, ['Timeout', 'Lock']),
    'Timeout',
    'relay.wait_for_committers waits for the prepared transaction (its position may still commit)',
  );
  await endPrepared('commit');
  await wait;
  const { rows } = await own.pool.query<{ id: string }>(
    `select e.data->>'id' as id from relay.commits c join relay.events e using (xid) order by c.pos, e.id`,
  );
  t.same(rows.map((row) => row.id), ['prepared', 'next'], 'both committed, in the order they drew their positions');
});

/** Rejects with `message` if `promise` has not settled within 10 s (a guard against a lock wait). */
function withDeadline<T>(promise: Promise<T>, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), 10_000);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}
