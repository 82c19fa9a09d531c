// What the write statements of real applications publish (contract section 2): upserts, MERGE, COPY,
// rows that defaults, identities, generated columns and the application's own triggers complete,
// writers with column privileges or under row level security, and statements that write several
// rows or tables at once. Each test watches tables of its own and reads the committed log back
// (relay.events in commit order), the oracle of what every subscriber receives; `data` is compared
// with the table's own row as to_jsonb writes it, so an event never says other than the table.

import { randomBytes } from 'node:crypto';
import t from 'tap';
import pg from 'pg';
import { createTestDatabase } from '../helpers/database.ts';
import { connectAs } from '../helpers/test-role.ts';
import { readLog } from '../helpers/event-log.ts';

const db = await createTestDatabase(t);

const { rows: versionRows } = await db.pool.query<{ version: number }>(`select current_setting('server_version_num')::int as version`);
const serverVersion = versionRows[0]!.version;

/** An event as a subscriber with every column sees it, without its cursor. */
interface Seen {
  readonly event: string;
  readonly data: Record<string, unknown>;
  readonly old?: Record<string, unknown>;
  readonly changed?: string[];
}

/** Every committed event of `topic`, in commit order, and the commit position of each. */
async function eventsOf(topic: string): Promise<{ seen: Seen[]; positions: number[] }> {
  const log = await readLog(db.pool, topic);
  return {
    seen: log.map((e) => ({
      event: e.event,
      data: e.data,
      ...(e.old ? { old: e.old } : {}),
      ...(e.changed ? { changed: e.changed } : {}),
    })),
    positions: log.map((e) => e.pos),
  };
}

/** Runs `sql` and returns the events of `topic` it published (the log's new ones). */
async function published(topic: string, sql: string, values?: unknown[]): Promise<{ seen: Seen[]; positions: number[] }> {
  const before = (await readLog(db.pool, topic)).length;
  await db.pool.query(sql, values);
  const after = await eventsOf(topic);
  return { seen: after.seen.slice(before), positions: after.positions.slice(before) };
}

/** The rows of `table` as to_jsonb writes them, by `id`. */
async function rowsOf(table: string): Promise<Record<string, unknown>[]> {
  const { rows } = await db.pool.query<{ row: Record<string, unknown> }>(`select to_jsonb(t) as row from ${table} t order by id`);
  return rows.map((r) => r.row);
}

/**
 * The last event of each row of `topic` (by its `id`), and whether it says what the table holds:
 * the row exactly (compared as jsonb, every digit), or for a delete that the row is gone.
 */
async function lastEventsMatchTable(table: string, topic: string): Promise<{ id: unknown; event: string; matches: boolean }[]> {
  const { rows } = await db.pool.query<{ id: unknown; event: string; matches: boolean }>(
    `select distinct on (e.data->'id') e.data->'id' as id, e.event,
            case when e.event = 'delete' then t is null else coalesce(e.data = to_jsonb(t), false) end as matches
       from relay.events e join relay.commits c on c.xid = e.xid
       left join ${table} t on to_jsonb(t)->'id' = e.data->'id'
      where e.topic = $1
      order by e.data->'id', c.pos desc, e.id desc`,
    [topic],
  );
  return rows;
}

async function watch(table: string, topic = table, columns?: string[]): Promise<void> {
  await db.pool.query(`select relay.watch($1, $2, $3)`, [table, topic, columns ?? null]);
}

