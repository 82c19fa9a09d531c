// Upgrading a database whose tables were watched before rows were converted with the writer's
// rights (migrations/relay/1766100000000_rows-converted-by-their-writer.sql): each watched table,
// partitioned ones included, gets its converting trigger and keeps publishing; and going back
// down leaves them publishing as before.

import t from 'tap';
import pg from 'pg';
import { createUnmigratedDatabase } from '../helpers/unmigrated-database.ts';
import { eventsBeforeSentinel, listenForEvents } from '../helpers/notifications.ts';

const CONVERTED_BY_WRITER = 1766100000000;

// A database of its own, not a clone of the template: it starts at the migrations before this one.
const { url, pool, migrate } = await createUnmigratedDatabase();


async function triggers(): Promise<string[]> {
  const { rows } = await pool.query<{ name: string }>(
    `select tgrelid::regclass::text || ':' || tgname as name
       from pg_trigger where tgname like 'relay%' and tgrelid::regclass::text like 'up_%' order by 1`,
  );
  return rows.map((row) => row.name);
}

t.test('tables watched before the upgrade get their converting trigger and keep publishing', async (t) => {
  await migrate('up', CONVERTED_BY_WRITER - 1);
  await pool.query(`create table up_plain (id int primary key, v text)`);
  await pool.query(`create table up_parted (id int, k int, v text) partition by list (k)`);
  await pool.query(`create table up_parted_1 partition of up_parted for values in (1)`);
  await pool.query(`select relay.watch('up_plain', 'up_plain'), relay.watch('up_parted', 'up_parted')`);
  t.same(await triggers(), ['up_parted:relay_watch', 'up_parted_1:relay_watch', 'up_plain:relay_watch'], 'watched the old way');

  await migrate('up', CONVERTED_BY_WRITER);
  t.same(
    await triggers(),
    [
      'up_parted:relay_convert',
      'up_parted:relay_watch',
      'up_parted_1:relay_convert',
      'up_parted_1:relay_watch',
      'up_plain:relay_convert',
      'up_plain:relay_watch',
    ],
    'each watched table converts its rows first, the partition through its parent',
  );
  const listener = await listenForEvents(url);
  t.teardown(() => listener.close());
  await pool.query(`insert into up_plain values (1, 'a')`);
  await pool.query(`update up_plain set v = 'b'`);
  await pool.query(`insert into up_parted values (1, 1, 'p')`);
  await pool.query(`delete from up_parted`);
  t.match(await listener.take(4), [
    { topic: 'up_plain', event: 'insert', data: { id: 1, v: 'a' } },
    { topic: 'up_plain', event: 'update', data: { id: 1, v: 'b' }, old: { v: 'a' }, changed: ['v'] },
    { topic: 'up_parted', event: 'insert', data: { id: 1, k: 1, v: 'p' } },
    { topic: 'up_parted', event: 'delete', data: { id: 1, k: 1, v: 'p' } },
  ]);

  await migrate('down', CONVERTED_BY_WRITER);
  t.same(await triggers(), ['up_parted:relay_watch', 'up_parted_1:relay_watch', 'up_plain:relay_watch'], 'down: as before');
  await pool.query(`update up_plain set v = 'c'`);
  t.match(await listener.next(), { topic: 'up_plain', event: 'update', data: { v: 'c' }, old: { v: 'b' } });
  t.same(await eventsBeforeSentinel(listener, pool), [], 'one event per row');
});
