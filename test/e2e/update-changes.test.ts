// Contract section 2: an update's `old` holds the previous values of the changed columns only, and
// `changed` names them. The trigger logs a small row's previous values whole and the relay works
// out the change (src/db/row-change.ts); a row over 512 bytes is compared in the trigger. Both must
// agree with jsonb's `is distinct from` (relay.update_change, in SQL, is the oracle here), on the
// values where a comparison of text or of doubles would not: numerics of another scale, jsonb keys
// in another order, numbers no double holds, -0, a `__proto__` column.
import t from 'tap';
import { changeCatalog } from '../helpers/catalog.ts';
import { eventsUntil, readLog } from '../helpers/event-log.ts';
import { subscribe } from '../helpers/frames.ts';
import { startTestRelay } from '../helpers/relay.ts';

/** Rows 1 (small: its change is worked out by the relay) and 2 (padded past 512 bytes: by the trigger). */
const ROWS = [1, 2];
const PAD = 'p'.repeat(600);

/** Each update runs on both rows; the comment says what must (not) count as changed. */
const UPDATES = [
  // price 1.0 -> 1.00: equal as jsonb numerics; qty changed.
  `qty = qty + 1, price = 1.00`,
  // the same long numeric with another scale: not changed; note changed.
  `big = 12345678901234567890.100, note = 'second'`,
  // a long numeric a double cannot tell from the next one: changed.
  `big = 12345678901234567891.1`,
  // the same jsonb written with its keys in another order: not changed; tags changed.
  `meta = '{"b": [1, {"c": null}], "a": 1}', tags = '{x,y,z}'`,
  // an array's items in another order: changed.
  `meta = '{"a": 1, "b": [{"c": null}, 1]}'`,
  // -0 is 0: not changed; a column named __proto__ changed.
  `at = '-0', "__proto__" = 'second'`,
  // to null, and a bigint past 2^53 that a double would make equal to its neighbour; "Zeta" comes
  // first in byte order, last in most collations.
  `note = null, id_text = '9007199254740993'::numeric::text, snowflake = 9007199254740993, "Zeta" = 'second'`,
];

/** An event's change, comparable (a frame's, or a row's of SQL): `changed` sorted, `old` with sorted keys. */
function changeOf(event: object): string {
  const { old, changed } = event as { old?: Record<string, unknown> | null; changed?: string[] | null };
  const sorted = Object.fromEntries(Object.keys(old ?? {}).sort().map((key) => [key, old![key]]));
  return JSON.stringify({ changed: [...(changed ?? [])].sort(), old: sorted });
}