t.test('INSERT ... ON CONFLICT: an insert for a new row, an update for a conflicting one, nothing for DO NOTHING or a same-value update', async (t) => {
  await db.pool.query(`create table upserts (id int primary key, name text, qty int not null default 0)`);
  await watch('upserts');
  await db.pool.query(`insert into upserts (id, name) values (1, 'a')`);

  const both = await published(
    'upserts',
    `insert into upserts (id, name) values (1, 'b'), (2, 'c') on conflict (id) do update set name = excluded.name, qty = upserts.qty + 1`,
  );
  t.same(both.seen, [
    { event: 'update', data: { id: 1, name: 'b', qty: 1 }, old: { name: 'a', qty: 0 }, changed: ['name', 'qty'] },
    { event: 'insert', data: { id: 2, name: 'c', qty: 0 } },
  ], 'both branches of one statement, in its order');
  t.equal(new Set(both.positions).size, 1, 'one commit position');

  const sameValues = await published('upserts', `insert into upserts (id, name) values (1, 'b') on conflict (id) do update set name = excluded.name`);
  t.same(sameValues.seen, [], 'an update branch that changes nothing publishes nothing');
  const skipped = await published('upserts', `insert into upserts (id, name) values (2, 'x') on conflict (id) do update set name = excluded.name where upserts.qty > 100`);
  t.same(skipped.seen, [], 'an update branch whose WHERE is false publishes nothing');
  const nothing = await published('upserts', `insert into upserts (id, name) values (1, 'zz'), (3, 'd') on conflict do nothing`);
  t.same(nothing.seen, [{ event: 'insert', data: { id: 3, name: 'd', qty: 0 } }], 'DO NOTHING: only the row inserted');

  t.same(await lastEventsMatchTable('upserts', 'upserts'), [
    { id: 1, event: 'update', matches: true },
    { id: 2, event: 'insert', matches: true },
    { id: 3, event: 'insert', matches: true },
  ]);
});

t.test('MERGE with insert, update and delete actions: one event per row it changed, nothing for the rest', { skip: serverVersion < 150000 && 'MERGE needs PostgreSQL 15' }, async (t) => {
  await db.pool.query(`
    create table merged (id int primary key, name text, qty int not null default 0);
    create table merge_source (id int, name text, op text);
    insert into merged values (1, 'one', 1), (2, 'two', 2), (3, 'three', 3), (5, 'five', 5);
    insert into merge_source values (1, 'uno', null), (2, null, 'delete'), (3, 'three', null), (4, 'four', null);`);
  await watch('merged');

  const merge = await published('merged', `
    merge into merged m using merge_source s on m.id = s.id
     when matched and s.op = 'delete' then delete
     when matched then update set name = s.name
     when not matched then insert (id, name) values (s.id, s.name)`);
  const byId = [...merge.seen].sort((a, b) => Number(a.data['id']) - Number(b.data['id']));
  t.same(byId, [
    { event: 'update', data: { id: 1, name: 'uno', qty: 1 }, old: { name: 'one' }, changed: ['name'] },
    { event: 'delete', data: { id: 2, name: 'two', qty: 2 } },
    { event: 'insert', data: { id: 4, name: 'four', qty: 0 } },
  ], 'row 3 matched and was set to the value it had: nothing for it; row 5 was not in the source');
  t.equal(new Set(merge.positions).size, 1, 'one commit position');

  const idle = await published('merged', `
    merge into merged m using merge_source s on m.id = s.id
     when matched and s.id = 3 then do nothing
     when not matched then do nothing`);
  t.same(idle.seen, [], 'DO NOTHING actions publish nothing');
  t.same(await rowsOf('merged'), [
    { id: 1, name: 'uno', qty: 1 }, { id: 3, name: 'three', qty: 3 }, { id: 4, name: 'four', qty: 0 }, { id: 5, name: 'five', qty: 5 },
  ]);
});

/** A connection that can run COPY ... FROM STDIN with node-postgres alone. */
interface CopyConnection {
  sendCopyFromChunk(chunk: Buffer): void;
  endCopyFrom(): void;
}

/**
 * COPY ... FROM STDIN with node-postgres alone (no pg-copy-streams): its Query answers the server's
 * CopyInResponse by failing the copy; this one sends `data` and ends it.
 */
