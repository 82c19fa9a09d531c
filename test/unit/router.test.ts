import t from 'tap';
import type { Claims, Grant } from '../../src/events.ts';
import { compileAccess, renderEvent, type Access } from '../../src/routing/access.ts';
import { createRouter } from '../../src/routing/router.ts';
import { GRANTS, eventOf, filterOf } from './fixtures.ts';

function accessOf(role: string, claims: Claims, clientFilter: unknown = null, topic = 'orders', grants: readonly Grant[] = GRANTS): Access {
  const result = compileAccess({ topic, role, grants, claims, clientFilter: clientFilter === null ? null : filterOf(clientFilter) });
  if (!result.ok) throw new Error(`expected access, got forbidden: ${result.message}`);
  return result.access;
}

/** A router whose renderEvent records which classes (by access key) route() examined. */
function countingRouter() {
  const examined: string[] = [];
  const router = createRouter({
    renderEvent: (access, event, cache) => {
      examined.push(access.key);
      return renderEvent(access, event, cache);
    },
  });
  return { router, examined };
}

t.test('route() examines only the classes an event can match', async (t) => {
  const { router, examined } = countingRouter();
  const hospitals = Array.from({ length: 1000 }, (_, i) => accessOf('hospital', { hospital_id: `H${i}` }));
  const channels = hospitals.map((access) => router.join(access));
  const admin = accessOf('admin', {});
  const adminChannel = router.join(admin);
  t.same(router.stats(), { classes: 1001, subscribers: 1001 });
  t.equal(new Set(channels).size, 1000, 'one channel per hospital');

  const routed = router.route(eventOf({ id: 'o1', hospital_id: 'H7', status: 'new' }));
  t.same(examined.sort(), [hospitals[7]?.key, admin.key].sort(), 'only the H7 class and the unindexed admin class');
  t.same(routed.map(([channel]) => channel).sort(), [channels[7], adminChannel].sort());

  examined.length = 0;
  t.same(router.route(eventOf({ id: 'o2', hospital_id: 'H99999' })).map(([channel]) => channel), [adminChannel]);
  t.same(examined, [admin.key], 'an unknown hospital wakes only the admin class');

  examined.length = 0;
  t.same(router.route(eventOf({ id: 'o3', hospital_id: 'H7' }, { topic: 'inventory' })), []);
  t.same(examined, [], 'another topic examines nothing');
});

t.test('the client filter narrows a class to its own keys', async (t) => {
  const { router, examined } = countingRouter();
  const d1 = accessOf('admin', {}, { driver_id: 'd1' });
  const nullDriver = accessOf('admin', {}, { driver_id: null });
  const d1Channel = router.join(d1);
  const nullChannel = router.join(nullDriver);
  t.same(router.route(eventOf({ driver_id: 'd2' })), []);
  t.same(examined, [], 'no class is examined for d2');
  t.same(router.route(eventOf({ driver_id: 'd1' })).map(([channel]) => channel), [d1Channel]);
  t.same(
    router.route(eventOf({ id: 'o1' })).map(([channel]) => channel),
    [nullChannel],
    'a missing column is routed like null',
  );
  t.same(router.route(eventOf({ driver_id: { id: 'd1' } })), [], 'non-scalar values hit no key');
  router.join(accessOf('admin', {}, { driver_id: { claim: 'sub' } }));
  examined.length = 0;
  router.route(eventOf({ driver_id: null }));
  t.same(examined, [nullDriver.key], 'a match-nothing class is never examined');
});