t.test('an update reports the columns it changed, worked out by the relay or by the trigger alike', async (t) => {
  const relay = await startTestRelay(t);
  await relay.db.pool.query(`
    create table changes (
      id int primary key, qty int, price numeric, big numeric, meta jsonb, tags text[], note text,
      at float8, "__proto__" text, id_text text, snowflake bigint, "Zeta" text, pad text)`);
  await changeCatalog(relay, `select relay.watch('changes', 'changes'); select relay.allow('changes', 'admin');`);
  const admin = await relay.connect({ role: 'admin', sub: 'a1' });
  t.match(await subscribe(admin, 'changes'), { type: 'subscribed' });

  for (const id of ROWS) {
    await relay.db.pool.query(
      `insert into changes values ($1, 1, 1.0, 12345678901234567890.1, '{"a": 1, "b": [1, {"c": null}]}', '{x,y}',
                                   'first', 0, 'first', '1', 9007199254740992, 'first', $2)`,
      [id, id === 2 ? PAD : null],
    );
  }
  for (const update of UPDATES) {
    for (const id of ROWS) await relay.db.pool.query(`update changes set ${update} where id = $1`, [id]);
  }
  const expectedCount = ROWS.length * (1 + UPDATES.length);
  let received = 0;
  const frames = await eventsUntil(admin, 'changes', () => ++received === expectedCount, 'every insert and update');

  const stored = await relay.db.pool.query<{ id: number; whole: boolean }>(
    `select (e.data ->> 'id')::int as id, e.changed is null as whole from relay.events e
      where e.topic = 'changes' and e.event = 'update' order by e.id`,
  );
  t.same(
    stored.rows.map((row) => `${row.id}:${row.whole}`),
    UPDATES.flatMap(() => ['1:true', '2:false']),
    'the small row is logged with its whole previous row, the padded one with its change',
  );

  const logged = await readLog(relay.db.pool, 'changes');
  t.equal(frames.length, logged.length, 'one frame per logged event');
  for (const [index, frame] of frames.entries()) {
    if (frame.event !== 'update') continue;
    const statement = UPDATES[Math.floor((index - ROWS.length) / ROWS.length)];
    t.equal(changeOf(frame), changeOf(logged[index]!), `row ${String((frame.data as { id: number }).id)}: as jsonb compares (${statement})`);
  }
  // The reads that relays of an earlier version call give the same change.
  const { rows: earlierReads } = await relay.db.pool.query<{ old: unknown; changed: unknown }>(
    `select old, changed from relay.read_page(0, 0, 9223372036854775807, 9223372036854775807, 'changes', 1000)`,
  );
  t.same(earlierReads.map(changeOf), logged.map(changeOf), 'relay.read_page, as before this log kept whole rows');
  const updates = frames.filter((frame) => frame.event === 'update');
  for (let at = 0; at < updates.length; at += 2) {
    t.equal(changeOf(updates[at]!), changeOf(updates[at + 1]!), `the same change either way: ${UPDATES[at / 2]}`);
    t.strictSame(updates[at]!.changed, updates[at + 1]!.changed, 'changed in the same order');
  }
  t.same(
    updates.slice(0, 2).map((frame) => [...(frame.changed as string[])].sort()),
    [['qty'], ['qty']],
    'a numeric of another scale is not a change',
  );
  t.same([...(updates[2]!.changed as string[])].sort(), ['note'], 'nor a long numeric of another scale');
  t.same(updates[4]!.changed, ['big'], 'a long numeric one unit apart is');
  t.same([...(updates[6]!.changed as string[])].sort(), ['tags'], 'nor jsonb keys in another order');
  t.same(updates[8]!.changed, ['meta'], 'array items in another order are');
  t.same(updates[10]!.changed, ['__proto__'], '-0 is 0, and __proto__ is a column like another');
  t.ok(Object.hasOwn(updates[10]!.old as object, '__proto__'), 'its old value is an own key');
  t.strictSame(updates[12]!.changed, ['Zeta', 'id_text', 'note', 'snowflake'], 'null, and a bigint past 2^53; in byte order');
});

// Grants match an event by its new row. An order transferred from hospital H1 to H2 reaches H2's
// subscribers as an update; its previous values are H1's row, which H2 was never allowed to see.
// Small rows (whole previous row logged) and padded ones (change worked out by the trigger) alike,
// live and replayed.
t.test('an update that moves a row into a subscriber grant carries its data alone, nothing of the previous row', async (t) => {
  const relay = await startTestRelay(t);
  const h2 = await relay.connect({ role: 'hospital', sub: 'n2', hospital_id: 'H2' });
  const admin = await relay.connect({ role: 'admin', sub: 'a1' });
  t.match(await subscribe(h2, 'orders'), { type: 'subscribed' });
  t.match(await subscribe(admin, 'orders'), { type: 'subscribed' });
  const secret = { note: 'isolation room 4, HIV+' };
  for (const [id, padding] of [['small', ''], ['padded', 'p'.repeat(600)]] as const) {
    await relay.db.pool.query(`insert into orders (id, hospital_id, status, rider) values ($1, 'H1', 'placed', $2)`, [id, { ...secret, padding }]);
    await relay.db.pool.query(`update orders set hospital_id = 'H2', status = 'transferred', rider = '{}' where id = $1`, [id]);
  }
  const transfers = (client: typeof h2) => {
    let seen = 0;
    return eventsUntil(client, 'orders', (frame) => frame.event === 'update' && ++seen === 2, 'both transfers');
  };
  const [atH2, atAdmin] = await Promise.all([transfers(h2), transfers(admin)]);
  const updates = (frames: typeof atH2) => frames.filter((frame) => frame.event === 'update');
  for (const frame of updates(atH2)) {
    const id = String((frame.data as { id: string }).id);
    t.same([frame.old, frame.changed], [undefined, undefined], `${id}: neither old nor changed at the hospital it moved to`);
    t.match(frame.data, { id, hospital_id: 'H2', status: 'transferred' }, 'its data');
    t.notMatch(JSON.stringify(frame), /H1|HIV/, 'nothing of the previous row');
  }
  for (const frame of updates(atAdmin)) {
    t.match(frame.old, { hospital_id: 'H1', status: 'placed', rider: { note: secret.note } }, 'an admin, whose grant allowed both rows, gets old');
  }

  // The same on a replay from before the transfers.
  const replaying = await relay.connect({ role: 'hospital', sub: 'n2', hospital_id: 'H2' });
  const [first] = await readLog(relay.db.pool, 'orders');
  t.match(await subscribe(replaying, 'orders', { since: first!.cursor }), { type: 'subscribed' });
  const replayed = await transfers(replaying);
  t.same(
    updates(replayed).map((frame) => [(frame.data as { id: string }).id, frame.old]),
    [
      ['small', undefined],
      ['padded', undefined],
    ],
    'replayed without old too',
  );
});

