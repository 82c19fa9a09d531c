// Upgrading a database whose tables were watched before events left out virtual generated columns
// (migrations/relay/1766700000000_virtual-columns-left-out.sql): a watched table with one stops
// publishing it as null, with or without a column list, partitioned ones included; going back down
// publishes it as before. PostgreSQL 18 and later (virtual generated columns).

import t from 'tap';
import pg from 'pg';
import { createUnmigratedDatabase } from '../helpers/unmigrated-database.ts';
import { readLog } from '../helpers/event-log.ts';

const VIRTUAL_COLUMNS_LEFT_OUT = 1766700000000;

// A database of its own, not a clone of the template: it starts at the migrations before this one.
const { pool, migrate } = await createUnmigratedDatabase();

const { rows: versionRows } = await pool.query<{ version: number }>(`select current_setting('server_version_num')::int as version`);
const hasVirtualColumns = versionRows[0]!.version >= 180000;


/** The `data` of the last event of `topic`. */
async function lastData(topic: string): Promise<Record<string, unknown> | undefined> {
  return (await readLog(pool, topic)).at(-1)?.data;
}

t.test('tables watched before the upgrade stop publishing their virtual generated columns as null', { skip: !hasVirtualColumns && 'virtual generated columns need PostgreSQL 18' }, async (t) => {
  await migrate('up', VIRTUAL_COLUMNS_LEFT_OUT - 1);
  await pool.query(`
    create table up_totals (id int primary key, price int, qty int, total int generated always as (price * qty) virtual);
    create table up_listed (id int primary key, price int, total int generated always as (price * 2) virtual);
    create table up_parts (id int, k int, twice int generated always as (id * 2) virtual) partition by list (k);
    create table up_parts_1 partition of up_parts for values in (1);
    create table up_plain (id int primary key, v text);
    select relay.watch('up_totals', 'up_totals'), relay.watch('up_listed', 'up_listed', '{id,total}'),
           relay.watch('up_parts', 'up_parts'), relay.watch('up_plain', 'up_plain');`);
  await pool.query(`insert into up_totals values (1, 2, 3)`);
  t.same(await lastData('up_totals'), { id: 1, price: 2, qty: 3, total: null }, 'before: null where the table reads 6');

  await migrate('up', VIRTUAL_COLUMNS_LEFT_OUT);
  await pool.query(`
    update up_totals set qty = 4;
    insert into up_listed values (1, 5);
    insert into up_parts values (1, 1);
    insert into up_plain values (1, 'a');`);
  const { event, data, old, changed } = (await readLog(pool, 'up_totals')).at(-1)!;
  t.same({ event, data, old, changed }, { event: 'update', data: { id: 1, price: 2, qty: 4 }, old: { qty: 3 }, changed: ['qty'] }, 'after: left out');
  t.same(await lastData('up_listed'), { id: 1 }, 'a column list that named one loses it');
  t.same(await lastData('up_parts'), { id: 1, k: 1 }, 'a partitioned table through its parent');
  t.same(await lastData('up_plain'), { id: 1, v: 'a' }, 'a table without one as before');
  const { rows } = await pool.query<{ table: string; args: number }>(
    `select tgrelid::regclass::text as table, tgnargs as args from pg_trigger where tgname = 'relay_watch' order by 1`,
  );
  t.same(rows, [
    { table: 'up_listed', args: 3 },
    { table: 'up_parts', args: 3 },
    { table: 'up_parts_1', args: 3 },
    { table: 'up_plain', args: 2 },
    { table: 'up_totals', args: 3 },
  ], 'only tables with virtual generated columns got a new trigger');

  await migrate('down', VIRTUAL_COLUMNS_LEFT_OUT);
  await pool.query(`update up_totals set qty = 5`);
  t.same(await lastData('up_totals'), { id: 1, price: 2, qty: 5, total: null }, 'down: as before');
});