class CopyFromText extends pg.Query {
  readonly #data: string;
  constructor(sql: string, data: string, done: (error: Error | undefined) => void) {
    super(sql, undefined, (error) => done(error));
    this.#data = data;
  }
  handleCopyInResponse(connection: CopyConnection): void {
    connection.sendCopyFromChunk(Buffer.from(this.#data, 'utf8'));
    connection.endCopyFrom();
  }
}

async function copyFrom(sql: string, data: string): Promise<void> {
  const client = await db.pool.connect();
  try {
    await new Promise<void>((resolve, reject) => {
      client.query(new CopyFromText(sql, data, (error) => (error ? reject(error) : resolve())));
    });
  } finally {
    client.release();
  }
}

t.test('COPY FROM STDIN: one insert per row, as the table stores it, with defaults and identities filled', async (t) => {
  await db.pool.query(`
    create table copied (
      id int generated always as identity primary key, note text, qty int default 7,
      at date default '2024-05-05', twice int generated always as (coalesce(qty, 0) * 2) stored)`);
  await watch('copied');
  await copyFrom(`copy copied (note, qty) from stdin`, 'tab\\there\t1\n\\N\t\\N\nline\\nbreak\t3\n');
  const { seen, positions } = await eventsOf('copied');
  t.same(seen, [
    { event: 'insert', data: { id: 1, note: 'tab\there', qty: 1, at: '2024-05-05', twice: 2 } },
    { event: 'insert', data: { id: 2, note: null, qty: null, at: '2024-05-05', twice: 0 } },
    { event: 'insert', data: { id: 3, note: 'line\nbreak', qty: 3, at: '2024-05-05', twice: 6 } },
  ]);
  t.equal(new Set(positions).size, 1, 'one commit position');
  t.same(seen.map((e) => e.data), await rowsOf('copied'), 'the rows as the table holds them');
});

t.test('COPY of thousands of rows into a partitioned table: every row once, as stored', async (t) => {
  await db.pool.query(`
    create table copied_parts (id int, part int, label text) partition by list (part);
    create table copied_parts_0 partition of copied_parts for values in (0);
    create table copied_parts_1 partition of copied_parts for values in (1);`);
  await watch('copied_parts');
  const rows = 3000;
  const text = Array.from({ length: rows }, (_, i) => `${i + 1}\t${(i + 1) % 2}\trow ${i + 1}\n`).join('');
  await copyFrom(`copy copied_parts from stdin`, text);
  const { rows: check } = await db.pool.query<{ events: string; ids: string; matching: string; positions: string }>(
    `select count(*) as events, count(distinct e.data->'id') as ids, count(*) filter (where e.data = to_jsonb(p)) as matching,
            count(distinct c.pos) as positions
       from relay.events e join relay.commits c on c.xid = e.xid
       left join copied_parts p on p.id = (e.data->>'id')::int
      where e.topic = 'copied_parts'`,
  );
  t.same(check[0], { events: String(rows), ids: String(rows), matching: String(rows), positions: '1' });
});

t.test('identity, defaults and stored generated columns: events carry the values the table computed', async (t) => {
  await db.pool.query(`
    create table computed (
      id bigint generated by default as identity primary key,
      price numeric not null,
      qty int not null default 1,
      total numeric generated always as (price * qty) stored,
      status text not null default 'new',
      created date not null default '2024-01-01')`);
  await watch('computed');
  const inserted = await published('computed', `insert into computed (price) values (2.50)`);
  t.same(inserted.seen, [{ event: 'insert', data: { id: 1, price: 2.5, qty: 1, total: 2.5, status: 'new', created: '2024-01-01' } }]);
  const updated = await published('computed', `update computed set qty = 3`);
  t.same(updated.seen, [
    {
      event: 'update',
      data: { id: 1, price: 2.5, qty: 3, total: 7.5, status: 'new', created: '2024-01-01' },
      old: { qty: 1, total: 2.5 },
      changed: ['qty', 'total'],
    },
  ], 'the generated column changed with its input');
  const overridden = await published('computed', `insert into computed (id, price, qty) overriding system value values (10, 1, 0)`);
  t.same(overridden.seen.map((e) => e.data['id']), [10]);
  t.same(await lastEventsMatchTable('computed', 'computed'), [
    { id: 1, event: 'update', matches: true },
    { id: 10, event: 'insert', matches: true },
  ]);
});

t.test('virtual generated columns, which PostgreSQL does not compute for triggers, are left out of the events rather than published as null', { skip: serverVersion < 180000 && 'virtual generated columns need PostgreSQL 18' }, async (t) => {
  await db.pool.query(`
    create table virtuals (
      id int primary key, price int not null, qty int not null,
      total int generated always as (price * qty) virtual,
      label text generated always as ('#' || id) stored)`);
  await watch('virtuals');
  const inserted = await published('virtuals', `insert into virtuals (id, price, qty) values (1, 3, 2)`);
  t.same(inserted.seen, [{ event: 'insert', data: { id: 1, price: 3, qty: 2, label: '#1' } }], 'the table reads total 6: not null');
  const updated = await published('virtuals', `update virtuals set qty = 4`);
  t.same(updated.seen, [{ event: 'update', data: { id: 1, price: 3, qty: 4, label: '#1' }, old: { qty: 2 }, changed: ['qty'] }]);
  const deleted = await published('virtuals', `delete from virtuals`);
  t.same(deleted.seen, [{ event: 'delete', data: { id: 1, price: 3, qty: 4, label: '#1' } }]);

  await t.rejects(
    db.pool.query(`select relay.watch('virtuals', 'virtuals', '{id,total}')`),
    { code: '0A000', message: /total is a virtual generated column of public\.virtuals/ },
    'a column list that names one is refused: it could only be null',
  );
  await watch('virtuals', 'virtuals', ['id', 'qty']);
  const listed = await published('virtuals', `insert into virtuals (id, price, qty) values (2, 1, 1)`);
  t.same(listed.seen, [{ event: 'insert', data: { id: 2, qty: 1 } }], 'a column list without them works as before');

  await db.pool.query(`
    create table virtual_parts (id int, part int, twice int generated always as (id * 2) virtual) partition by list (part);
    create table virtual_parts_0 partition of virtual_parts for values in (0);`);
  await watch('virtual_parts');
  const partitioned = await published('virtual_parts', `insert into virtual_parts (id, part) values (5, 0)`);
  t.same(partitioned.seen, [{ event: 'insert', data: { id: 5, part: 0 } }], 'on a partitioned table too');
});

t.test('BEFORE ROW triggers of the application: events carry the row as they stored it, and nothing for a row they skipped', async (t) => {
  await db.pool.query(`
    create table guarded (id int primary key, name text, qty int, updated_by text);
    create function guarded_before() returns trigger language plpgsql as $$
    begin
      if NEW.qty < 0 then
        return null;                     -- refused: no write, no event
      end if;
      if TG_OP = 'UPDATE' and NEW.name = 'keep' then
        NEW.name := OLD.name;            -- undoes the change: the row stays as it was
      end if;
      NEW.name := lower(NEW.name);
      NEW.updated_by := 'trigger';
      return NEW;
    end $$;
    create trigger guarded_before before insert or update on guarded for each row execute function guarded_before();
    create function guarded_no_delete() returns trigger language plpgsql as $$ begin return null; end $$;
    create trigger guarded_no_delete before delete on guarded for each row when (OLD.id = 1) execute function guarded_no_delete();`);
  await watch('guarded');

  const inserted = await published('guarded', `insert into guarded (id, name, qty) values (1, 'ABC', 1), (2, 'x', -1)`);
  t.same(inserted.seen, [{ event: 'insert', data: { id: 1, name: 'abc', qty: 1, updated_by: 'trigger' } }], 'the row as stored; none for the skipped row');
  const updated = await published('guarded', `update guarded set name = 'DEF', updated_by = 'app' where id = 1`);
  t.same(updated.seen, [
    { event: 'update', data: { id: 1, name: 'def', qty: 1, updated_by: 'trigger' }, old: { name: 'abc' }, changed: ['name'] },
  ], 'the trigger overwrote updated_by with the value it had: not changed');
  t.same((await published('guarded', `update guarded set name = 'keep'`)).seen, [], 'a change the trigger undid publishes nothing');
  t.same((await published('guarded', `update guarded set qty = -5`)).seen, [], 'an update the trigger skipped publishes nothing');
  t.same((await published('guarded', `delete from guarded where id = 1`)).seen, [], 'a delete the trigger skipped publishes nothing');
  t.same(await lastEventsMatchTable('guarded', 'guarded'), [{ id: 1, event: 'update', matches: true }]);
});

t.test('an AFTER trigger of the application that writes the row again: subscribers end on the row the table holds', async (t) => {
  // A row trigger named after relay_watch (they fire in name order) and a statement trigger both
  // write after the row's own event; see README, "Watching your own table", for the other orders.
  await db.pool.query(`
    create table tickets (id int primary key, code text, seen int not null default 0);
    create table ticket_counts (id int primary key, n int not null);
    insert into ticket_counts values (1, 0);
    create function tickets_code() returns trigger language plpgsql as $$
    begin
      update tickets set code = 'T-' || NEW.id where id = NEW.id;
      return null;
    end $$;
    create trigger tickets_set_code after insert on tickets for each row execute function tickets_code();
    create function tickets_count() returns trigger language plpgsql as $$
    begin
      update ticket_counts set n = (select count(*) from tickets) where id = 1;
      update tickets set seen = seen + 1;
      return null;
    end $$;
    create trigger tickets_count after insert on tickets for each statement execute function tickets_count();`);
  await watch('tickets');
  await watch('ticket_counts');

  const written = await published('tickets', `insert into tickets (id) values (1), (2)`);
  t.same(written.seen, [
    { event: 'insert', data: { id: 1, code: null, seen: 0 } },
    { event: 'update', data: { id: 1, code: 'T-1', seen: 0 }, old: { code: null }, changed: ['code'] },
    { event: 'insert', data: { id: 2, code: null, seen: 0 } },
    { event: 'update', data: { id: 2, code: 'T-2', seen: 0 }, old: { code: null }, changed: ['code'] },
    { event: 'update', data: { id: 1, code: 'T-1', seen: 1 }, old: { seen: 0 }, changed: ['seen'] },
    { event: 'update', data: { id: 2, code: 'T-2', seen: 1 }, old: { seen: 0 }, changed: ['seen'] },
  ]);
  t.equal(new Set(written.positions).size, 1, 'one commit position');
  t.same(await lastEventsMatchTable('tickets', 'tickets'), [
    { id: 1, event: 'update', matches: true },
    { id: 2, event: 'update', matches: true },
  ]);
  t.same((await eventsOf('ticket_counts')).seen, [{ event: 'update', data: { id: 1, n: 2 }, old: { n: 0 }, changed: ['n'] }], 'and the other table it wrote');
});

t.test('a large TOASTed column: an update of another column leaves it out of old; one to the same value publishes nothing', async (t) => {
  await db.pool.query(`create table documents (id int primary key, body text, version int not null)`);
  await db.pool.query(`alter table documents alter column body set storage external`);
  await watch('documents');
  // 300 kB, far past the 2 kB at which PostgreSQL moves a value out of the row.
  const body = randomBytes(150_000).toString('hex');
  await db.pool.query(`insert into documents values (1, $1, 1)`, [body]);

  const bumped = await published('documents', `update documents set version = 2`);
  t.same(bumped.seen.map((e) => [e.old, e.changed]), [[{ version: 1 }, ['version']]], 'old holds the changed column alone');
  t.ok(bumped.seen[0]?.data['body'] === body, 'data holds the whole unchanged text');
  t.same((await published('documents', `update documents set body = body, version = version`)).seen, [], 'nothing changed, nothing published');
  const edited = await published('documents', `update documents set body = body || '!'`);
  t.same(edited.seen.map((e) => e.changed), [['body']]);
  t.ok(edited.seen[0]?.old?.['body'] === body && edited.seen[0]?.data['body'] === `${body}!`, 'old and data hold the whole texts');
});

t.test('column types: data is what to_jsonb writes of the stored row, digit for digit; rewriting a value as an equal one publishes nothing', async (t) => {
  await db.pool.query(`
    create type ticket_state as enum ('open', 'closed');
    create domain positive_int as int check (value > 0);
    create type money_pair as (amount numeric, currency text);
    create table typed (
      id int primary key, big numeric, f float8, r real, at timestamptz, span interval, raw bytea,
      nums int[], grid text[][], doc json, bin jsonb, state ticket_state, n positive_int, pair money_pair,
      pairs money_pair[], note text)`);
  await watch('typed');
  await db.pool.query(`
    insert into typed values (
      1, 12345678901234567890.123456789012345678901234567890, 'NaN', '-Infinity',
      '2024-01-02 03:04:05.123456+02', '1 year 2 mons 3 days 04:05:06.789', '\\x00ff10',
      '{1,NULL,3}', '{{a,b},{c,"d e"}}', E'{ "a" : 1,\\n  "a": 2, "b": [1,\\n 2] }', '{"z": 1, "a": [true, null]}',
      'open', 5, row(1.50, 'EUR'), array[row(2, 'USD')::money_pair], 'first')`);
  const sameAsTable = async (what: string): Promise<void> => {
    const { rows } = await db.pool.query<{ data: string; row: string }>(
      `select e.data::text as data, to_jsonb(t)::text as row
         from relay.events e join relay.commits c on c.xid = e.xid, typed t
        where e.topic = 'typed' order by c.pos desc, e.id desc limit 1`,
    );
    t.equal(rows[0]?.data, rows[0]?.row, `${what}: data is the stored row, as text`);
  };
  await sameAsTable('insert');
  const { seen } = await eventsOf('typed');
  t.match(seen[0]?.data, {
    f: 'NaN', r: '-Infinity', span: '1 year 2 mons 3 days 04:05:06.789', raw: '\\x00ff10',
    nums: [1, null, 3], grid: [['a', 'b'], ['c', 'd e']], doc: { a: 2, b: [1, 2] }, bin: { a: [true, null], z: 1 },
    state: 'open', n: 5, pair: { amount: 1.5, currency: 'EUR' }, pairs: [{ amount: 2, currency: 'USD' }],
  }, 'json is written as jsonb: whitespace gone, the last of duplicate keys kept');

  const equalRewrites = [
    `big = 12345678901234567890.1234567890123456789012345678900`,
    `f = 'NaN', r = '-Infinity'`,
    `at = '2024-01-02 01:04:05.123456+00'`,
    `span = '14 mons 3 days 04:05:06.789'`,
    `doc = '{"b": [1, 2], "a": 2}'`,
    `doc = '{"a": 0, "b": [1,2], "a": 2}'`,
    `bin = '{"a": [true, null],   "z": 1.0}'`,
    `pair = row(1.5, 'EUR')`,
    `n = 5, state = 'open', raw = '\\x00FF10'`,
  ];
  for (const set of equalRewrites) {
    t.same((await published('typed', `update typed set ${set}`)).seen, [], `${set}: equal as jsonb, nothing published`);
  }
  const changes: Array<[string, string[]]> = [
    [`big = 12345678901234567890.123456789012345678901234567891`, ['big']],
    [`f = 'Infinity', r = 'NaN'`, ['f', 'r']],
    [`doc = '{"a": 2, "b": [2, 1]}'`, ['doc']],
    [`pair.currency = 'USD', state = 'closed'`, ['pair', 'state']],
    [`pairs = pairs || row(3, 'GBP')::money_pair, nums[2] = 2`, ['nums', 'pairs']],
    [`raw = '\\x00ff11', n = 6`, ['n', 'raw']],
  ];
  for (const [set, changed] of changes) {
    const { seen } = await published('typed', `update typed set ${set}`);
    t.same(seen.map((e) => e.changed), [changed], `${set}: changed ${changed.join(', ')}`);
    await sameAsTable(set);
  }
  const { rows } = await db.pool.query<{ old: string }>(
    `select u.old::text as old from relay.events e cross join lateral relay.update_change(e.data, e.old, e.changed) u
      where e.topic = 'typed' and 'big' = any(u.changed)`,
  );
  t.same(rows, [{ old: '{"big": 12345678901234567890.1234567890123456789012345678900}' }], 'old keeps every digit');
});

t.test('a writer with privileges on some columns only: events carry the whole row', async (t) => {
  await db.pool.query(`create table accounts (id int primary key, owner text, secret text, balance int not null default 0)`);
  await db.pool.query(`insert into accounts values (1, 'alice', 's1', 10)`);
  await watch('accounts');
  const { client: writer } = await connectAs(t, db, [
    `grant select (id, balance), update (balance), insert (id, owner) on accounts to $role`,
  ]);
  await writer.query(`update accounts set balance = balance + 5 where id = 1`);
  await writer.query(`update accounts set balance = balance where id = 1`);
  await writer.query(`insert into accounts (id, owner) values (2, 'bob')`);
  await t.rejects(writer.query(`select secret from accounts`), { code: '42501' }, 'the writer cannot read the secret');
  t.same((await eventsOf('accounts')).seen, [
    { event: 'update', data: { id: 1, owner: 'alice', secret: 's1', balance: 15 }, old: { balance: 10 }, changed: ['balance'] },
    { event: 'insert', data: { id: 2, owner: 'bob', secret: null, balance: 0 } },
  ], 'subscribers get the whole row, whatever the writer may read');
});

t.test('a writer under row level security: events of the rows its policies let it write, and only those', async (t) => {
  await db.pool.query(`
    create table tenant_rows (id int primary key, tenant text not null, value int not null);
    insert into tenant_rows values (1, 'mine', 1), (2, 'theirs', 2);
    alter table tenant_rows enable row level security;
    alter table tenant_rows force row level security;
    create policy own_rows on tenant_rows using (tenant = 'mine') with check (tenant = 'mine');`);
  await watch('tenant_rows');
  const { client: writer } = await connectAs(t, db, [`grant select, insert, update, delete on tenant_rows to $role`]);
  await writer.query(`update tenant_rows set value = value + 10`);
  await writer.query(`insert into tenant_rows values (3, 'mine', 3)`);
  await t.rejects(writer.query(`insert into tenant_rows values (4, 'theirs', 4)`), { code: '42501' }, 'the policy refuses another tenant’s row');
  const deleted = await writer.query(`delete from tenant_rows returning id`);
  t.same(deleted.rows, [{ id: 1 }, { id: 3 }]);
  t.same((await eventsOf('tenant_rows')).seen, [
    { event: 'update', data: { id: 1, tenant: 'mine', value: 11 }, old: { value: 1 }, changed: ['value'] },
    { event: 'insert', data: { id: 3, tenant: 'mine', value: 3 } },
    { event: 'delete', data: { id: 1, tenant: 'mine', value: 11 } },
    { event: 'delete', data: { id: 3, tenant: 'mine', value: 3 } },
  ], 'nothing of the row the policy hid');
  t.same(await rowsOf('tenant_rows'), [{ id: 2, tenant: 'theirs', value: 2 }]);
});

t.test('DELETE ... RETURNING, UPDATE ... FROM a join, and writable CTEs that write two watched tables in one statement', async (t) => {
  await db.pool.query(`
    create table ledgers (id int primary key, owner text not null, balance int not null);
    create table ledger_log (id int generated always as identity primary key, ledger int not null, what text not null);
    create table adjustments (ledger int, delta int);
    insert into ledgers values (1, 'a', 10), (2, 'b', 20), (3, 'c', 30);
    insert into adjustments values (1, 5), (1, 7), (2, 0), (4, 1);`);
  await watch('ledgers');
  await watch('ledger_log');

  const joined = await published('ledgers', `update ledgers l set balance = l.balance + a.delta from adjustments a where a.ledger = l.id`);
  t.equal(joined.seen.length, 1, 'one update for ledger 1, which the join matched twice (PostgreSQL applies one); none for ledger 2, unchanged');
  t.match(joined.seen[0], { event: 'update', data: { id: 1 }, changed: ['balance'] });
  t.same(await lastEventsMatchTable('ledgers', 'ledgers'), [{ id: 1, event: 'update', matches: true }], 'its data is the row as updated');

  const returned = await db.pool.query(`delete from ledgers where id = 3 returning *`);
  t.same(returned.rows, [{ id: 3, owner: 'c', balance: 30 }]);
  t.match((await eventsOf('ledgers')).seen.at(-1), { event: 'delete', data: { id: 3, owner: 'c', balance: 30 } });

  await db.pool.query(`
    with moved as (update ledgers set balance = balance - 5 where id = 2 returning id, balance),
         logged as (insert into ledger_log (ledger, what) select id, 'now ' || balance from moved returning ledger)
    update ledgers set balance = balance + 5 where id = (select ledger from logged) - 1`);
  const ledgers = await readLog(db.pool, 'ledgers');
  const logs = await readLog(db.pool, 'ledger_log');
  const lastTwo = ledgers.slice(-2);
  t.same(lastTwo.map((e) => [e.data['id'], e.old, e.changed]), [
    [2, { balance: 20 }, ['balance']],
    [1, { balance: lastTwo[1]!.data['balance'] as number - 5 }, ['balance']],
  ], 'each table’s rows once, the CTE’s and the main statement’s');
  t.same(logs.map((e) => [e.event, e.data]), [['insert', { id: 1, ledger: 2, what: 'now 15' }]]);
  t.equal(new Set([...lastTwo, ...logs].map((e) => e.pos)).size, 1, 'one commit position for the whole statement');
  t.same(await lastEventsMatchTable('ledgers', 'ledgers'), [
    { id: 1, event: 'update', matches: true },
    { id: 2, event: 'update', matches: true },
    { id: 3, event: 'delete', matches: true },
  ]);
});
