import t from 'tap';
import type { Claims, RelayEvent } from '../../src/events.ts';
import { compileAccess, renderEvent, type Access } from '../../src/routing/access.ts';
import { GRANTS, deepFreeze, eventOf, filterOf } from './fixtures.ts';

function accessOf(role: string, claims: Claims, clientFilter: unknown = null, topic = 'orders'): Access {
  const result = compileAccess({ topic, role, grants: GRANTS, claims, clientFilter: clientFilter === null ? null : filterOf(clientFilter) });
  if (!result.ok) throw new Error(`expected access, got forbidden: ${result.message}`);
  return result.access;
}

function render(access: Access, event: RelayEvent): unknown {
  const frame = renderEvent(access, event, new Map());
  return frame === null ? null : JSON.parse(frame);
}

const ORDER = { id: 'o1', hospital_id: 'H7', merchant_id: 'm1', status: 'new', total: 120 };
const insert = eventOf(ORDER);
const update = eventOf(
  { ...ORDER, status: 'paid', total: 130 },
  { event: 'update', old: { status: 'new', total: 120 }, changed: ['status', 'total'] },
);
const totalOnly = eventOf({ ...ORDER, total: 99 }, { event: 'update', old: { total: 120 }, changed: ['total'] });
const remove = eventOf(ORDER, { event: 'delete' });
const custom = eventOf({ merchant_id: 'm1', note: 'hello', secret: 1 }, { event: 'low_stock' });

t.test('the exact frame text', async (t) => {
  const frame = renderEvent(accessOf('merchant', { merchant_id: 'm1' }), update, new Map());
  t.equal(
    frame,
    `{"type":"event","topic":"orders","event":"update","cursor":"${update.cursor}","ts":"2024-05-01T12:00:00.000Z",` +
      '"data":{"id":"o1","merchant_id":"m1","status":"paid"},"old":{"status":"new"},"changed":["status"]}',
  );
  t.equal(
    renderEvent(accessOf('admin', {}), insert, new Map()),
    `{"type":"event","topic":"orders","event":"insert","cursor":"${insert.cursor}","ts":"2024-05-01T12:00:00.000Z",` +
      '"data":{"id":"o1","hospital_id":"H7","merchant_id":"m1","status":"new","total":120}}',
    'no old nor changed on an insert',
  );
});

t.test('who gets which event, and which columns', async (t) => {
  const merchant = accessOf('merchant', { merchant_id: 'm1' });
  const admin = accessOf('admin', {});
  const auditorH7 = accessOf('auditor', { hospital_id: 'H7' });
  const base = { type: 'event', topic: 'orders', ts: '2024-05-01T12:00:00.000Z' };
  const cases: Array<[string, Access, RelayEvent, unknown]> = [
    ['merchant insert', merchant, insert, { ...base, event: 'insert', cursor: insert.cursor, data: { id: 'o1', merchant_id: 'm1', status: 'new' } }],
    ['merchant delete', merchant, remove, { ...base, event: 'delete', cursor: remove.cursor, data: { id: 'o1', merchant_id: 'm1', status: 'new' } }],
    ['merchant, only a hidden column changed', merchant, totalOnly, null],
    ['other merchant', accessOf('merchant', { merchant_id: 'm2' }), insert, null],
    [
      'admin update keeps everything',
      admin,
      update,
      { ...base, event: 'update', cursor: update.cursor, data: update.data, old: update.old, changed: ['status', 'total'] },
    ],
    ['admin, update of a hidden-to-others column', admin, totalOnly, { ...base, event: 'update', cursor: totalOnly.cursor, data: totalOnly.data, old: { total: 120 }, changed: ['total'] }],
    ['client filter passes', accessOf('admin', {}, { status: 'new' }), insert, { ...base, event: 'insert', cursor: insert.cursor, data: ORDER }],
    ['client filter fails', accessOf('admin', {}, { status: 'paid' }), insert, null],
    ['client filter with a missing claim', accessOf('admin', {}, { driver_id: { claim: 'sub' } }), eventOf({ driver_id: null }), null],
    ['other topic', admin, eventOf(ORDER, { topic: 'inventory' }), null],
    // Union of the matching grants' columns.
    ['auditor, own hospital only', auditorH7, insert, { ...base, event: 'insert', cursor: insert.cursor, data: { id: 'o1', hospital_id: 'H7', total: 120 } }],
    [
      'auditor, delivered elsewhere',
      auditorH7,
      eventOf({ ...ORDER, hospital_id: 'H8', status: 'delivered' }, { cursor: 'd1' }),
      { ...base, event: 'insert', cursor: 'd1', data: { id: 'o1', status: 'delivered' } },
    ],
    [
      'auditor, delivered in own hospital',
      auditorH7,
      eventOf({ ...ORDER, status: 'delivered' }, { cursor: 'd2' }),
      { ...base, event: 'insert', cursor: 'd2', data: { id: 'o1', hospital_id: 'H7', status: 'delivered', total: 120 } },
    ],
    ['auditor, neither', auditorH7, eventOf({ ...ORDER, hospital_id: 'H8' }), null],
    [
      'auditor update: changed limited to the union',
      auditorH7,
      eventOf({ ...ORDER, status: 'delivered', merchant_id: 'm9' }, { cursor: 'u1', event: 'update', old: { status: 'paid', merchant_id: 'm1' }, changed: ['merchant_id', 'status'] }),
      // The previous row was the auditor's through its own hospital's grant only, which hides status:
      // its previous status would be in old, so the update comes with its data alone.
      { ...base, event: 'update', cursor: 'u1', data: { id: 'o1', hospital_id: 'H7', status: 'delivered', total: 120 } },
    ],
    [
      'a custom event is masked like the rest',
      accessOf('merchant', { merchant_ids: ['m1'] }, null, 'inventory'),
      { ...custom, topic: 'inventory' },
      { ...base, topic: 'inventory', event: 'low_stock', cursor: custom.cursor, data: custom.data },
    ],
  ];
  for (const [name, access, event, expected] of cases) t.same(render(access, event), expected, name);
});

