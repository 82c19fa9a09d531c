// Watching partitioned tables (migrations/relay/1766600000000_partitioned-watches.sql): a table of a
// partition tree is watched either on its own or through a table above it, never both, and
// relay.watch and relay.unwatch say so, naming the tables, in whichever order the calls come. Every
// partition of a watched table, at any depth, created or attached later too, publishes with its
// topic and columns.

import t, { type Test } from 'tap';
import { waitOrFinish } from '../helpers/backend-waits.ts';
import { createTestDatabase } from '../helpers/database.ts';
import { eventsBeforeSentinel, listenForEvents, type EventNotification, type Listener } from '../helpers/notifications.ts';

const db = await createTestDatabase(t);

/** SQLSTATE object_not_in_prerequisite_state: the refusals of a watch above or below. */
const REFUSED = '55000';

async function listen(t: Test): Promise<Listener<EventNotification>> {
  const listener = await listenForEvents(db.url);
  t.teardown(() => listener.close());
  return listener;
}

/**
 * `name` partitioned by list (k): `name`_1 (k = 1), and `name`_2 (k = 2), itself partitioned by
 * range (id), with `name`_2_low (id below 100).
 */
async function createTree(name: string): Promise<void> {
  await db.pool.query(`create table ${name} (id int, k int, v text) partition by list (k)`);
  await db.pool.query(`create table ${name}_1 partition of ${name} for values in (1)`);
  await db.pool.query(`create table ${name}_2 partition of ${name} for values in (2) partition by range (id)`);
  await db.pool.query(`create table ${name}_2_low partition of ${name}_2 for values from (minvalue) to (100)`);
}

t.test('a partitioned table whose partition is watched on its own is refused, naming the partition to unwatch', async (t) => {
  await createTree('pa');
  await db.pool.query(`select relay.watch('pa_1', 'pa_1_own')`);
  await t.rejects(
    db.pool.query(`select relay.watch('pa', 'pa')`),
    {
      code: REFUSED,
      message: `relay.watch: cannot watch public.pa: its partition public.pa_1 (topic 'pa_1_own') is watched on its own`,
      hint: `Call relay.unwatch('public.pa_1') first, in the same transaction as relay.watch('public.pa', ...)`,
    },
    'the partition watched on its own is named, with the call that unwatches it',
  );
  await db.pool.query(`select relay.watch('pa_2_low', 'pa_2_low_own', array['id', 'v'])`);
  await t.rejects(
    db.pool.query(`select relay.watch('pa', 'pa')`),
    {
      code: REFUSED,
      message: `its partitions public.pa_1 (topic 'pa_1_own'), public.pa_2_low (topic 'pa_2_low_own') are watched on their own`,
      hint: `Call relay.unwatch('public.pa_1'), relay.unwatch('public.pa_2_low') first`,
    },
    'every partition watched on its own is named, at any depth',
  );
  await t.rejects(
    db.pool.query(`select relay.watch('pa_2', 'pa_2')`),
    { code: REFUSED, message: `relay.watch: cannot watch public.pa_2: its partition public.pa_2_low (topic 'pa_2_low_own') is watched on its own` },
    'a partition that is partitioned itself too',
  );

  const listener = await listen(t);
  await db.pool.query(`insert into pa values (1, 1, 'own'), (2, 2, 'own')`);
  t.match(
    await listener.take(2),
    [
      { topic: 'pa_1_own', event: 'insert', data: { id: 1, k: 1, v: 'own' } },
      { topic: 'pa_2_low_own', event: 'insert', data: { id: 2, v: 'own' } },
    ],
    'the refusals left the partitions’ own watches as they were',
  );

  // As the hint says, in one transaction: a write of the partition waits for its commit and is then
  // published with the parent's topic; none goes unpublished in between.
  const admin = await db.pool.connect();
  const writer = await db.pool.connect();
  t.teardown(() => {
    admin.release();
    writer.release();
  });
  await admin.query('begin');
  await admin.query(`select relay.unwatch('pa_1'), relay.unwatch('pa_2_low')`);
  await admin.query(`select relay.watch('pa', 'pa')`);
  const { rows } = await writer.query<{ pid: number }>('select pg_backend_pid() as pid');
  const write = writer.query(`insert into pa_1 values (3, 1, 'during')`);
  t.equal(await waitOrFinish(db.pool, rows[0]!.pid, write, ['Lock']), 'Lock', 'a write of the partition waits for the transaction');
  await admin.query('commit');
  await write;
  t.match(
    await listener.next(),
    { topic: 'pa', event: 'insert', data: { id: 3, k: 1, v: 'during' } },
    'the write that waited is published with the parent’s topic',
  );

  await db.pool.query(`create table pa_3 partition of pa for values in (3)`);
  await db.pool.query(`create table pa_4 (id int, k int, v text)`);
  await db.pool.query(`alter table pa attach partition pa_4 for values in (4)`);
  await db.pool.query(`insert into pa values (4, 1, 'a'), (5, 2, 'b'), (6, 3, 'c'), (7, 4, 'd')`);
  await db.pool.query(`update pa set k = 2, v = 'moved' where id = 4`);
  t.match(
    await listener.take(6),
    [
      { topic: 'pa', event: 'insert', data: { id: 4, k: 1, v: 'a' } },
      { topic: 'pa', event: 'insert', data: { id: 5, k: 2, v: 'b' } },
      { topic: 'pa', event: 'insert', data: { id: 6, k: 3, v: 'c' } },
      { topic: 'pa', event: 'insert', data: { id: 7, k: 4, v: 'd' } },
      { topic: 'pa', event: 'delete', data: { id: 4, k: 1, v: 'a' } },
      { topic: 'pa', event: 'insert', data: { id: 4, k: 2, v: 'moved' } },
    ],
    'every partition publishes with the parent’s topic: present, nested, created and attached later; a row moved to another partition is a delete, then an insert',
  );
  t.same(await eventsBeforeSentinel(listener, db.pool), [], 'with no other topic besides');
});