t.test('a class whose alternatives are not all indexed is examined for every event', async (t) => {
  const grants: Grant[] = [
    { topic: 'orders', role: 'ops', filter: { hospital_id: { claim: 'hid' } }, columns: null },
    { topic: 'orders', role: 'ops', filter: { total: { gt: 1000 } }, columns: null },
    { topic: 'orders', role: 'pair', filter: { hospital_id: { claim: 'hid' } }, columns: null },
    { topic: 'orders', role: 'pair', filter: { merchant_id: 'm1' }, columns: null },
  ];
  const { router, examined } = countingRouter();
  const opsChannel = router.join(accessOf('ops', { hid: 'H1' }, null, 'orders', grants));
  const pairChannel = router.join(accessOf('pair', { hid: 'H1' }, null, 'orders', grants));
  t.same(router.route(eventOf({ hospital_id: 'H2', total: 5000 })).map(([channel]) => channel), [opsChannel]);
  t.equal(examined.length, 1, 'the indexed pair class is not examined');
  examined.length = 0;
  t.same(router.route(eventOf({ hospital_id: 'H2', merchant_id: 'm1' })).map(([channel]) => channel), [pairChannel]);
  t.equal(examined.length, 2, 'the unindexed ops class is examined even when it does not match');
  examined.length = 0;
  t.same(router.route(eventOf({ hospital_id: 'H1', merchant_id: 'm1' })).length, 2);
  t.equal(examined.length, 2, 'a class hit by two keys is examined once');
});

t.test('membership in an array claim', async (t) => {
  const { router, examined } = countingRouter();
  const m12 = router.join(accessOf('merchant', { merchant_ids: ['m1', 'm2'] }, null, 'inventory'));
  const m3 = router.join(accessOf('merchant', { merchant_ids: ['m3'] }, null, 'inventory'));
  const stock = (merchant_id: string) => eventOf({ id: 'i1', merchant_id, quantity: 2 }, { topic: 'inventory', event: 'low_stock' });
  t.same(router.route(stock('m2')).map(([channel]) => channel), [m12]);
  t.same(router.route(stock('m3')).map(([channel]) => channel), [m3]);
  examined.length = 0;
  t.same(router.route(stock('m4')), []);
  t.same(examined, [], 'no merchant class is examined for m4');
});

t.test('classes with the same mask get the very same frame', async (t) => {
  const router = createRouter();
  router.join(accessOf('admin', {}));
  router.join(accessOf('hospital', { hospital_id: 'H7' }));
  router.join(accessOf('merchant', { merchant_id: 'm1' }));
  router.join(accessOf('merchant', { merchant_id: 'm1' }, { status: 'new' }));
  const routed = router.route(eventOf({ id: 'o1', hospital_id: 'H7', merchant_id: 'm1', status: 'new', total: 1 }));
  t.equal(routed.length, 4);
  const frames = new Set(routed.map(([, frame]) => frame));
  t.equal(frames.size, 2, 'two masks: all columns, and the merchant columns');
  const full = routed.filter(([, frame]) => frame.includes('"total"'));
  t.equal(full.length, 2);
  t.ok(full[0]?.[1] === full[1]?.[1]);
});

t.test('subscribers are ref-counted per class', async (t) => {
  const { router, examined } = countingRouter();
  const first = router.join(accessOf('hospital', { hospital_id: 'H7', sub: 'a' }));
  const second = router.join(accessOf('hospital', { hospital_id: 'H7', sub: 'b' }));
  t.equal(first, second, 'equivalent accesses share a channel');
  t.same(router.stats(), { classes: 1, subscribers: 2 });
  router.leave(first);
  t.same(router.stats(), { classes: 1, subscribers: 1 });
  t.equal(router.route(eventOf({ hospital_id: 'H7' })).length, 1, 'still delivered to the one left');
  router.leave(first);
  t.same(router.stats(), { classes: 0, subscribers: 0 });
  router.leave(first);
  router.leave('c999');
  t.same(router.stats(), { classes: 0, subscribers: 0 }, 'leaving an unknown channel changes nothing');
  examined.length = 0;
  t.same(router.route(eventOf({ hospital_id: 'H7' })), []);
  t.same(examined, [], 'a dropped class is not examined');
  const again = router.join(accessOf('hospital', { hospital_id: 'H7' }));
  t.not(again, first, 'a new class gets a new channel');
  t.equal(router.route(eventOf({ hospital_id: 'H7' }))[0]?.[0], again);
});