t.test('an alternative with all columns wins the union', async (t) => {
  const grants = [
    { topic: 'orders', role: 'mixed', filter: { status: 'new' }, columns: ['id'] },
    { topic: 'orders', role: 'mixed', filter: { total: { gt: 100 } }, columns: null },
  ];
  const result = compileAccess({ topic: 'orders', role: 'mixed', grants, claims: {}, clientFilter: null });
  if (!result.ok) throw new Error(result.message);
  t.same(render(result.access, insert), { type: 'event', topic: 'orders', event: 'insert', cursor: insert.cursor, ts: insert.ts, data: ORDER });
  t.same((render(result.access, eventOf({ ...ORDER, total: 5 })) as { data: unknown }).data, { id: 'o1' });
});

t.test('one payload per mask per event, shared through the cache', async (t) => {
  const cache = new Map<string, string>();
  const h7 = renderEvent(accessOf('hospital', { hospital_id: 'H7' }), insert, cache);
  const admin = renderEvent(accessOf('admin', {}), insert, cache);
  const merchant = renderEvent(accessOf('merchant', { merchant_id: 'm1' }), insert, cache);
  const merchantWithFilter = renderEvent(accessOf('merchant', { merchant_id: 'm1' }, { status: 'new' }), insert, cache);
  t.ok(h7 !== null && h7 === admin, 'same mask, same string');
  t.ok(merchant !== null && merchant === merchantWithFilter, 'same mask, same string');
  t.not(merchant, admin);
  t.equal(cache.size, 2, 'two masks, two serializations');
});

t.test('the event is not mutated and hostile column names stay plain keys', async (t) => {
  const data = JSON.parse('{"id":"o1","merchant_id":"m1","__proto__":{"polluted":true},"constructor":"c"}') as Record<string, unknown>;
  const event = deepFreeze(eventOf(data, { event: 'update', old: JSON.parse('{"__proto__":{"x":1}}'), changed: ['__proto__'] }));
  const snapshot = structuredClone(event);
  const all = renderEvent(accessOf('admin', {}), event, new Map());
  const parsedAll = JSON.parse(all ?? 'null') as { data: Record<string, unknown>; old: Record<string, unknown> };
  t.ok(Object.hasOwn(parsedAll.data, '__proto__'), '__proto__ is delivered as a column');
  t.same(parsedAll.data['__proto__'], { polluted: true });
  t.equal(parsedAll.data['constructor'], 'c');
  t.same(parsedAll.old['__proto__'], { x: 1 });
  t.equal(renderEvent(accessOf('merchant', { merchant_id: 'm1' }), event, new Map()), null, 'a masked __proto__ change is not sent');
  const masked = renderEvent(accessOf('merchant', { merchant_id: 'm1' }), { ...event, old: undefined, changed: undefined, event: 'insert' }, new Map());
  t.equal(masked, `{"type":"event","topic":"orders","event":"insert","cursor":"${event.cursor}","ts":"${event.ts}","data":{"id":"o1","merchant_id":"m1"}}`);
  t.equal(({} as Record<string, unknown>)['polluted'], undefined, 'no prototype was polluted');
  t.same(event, snapshot, 'the event is unchanged');
});