t.test('a partition of a watched table is watched only through it: relay.watch and relay.unwatch of it are refused', async (t) => {
  await createTree('pb');
  await db.pool.query(`select relay.watch('pb', 'pb')`);
  await t.rejects(
    db.pool.query(`select relay.watch('pb_1', 'pb_1_own')`),
    {
      code: REFUSED,
      message: `relay.watch: cannot watch public.pb_1 on its own: it is a partition of public.pb, which is watched (topic 'pb')`,
      hint: `detach it first (alter table public.pb detach partition public.pb_1)`,
    },
    'relay.watch of a partition names the watched table and its topic',
  );
  await t.rejects(
    db.pool.query(`select relay.watch('pb_2_low', 'pb_2_low_own')`),
    {
      code: REFUSED,
      message: `relay.watch: cannot watch public.pb_2_low on its own: it is a partition of public.pb_2, a partition of public.pb, which is watched (topic 'pb')`,
      hint: `detach it first (alter table public.pb_2 detach partition public.pb_2_low)`,
    },
    'at any depth',
  );
  await t.rejects(
    db.pool.query(`select relay.unwatch('pb_1')`),
    {
      code: REFUSED,
      message: `relay.unwatch: cannot unwatch public.pb_1 on its own: it is a partition of public.pb, which is watched (topic 'pb')`,
      hint: `relay.unwatch('public.pb') stops every partition of public.pb; detaching public.pb_1 (alter table public.pb detach partition public.pb_1) stops it alone`,
    },
    'relay.unwatch of a partition too: it would go on publishing',
  );
  await t.rejects(
    db.pool.query(`select relay.unwatch('pb_2_low')`),
    {
      code: REFUSED,
      message: `relay.unwatch: cannot unwatch public.pb_2_low on its own: it is a partition of public.pb_2, a partition of public.pb, which is watched (topic 'pb')`,
    },
    'at any depth',
  );

  const listener = await listen(t);
  await db.pool.query(`insert into pb values (1, 1, 'a'), (2, 2, 'b')`);
  t.match(
    await listener.take(2),
    [
      { topic: 'pb', event: 'insert', data: { id: 1, k: 1 } },
      { topic: 'pb', event: 'insert', data: { id: 2, k: 2 } },
    ],
    'the refusals left the parent’s watch whole',
  );

  await db.pool.query(`alter table pb detach partition pb_1`);
  await db.pool.query(`insert into pb_1 values (3, 1, 'detached')`);
  t.same(await eventsBeforeSentinel(listener, db.pool), [], 'a detached partition publishes nothing');
  await db.pool.query(`select relay.watch('pb_1', 'pb_1_own')`);
  await t.rejects(
    db.pool.query(`alter table pb attach partition pb_1 for values in (1)`),
    { code: '42710', message: 'trigger "relay_convert" for relation "pb_1" already exists' },
    'PostgreSQL refuses to attach a table watched on its own to a watched table (README says so)',
  );
  await db.pool.query(`select relay.unwatch('pb_1')`);
  await db.pool.query(`alter table pb attach partition pb_1 for values in (1)`);

  await db.pool.query(`select relay.watch('pb', 'pb_again', array['id', 'v'])`);
  await db.pool.query(`insert into pb values (4, 1, 'c'), (5, 2, 'd')`);
  t.match(
    await listener.take(2),
    [
      { topic: 'pb_again', event: 'insert', data: { id: 4, v: 'c' } },
      { topic: 'pb_again', event: 'insert', data: { id: 5, v: 'd' } },
    ],
    'watched again with another topic and columns, every partition follows, the attached one too',
  );
  await db.pool.query(`update pb set k = 2 where id = 4`);
  t.same(
    (await listener.take(2)).map(({ topic, event, data }) => ({ topic, event, data })),
    [
      { topic: 'pb_again', event: 'delete', data: { id: 4, v: 'c' } },
      { topic: 'pb_again', event: 'insert', data: { id: 4, v: 'c' } },
    ],
    'a row moved to another partition is a delete and an insert even when no watched column changed',
  );
  await db.pool.query(`select relay.unwatch('pb')`);
  await db.pool.query(`insert into pb values (6, 1, 'e'), (7, 2, 'f')`);
  t.same(await eventsBeforeSentinel(listener, db.pool), [], 'unwatched, no partition publishes');
  await db.pool.query(`select relay.watch('pb_2_low', 'pb_2_low_own')`);
  await db.pool.query(`insert into pb values (8, 2, 'g')`);
  t.match(await listener.next(), { topic: 'pb_2_low_own', data: { id: 8 } }, 'and each may be watched on its own');
});