t.test('dropping one class keeps the others indexed', async (t) => {
  const router = createRouter();
  const h7 = router.join(accessOf('hospital', { hospital_id: 'H7' }));
  const alsoH7 = router.join(accessOf('hospital', { hospital_id: 'H7' }, { status: { ne: 'x' } }));
  const h8 = router.join(accessOf('hospital', { hospital_id: 'H8' }));
  router.leave(h7);
  t.same(router.route(eventOf({ hospital_id: 'H7' })).map(([channel]) => channel), [alsoH7]);
  t.same(router.route(eventOf({ hospital_id: 'H8' })).map(([channel]) => channel), [h8]);
});

t.test('hasTopic: a topic is known while any class of it has a subscriber, indexed or not', async (t) => {
  const router = createRouter();
  t.equal(router.hasTopic('orders'), false, 'an empty router knows no topic');
  const h1 = router.join(accessOf('hospital', { hospital_id: 'H1' }));
  const admin = router.join(accessOf('admin', {}));
  const sameH1 = router.join(accessOf('hospital', { hospital_id: 'H1' }));
  t.equal(sameH1, h1, 'a second subscriber of the H1 class');
  t.equal(router.hasTopic('orders'), true);
  t.equal(router.hasTopic('inventory'), false, 'another topic is not');
  router.leave(admin);
  t.equal(router.hasTopic('orders'), true, 'the unindexed class gone, the indexed one stays');
  router.leave(h1);
  t.equal(router.hasTopic('orders'), true, 'one subscriber of the H1 class is left');
  router.leave(sameH1);
  t.equal(router.hasTopic('orders'), false, 'the last subscriber gone');
  router.leave(sameH1);
  t.equal(router.hasTopic('orders'), false, 'a double leave changes nothing');
  t.same(router.stats(), { classes: 0, subscribers: 0 });
});

// A class that asked for `left` frames is indexed by its hospital like the rest: an order that moves
// from H1 to H2 carries H2 in its data and H1 only in its previous values, which route() looks up
// for such classes (and for them alone).
t.test('an update reaches the classes asking for leaves that its previous row matched', async (t) => {
  const { router, examined } = countingRouter();
  const leavingH1 = compileAccess({ topic: 'orders', role: 'hospital', grants: GRANTS, claims: { hospital_id: 'H1' }, clientFilter: null, leaves: true });
  if (!leavingH1.ok) throw new Error(leavingH1.message);
  const h1Channel = router.join(leavingH1.access);
  const plainH1 = accessOf('hospital', { hospital_id: 'H1' });
  router.join(plainH1);
  const h2Channel = router.join(accessOf('hospital', { hospital_id: 'H2' }));
  t.not(leavingH1.access.key, plainH1.key, 'asking for leaves is a class of its own');

  const moved = eventOf({ id: 'o1', hospital_id: 'H2', status: 'new' }, { event: 'update', old: { hospital_id: 'H1' }, changed: ['hospital_id'] });
  const routed = router.route(moved);
  t.same(routed.map(([channel]) => channel).sort(), [h1Channel, h2Channel].sort(), 'H2 gets the update, H1 (asking) its left frame');
  t.match(routed.find(([channel]) => channel === h1Channel)?.[1], /^\{"type":"left"/);
  t.notOk(examined.includes(plainH1.key), 'the H1 class not asking for leaves is not even examined');

  examined.length = 0;
  router.route(eventOf({ id: 'o2', hospital_id: 'H2', status: 'paid' }, { event: 'update', old: { status: 'new' }, changed: ['status'] }));
  t.notOk(examined.includes(leavingH1.access.key), 'an update that did not change the hospital does not look up H1');
});
