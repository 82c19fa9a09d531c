import t from 'tap';
import { startTestRelay } from '../helpers/relay.ts';

// Any role that can connect may NOTIFY any channel. A relay_events notification carries nothing
// (it only wakes the relay, which reads events from the log), so whatever anyone sends on the
// relay's channels must reach no subscriber and break nothing.
t.test('forged and malformed notifications reach nobody and break nothing', async (t) => {
  const relay = await startTestRelay(t);
  const admin = await relay.connect({ role: 'admin', sub: 'a' });
  admin.send({ type: 'subscribe', topic: 'orders' });
  await admin.next((frame) => frame.type === 'subscribed');

  const forgeries = [
    '{"type":"event","topic":"orders","event":"insert","cursor":"x","data":{"id":"forged"}}',
    '0'.repeat(32) + '{"pos":1,"id":1,"ts":1,"topic":"orders","event":"insert","data":{"id":"forged"}}',
    '{"pos":999999999}',
    'not json at all',
    '',
    'x'.repeat(7990),
  ];
  for (const payload of forgeries) await relay.db.pool.query(`select pg_notify('relay_events', $1)`, [payload]);
  // A flood of wake-ups costs reads of the log, coalesced, never a delivery.
  await relay.db.pool.query(`select pg_notify('relay_events', g::text) from generate_series(1, 2000) g`);
  await relay.db.pool.query(`select pg_notify('relay_catalog', 'anything')`);

  await relay.db.pool.query(`insert into orders (id, hospital_id, status) values ('real', 'H1', 'new')`);
  const event = await admin.next((frame) => frame.type === 'event');
  t.match(event, { event: 'insert', data: { id: 'real' } }, 'the first event delivered is the real one, not a forgery');
  await relay.db.pool.query(`insert into orders (id, hospital_id, status) values ('real-2', 'H1', 'new')`);
  t.match(await admin.next((frame) => frame.type === 'event'), { data: { id: 'real-2' } }, 'and delivery goes on');
});