// A role with two grants showing different columns: triage sees its hospital's orders without the
// rider, and urgent orders' riders. An order of its hospital that becomes urgent was visible before
// without its rider. `changed` leaving rider out would tell that the rider, hidden then, is the one
// it has now (and `old` would show it, had it changed): the update carries its data alone.
t.test('an update whose previous row the subscriber saw with fewer columns carries its data alone', async (t) => {
  const relay = await startTestRelay(t);
  await changeCatalog(
    relay,
    `select relay.allow('orders', 'triage', '{"hospital_id": {"claim": "hospital_id"}}', '{id,hospital_id,status}');
     select relay.allow('orders', 'triage', '{"status": "urgent"}', '{id,rider}')`,
  );
  const triage = await relay.connect({ role: 'triage', sub: 't1', hospital_id: 'H1' });
  t.match(await subscribe(triage, 'orders'), { type: 'subscribed' });
  for (const [id, padding] of [['small', ''], ['padded', PAD]] as const) {
    await relay.db.pool.query(`insert into orders (id, hospital_id, status, rider) values ($1, 'H1', 'placed', $2)`, [id, { note: 'HIV+', padding }]);
    await relay.db.pool.query(`update orders set status = 'urgent' where id = $1`, [id]);
  }
  let seen = 0;
  const frames = await eventsUntil(triage, 'orders', (frame) => frame.event === 'update' && ++seen === 2, 'both updates');
  const updates = frames.filter((frame) => frame.event === 'update');
  t.same(
    updates.map((frame) => [(frame.data as { id: string }).id, frame.old, frame.changed]),
    [
      ['small', undefined, undefined],
      ['padded', undefined, undefined],
    ],
    'neither old nor changed',
  );
  t.match(updates[0]!.data, { status: 'urgent', rider: { note: 'HIV+' } }, 'its data, rider included');
  t.same(
    frames.filter((frame) => frame.event === 'insert').map((frame) => Object.keys(frame.data as object).sort()),
    [
      ['hospital_id', 'id', 'status'],
      ['hospital_id', 'id', 'status'],
    ],
    'the inserts came without the rider',
  );
});

// A grant may filter on a column it does not show: a board of a hospital's orders shows their id
// and status only. An order transferred to the hospital changed no column the board sees, but the
// board never saw the order: it gets the update, with its data alone.
t.test('an update that moves a row into a grant through a column the grant hides is sent', async (t) => {
  const relay = await startTestRelay(t);
  await changeCatalog(relay, `select relay.allow('orders', 'board', '{"hospital_id": {"claim": "hospital_id"}}', '{id,status}')`);
  const board = await relay.connect({ role: 'board', sub: 'b2', hospital_id: 'H2' });
  t.match(await subscribe(board, 'orders'), { type: 'subscribed' });
  for (const id of ['moved', 'stays']) {
    await relay.db.pool.query(`insert into orders (id, hospital_id, status) values ($1, 'H1', 'placed')`, [id]);
  }
  await relay.db.pool.query(`update orders set hospital_id = 'H2' where id = 'moved'`);
  await relay.db.pool.query(`update orders set rider = '{"note": "H1 only"}' where id = 'stays'`);
  await relay.db.pool.query(`insert into orders (id, hospital_id, status) values ('last', 'H2', 'placed')`);
  const frames = await eventsUntil(board, 'orders', (frame) => (frame.data as { id: string }).id === 'last', 'the last insert');
  t.same(
    frames.map((frame) => [frame.event, frame.data, frame.old, frame.changed]),
    [
      ['update', { id: 'moved', status: 'placed' }, undefined, undefined],
      ['insert', { id: 'last', status: 'placed' }, undefined, undefined],
    ],
    'the transferred order, with its data alone; nothing of the order that stayed at H1',
  );
});