// An update can move a row from one subscriber's grant into another's: an order transferred from
// hospital H1 to H7. Its previous values are those of a row H7 was not allowed to see (H1's order,
// a note written there), so H7 gets the update with its data alone (changed would tell which
// columns kept their values); a subscriber whose grants allowed the previous row too gets old,
// within what those grants show of it.
t.test('old and changed only where the grants allowed the previous row', async (t) => {
  const transfer = eventOf(
    { ...ORDER, hospital_id: 'H7', status: 'transferred' },
    { event: 'update', old: { hospital_id: 'H1', status: 'new: needs isolation' }, changed: ['hospital_id', 'status'] },
  );
  const base = { type: 'event', topic: 'orders', event: 'update', cursor: transfer.cursor, ts: transfer.ts };
  t.same(
    render(accessOf('hospital', { hospital_id: 'H7' }), transfer),
    { ...base, data: transfer.data },
    'the receiving hospital: its data alone, no old nor changed (which would tell of the previous row)',
  );
  t.equal(render(accessOf('hospital', { hospital_id: 'H1' }), transfer), null, 'the hospital it left gets nothing (its grant no longer matches the row)');
  t.same(render(accessOf('admin', {}), transfer), { ...base, data: transfer.data, old: transfer.old, changed: ['hospital_id', 'status'] }, 'an admin sees both rows: old whole');

  const within = eventOf({ ...ORDER, status: 'paid' }, { event: 'update', old: { status: 'new' }, changed: ['status'] });
  t.same(
    render(accessOf('hospital', { hospital_id: 'H7' }), within),
    { ...base, cursor: within.cursor, data: within.data, old: { status: 'new' }, changed: ['status'] },
    'an update within the same hospital keeps its old',
  );

  // Merchants see id, merchant_id and status; an order moved between merchants.
  const moved = eventOf({ ...ORDER, merchant_id: 'm1' }, { event: 'update', old: { merchant_id: 'm2' }, changed: ['merchant_id'] });
  t.same(
    render(accessOf('merchant', { merchant_id: 'm1' }), moved),
    { ...base, cursor: moved.cursor, data: { id: 'o1', merchant_id: 'm1', status: 'new' } },
    'a masked grant: data alone too',
  );

  // A claim list: the previous merchant is one of the subscriber's too.
  const listed = compileAccess({
    topic: 'orders',
    role: 'group',
    grants: [{ topic: 'orders', role: 'group', filter: { merchant_id: { in: { claim: 'merchant_ids' } } }, columns: null }],
    claims: { merchant_ids: ['m1', 'm2'] },
    clientFilter: null,
  });
  if (!listed.ok) throw new Error(listed.message);
  t.same(render(listed.access, moved), { ...base, cursor: moved.cursor, data: moved.data, old: { merchant_id: 'm2' }, changed: ['merchant_id'] }, 'both merchants its own: old whole');

  // An event appended by hand (relay.append_event) whose changed leaves out a column of old.
  const unlisted = eventOf({ ...ORDER, hospital_id: 'H7', note: 'moved' }, { event: 'update', old: { hospital_id: 'H1', note: 'H1 only' }, changed: ['note'] });
  t.equal((render(accessOf('hospital', { hospital_id: 'H7' }), unlisted) as { old?: unknown }).old, undefined, 'old decides, not changed');

  // The previous row visible under a narrower grant: price was hidden then and did not change.
  // changed without price would tell that its hidden previous value was the one it has now.
  const split = compileAccess({
    topic: 'orders',
    role: 'split',
    grants: [
      { topic: 'orders', role: 'split', filter: { hospital_id: { claim: 'hospital_id' } }, columns: ['id', 'hospital_id', 'note'] },
      { topic: 'orders', role: 'split', filter: { priority: 'high' }, columns: ['id', 'price'] },
    ],
    claims: { hospital_id: 'H1' },
    clientFilter: null,
  });
  if (!split.ok) throw new Error(split.message);
  const raised = eventOf(
    { id: 'o1', hospital_id: 'H1', note: 'b', priority: 'high', price: 5 },
    { event: 'update', old: { note: 'a', priority: 'low' }, changed: ['note', 'priority'] },
  );
  t.same(
    render(split.access, raised),
    { ...base, cursor: raised.cursor, data: { id: 'o1', hospital_id: 'H1', note: 'b', price: 5 } },
    'a column hidden in the previous row: data alone, no changed that would tell it kept its value',
  );
  const lowered = eventOf(
    { id: 'o1', hospital_id: 'H1', note: 'b', priority: 'low', price: 5 },
    { event: 'update', old: { note: 'a', priority: 'high', price: 4 }, changed: ['note', 'price', 'priority'] },
  );
  t.same(
    render(split.access, lowered),
    { ...base, cursor: lowered.cursor, data: { id: 'o1', hospital_id: 'H1', note: 'b' }, old: { note: 'a' }, changed: ['note'] },
    'a previous row seen under wider grants: old and changed within what the subscriber sees now',
  );

  // A grant that filters on a column it does not show: a row moved into it changed no column the
  // subscriber sees, but is new to it.
  const board = compileAccess({
    topic: 'orders',
    role: 'board',
    grants: [{ topic: 'orders', role: 'board', filter: { hospital_id: { claim: 'hospital_id' } }, columns: ['id', 'status'] }],
    claims: { hospital_id: 'H7' },
    clientFilter: null,
  });
  if (!board.ok) throw new Error(board.message);
  const reassigned = eventOf({ ...ORDER, hospital_id: 'H7' }, { event: 'update', old: { hospital_id: 'H1' }, changed: ['hospital_id'] });
  t.same(render(board.access, reassigned), { ...base, cursor: reassigned.cursor, data: { id: 'o1', status: 'new' } }, 'moved in through a hidden column: sent, data alone');
  const noted = eventOf({ ...ORDER, note: 'b' }, { event: 'update', old: { note: 'a' }, changed: ['note'] });
  t.equal(render(board.access, noted), null, 'a row it saw already, only a hidden column changed: nothing');

  const cache = new Map<string, string>();
  const h7 = renderEvent(accessOf('hospital', { hospital_id: 'H7' }), transfer, cache);
  const admin = renderEvent(accessOf('admin', {}), transfer, cache);
  t.not(h7, admin, 'the same column mask with and without old are two frames, not one cached for both');
});

