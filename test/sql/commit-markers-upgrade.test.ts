// Upgrading a log made before commit markers could not be forged
// (migrations/relay/1766800000000_commit-markers-writers-cannot-forge.sql): a transaction that a
// forged relay.stamped_pos had recorded twice in relay.commits keeps its first position, so its
// events are read once; going back down removes the constraint and the sequence.

import t from 'tap';
import { createUnmigratedDatabase } from '../helpers/unmigrated-database.ts';
import { readLog } from '../helpers/event-log.ts';

const MARKERS_CANNOT_BE_FORGED = 1766800000000;

// A database of its own, not a clone of the template: it starts at the migrations before this one.
const { pool, migrate } = await createUnmigratedDatabase();

t.test('a transaction recorded twice before the upgrade keeps its first position', async (t) => {
  await migrate('up', MARKERS_CANNOT_BE_FORGED - 1);
  await pool.query(`create table up_twice (id int primary key); select relay.watch('up_twice', 'up_twice')`);
  const client = await pool.connect();
  try {
    await client.query('begin');
    await client.query('insert into up_twice values (1)');
    await client.query('set constraints all immediate');
    await client.query('set constraints all deferred');
    await client.query(`select set_config('relay.stamped_pos', '', true)`);
    await client.query('insert into up_twice values (2)');
    await client.query('commit');
  } finally {
    client.release();
  }
  const positionsOf = async (): Promise<number[]> => (await readLog(pool, 'up_twice')).map((e) => e.pos);
  const before = await positionsOf();
  t.equal(before.length, 4, 'before: each event read twice');

  await migrate('up', MARKERS_CANNOT_BE_FORGED);
  t.same(await positionsOf(), before.slice(0, 2), 'after: once, at the first position');
  const { rows } = await pool.query<{ constraint: string }>(
    `select conname as constraint from pg_constraint where conrelid = 'relay.commits'::regclass and contype = 'u'`,
  );
  t.same(rows, [{ constraint: 'commits_one_per_transaction' }], 'one row per transaction from now on');

  await migrate('down', MARKERS_CANNOT_BE_FORGED);
  const { rows: left } = await pool.query(
    `select 1 from pg_constraint where conname = 'commits_one_per_transaction'
      union all select 1 from pg_class where relname = 'commit_stamp_queued_by'`,
  );
  t.same(left, [], 'down: the constraint and the sequence are gone');
  await pool.query('insert into up_twice values (3)');
  t.equal((await readLog(pool, 'up_twice')).length, 3, 'down: writes are published as before');
});
