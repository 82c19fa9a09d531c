// `"leaves": true` on a subscribe: an update that takes a row out of the subscription's view, by its
// grants (an order transferred to another hospital) or by its own filter (an order no longer
// `placed`), reaches it as a `left` frame with the previous row as it was allowed to see it. Live
// and replayed alike, and a left frame's cursor resumes like any other.
import t from 'tap';
import { eventsUntil } from '../helpers/event-log.ts';
import { framesBeforePong, nextFrame, subscribe } from '../helpers/frames.ts';
import { startTestRelay } from '../helpers/relay.ts';
import type { Frame, TestClient } from '../helpers/ws-client.ts';

/** Each frame as [`left` or its event, its order's id]. */
const ordersOf = (frames: readonly Frame[]): unknown[] => frames.map((frame) => [frame.type === 'left' ? 'left' : frame.event, (frame.data as { id: string }).id]);

/** The next frames up to and including the one `last` picks: events and left frames, nothing else. */
async function framesUntil(client: TestClient, last: (frame: Frame) => boolean, what: string): Promise<Frame[]> {
  const frames: Frame[] = [];
  for (;;) {
    const frame = await nextFrame(client, `${what} (after ${frames.length} frames)`);
    if (frame.type !== 'event' && frame.type !== 'left') throw new Error(`${what}: unexpected ${JSON.stringify(frame)}`);
    frames.push(frame);
    if (last(frame)) return frames;
  }
}

t.test('left frames, live and replayed, for grants and for a filter; nothing for a subscription that did not ask', async (t) => {
  const relay = await startTestRelay(t);
  const h1 = await relay.connect({ role: 'hospital', sub: 'n1', hospital_id: 'H1' });
  const h1Plain = await relay.connect({ role: 'hospital', sub: 'n1b', hospital_id: 'H1' });
  const placedOnly = await relay.connect({ role: 'admin', sub: 'a1' });
  t.match(await subscribe(h1, 'orders', { leaves: true }), { type: 'subscribed' });
  t.match(await subscribe(h1Plain, 'orders'), { type: 'subscribed' });
  t.match(await subscribe(placedOnly, 'orders', { leaves: true, filter: { status: 'placed' } }), { type: 'subscribed' });
  const pool = relay.db.pool;
  // A first order, whose cursor the replay below starts after.
  await pool.query(`insert into orders (id, hospital_id, status) values ('start', 'H1', 'placed')`);
  const isStart = (frame: Frame): boolean => (frame.data as { id: string }).id === 'start';
  const [startFrame] = await framesUntil(h1, isStart, 'the first order');
  await framesUntil(h1Plain, isStart, 'the first order');
  await framesUntil(placedOnly, isStart, 'the first order');

  await pool.query(`insert into orders (id, hospital_id, status, rider) values ('o1', 'H1', 'placed', '{"note": "H1 only"}')`);
  await pool.query(`update orders set hospital_id = 'H2', rider = '{"note": "H2 only"}' where id = 'o1'`);
  await pool.query(`update orders set status = 'accepted' where id = 'o1'`);
  await pool.query(`insert into orders (id, hospital_id, status) values ('end', 'H1', 'placed')`);

  const atH1 = await framesUntil(h1, (frame) => (frame.data as { id: string }).id === 'end', 'H1 with leaves');
  t.same(ordersOf(atH1), [['insert', 'o1'], ['left', 'o1'], ['insert', 'end']], 'H1: the insert, its left frame, then nothing of H2');
  t.match(atH1[1], { type: 'left', topic: 'orders', data: { id: 'o1', hospital_id: 'H1', rider: { note: 'H1 only' } } }, 'the previous row as H1 saw it');
  t.notMatch(JSON.stringify(atH1[1]), /H2/, 'nothing of the new row');
  t.type(atH1[1]!.cursor, 'string');

  const atPlain = await framesUntil(h1Plain, (frame) => (frame.data as { id: string }).id === 'end', 'H1 without leaves');
  t.same(ordersOf(atPlain), [['insert', 'o1'], ['insert', 'end']], 'no left frame for a subscription that did not ask');

  const atPlaced = await framesUntil(placedOnly, (frame) => (frame.data as { id: string }).id === 'end', 'placed orders with leaves');
  t.same(
    ordersOf(atPlaced),
    [['insert', 'o1'], ['update', 'o1'], ['left', 'o1'], ['insert', 'end']],
    'placed orders: the transfer is an update (still placed), accepting it a left frame',
  );
  t.match(atPlaced[2], { data: { id: 'o1', status: 'placed', hospital_id: 'H2' } });
  t.same(await framesBeforePong(h1), [], 'nothing else is pending at H1');

  // Replayed from the first order: the same frames, with the same cursors.
  const replaying = await relay.connect({ role: 'hospital', sub: 'n1c', hospital_id: 'H1' });
  t.match(await subscribe(replaying, 'orders', { leaves: true, since: startFrame!.cursor }), { type: 'subscribed' });
  const replayed = await framesUntil(replaying, (frame) => (frame.data as { id: string }).id === 'end', 'H1 replayed');
  t.same(replayed, atH1, 'the replay gives the same frames, cursors included');

  // A left frame's cursor resumes after it.
  const resuming = await relay.connect({ role: 'hospital', sub: 'n1d', hospital_id: 'H1' });
  t.match(await subscribe(resuming, 'orders', { leaves: true, since: atH1[1]!.cursor }), { type: 'subscribed' });
  const resumed = await eventsUntil(resuming, 'orders', (frame) => (frame.data as { id: string }).id === 'end', 'after the left frame');
  t.same(ordersOf(resumed), [['insert', 'end']], 'resumed after the left frame: only what followed it');
});