function leavingAccessOf(role: string, claims: Claims, clientFilter: unknown = null): Access {
  const result = compileAccess({ topic: 'orders', role, grants: GRANTS, claims, clientFilter: clientFilter === null ? null : filterOf(clientFilter), leaves: true });
  if (!result.ok) throw new Error(result.message);
  return result.access;
}

// A subscription that asks for leaves is told when an update takes a row out of its view: its
// grants (an order transferred to another hospital) or its own filter (an order no longer `new`).
// The `left` frame carries the previous row as the subscriber was allowed to see it, and nothing
// of the new one.
t.test('left frames: the previous row, as the subscriber saw it, when an update takes a row out of its view', async (t) => {
  const transfer = eventOf(
    { ...ORDER, hospital_id: 'H8', status: 'transferred' },
    { event: 'update', old: { hospital_id: 'H7', status: 'new' }, changed: ['hospital_id', 'status'] },
  );
  const left = { type: 'left', topic: 'orders', cursor: transfer.cursor, ts: transfer.ts };
  t.same(render(leavingAccessOf('hospital', { hospital_id: 'H7' }), transfer), { ...left, data: ORDER }, 'the hospital it left: its previous row, whole');
  t.equal(render(accessOf('hospital', { hospital_id: 'H7' }), transfer), null, 'nothing to a subscription that did not ask');
  t.same(
    render(leavingAccessOf('hospital', { hospital_id: 'H8' }), transfer),
    { type: 'event', topic: 'orders', event: 'update', cursor: transfer.cursor, ts: transfer.ts, data: transfer.data },
    'the hospital it moved to: the update, its data alone',
  );
  t.equal(render(leavingAccessOf('hospital', { hospital_id: 'H9' }), transfer), null, 'a hospital that saw neither row: nothing');

  // Its own filter: the order is no longer new; the subscriber may see the new row, but asked only for new orders.
  const paid = eventOf({ ...ORDER, status: 'paid' }, { event: 'update', old: { status: 'new' }, changed: ['status'] });
  t.same(render(leavingAccessOf('admin', {}, { status: 'new' }), paid), { type: 'left', topic: 'orders', cursor: paid.cursor, ts: paid.ts, data: ORDER });
  t.same((render(leavingAccessOf('admin', {}, { status: 'paid' }), paid) as { type: string }).type, 'event', 'entering the filter is an update');
  t.equal(render(leavingAccessOf('admin', {}, { status: 'cancelled' }), paid), null, 'matching neither row: nothing');

  // Masked: a merchant sees id, merchant_id and status of its orders.
  const reassigned = eventOf({ ...ORDER, merchant_id: 'm2' }, { event: 'update', old: { merchant_id: 'm1' }, changed: ['merchant_id'] });
  t.same(
    render(leavingAccessOf('merchant', { merchant_id: 'm1' }), reassigned),
    { type: 'left', topic: 'orders', cursor: reassigned.cursor, ts: reassigned.ts, data: { id: 'o1', merchant_id: 'm1', status: 'new' } },
    'the previous row within the mask',
  );

  t.equal(render(leavingAccessOf('hospital', { hospital_id: 'H7' }), eventOf({ ...ORDER, hospital_id: 'H8' })), null, 'an insert elsewhere is no leave');
  t.equal(render(leavingAccessOf('hospital', { hospital_id: 'H8' }), remove), null, 'nor a delete elsewhere');
  t.equal(
    render(leavingAccessOf('hospital', { hospital_id: 'H7' }), eventOf({ merchant_id: 'm1', note: 'x' }, { event: 'update' })),
    null,
    'nor an event without old (relay.publish may name one update)',
  );
  t.equal(render(leavingAccessOf('admin', {}, { driver_id: { claim: 'sub' } }), paid), null, 'nor for a filter that can match nothing');

  // Events appended by hand (relay.append_event) may carry any old and changed.
  const unlisted = eventOf(
    { ...ORDER, hospital_id: 'H8', note: 'H8 only' },
    { event: 'update', old: { hospital_id: 'H7' }, changed: ['hospital_id', 'note'] },
  );
  t.notMatch(JSON.stringify(render(leavingAccessOf('hospital', { hospital_id: 'H7' }), unlisted)), /H8/, 'a changed column missing from old is left out, not taken from the new row');
  t.equal(
    render(leavingAccessOf('hospital', { hospital_id: 'H7' }), { ...transfer, event: 'reassigned' }),
    null,
    'only an update sends a left frame',
  );
});

t.test('a left frame writes the previous row exactly: long numbers as they came, __proto__ as a column', async (t) => {
  const { parseJsonExactly } = await import('../../src/exact-json.ts');
  const data = parseJsonExactly('{"id":"o1","hospital_id":"H8","snowflake":1234567890123456789,"__proto__":{"x":1}}') as Record<string, unknown>;
  const old = parseJsonExactly('{"hospital_id":"H7","total":12345678901234567890.5}') as Record<string, unknown>;
  const event = deepFreeze(eventOf(data, { event: 'update', old, changed: ['hospital_id', 'total'] }));
  const frame = renderEvent(leavingAccessOf('hospital', { hospital_id: 'H7' }), event, new Map());
  t.equal(
    frame,
    `{"type":"left","topic":"orders","cursor":"${event.cursor}","ts":"${event.ts}",` +
      '"data":{"id":"o1","hospital_id":"H7","snowflake":1234567890123456789,"__proto__":{"x":1},"total":12345678901234567890.5}}',
  );
  t.equal(({} as Record<string, unknown>)['x'], undefined, 'no prototype was polluted');
});
