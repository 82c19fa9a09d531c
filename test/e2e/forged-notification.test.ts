import t from 'tap';
import { startTestRelay } from '../helpers/relay.ts';

// Any role that can connect may NOTIFY any channel. The relay must deliver only what the log's
// triggers signed, and survive anything else on its channels.
t.test('forged and malformed notifications reach nobody and break nothing', async (t) => {
  const relay = await startTestRelay(t);
  const admin = await relay.connect({ role: 'admin', sub: 'a' });
  admin.send({ type: 'subscribe', topic: 'orders' });
  await admin.next((frame) => frame.type === 'subscribed');

  const { rows } = await relay.db.pool.query<{ payload: string }>(
    `select relay.sign('not-the-key', p) || p as payload
       from (select '{"pos":1,"id":1,"ts":1,"topic":"orders","event":"insert","data":{"id":"forged"}}'::text as p) q`,
  );
  const forgeries = [
    rows[0]!.payload, // signed with a guessed key
    '{"pos":1,"id":1,"ts":1,"topic":"orders","event":"insert","data":{"id":"forged"}}', // unsigned
    '0'.repeat(32) + '{"pos":1,"id":1,"ts":1,"topic":"orders","event":"insert","data":{"id":"forged"}}',
    'not json at all',
    '',
    'x'.repeat(7990),
  ];
  for (const payload of forgeries) await relay.db.pool.query(`select pg_notify('relay_events', $1)`, [payload]);
  await relay.db.pool.query(`select pg_notify('relay_catalog', 'anything')`);

  await relay.db.pool.query(`insert into orders (id, hospital_id, status) values ('real', 'H1', 'new')`);
  const event = await admin.next((frame) => frame.type === 'event');
  t.match(event, { event: 'insert', data: { id: 'real' } }, 'the first event delivered is the real one, not a forgery');
  t.ok(
    relay.logLines.some((line) => line.msg === 'ignored a malformed notification'),
    'the forgeries were noticed in the log',
  );
});
