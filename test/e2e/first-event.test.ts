import t from 'tap';
import { startTestRelay } from '../helpers/relay.ts';

t.test('an INSERT reaches the subscriber whose grant matches, and only it', async (t) => {
  const relay = await startTestRelay(t);
  const h1 = await relay.connect({ role: 'hospital', sub: 'u1', hospital_id: 'H1' });
  const h2 = await relay.connect({ role: 'hospital', sub: 'u2', hospital_id: 'H2' });
  t.same(h1.welcome, { type: 'welcome', role: 'hospital', sub: 'u1', exp: h1.welcome.exp });
  for (const client of [h1, h2]) {
    client.send({ type: 'subscribe', topic: 'orders', ref: 1 });
    t.same(await client.next(), { type: 'subscribed', topic: 'orders', ref: 1 });
  }
  await relay.db.pool.query(`insert into orders (id, hospital_id, customer_id, status) values ('o1', 'H1', 'c1', 'new')`);
  await relay.db.pool.query(`insert into orders (id, hospital_id, customer_id, status) values ('o2', 'H2', 'c2', 'new')`);
  const first = await h1.next();
  t.match(first, { type: 'event', topic: 'orders', event: 'insert', data: { id: 'o1', hospital_id: 'H1', status: 'new' } });
  t.type(first.cursor, 'string');
  t.ok(!Number.isNaN(Date.parse(String(first.ts))), 'ts is an ISO time');
  const second = await h2.next();
  t.match(second, { type: 'event', data: { id: 'o2' } }, 'H2 gets its own order and not H1 order');
});
