// Committers draw positions without waiting for each other, so a higher position can become
// visible before a lower one, and a drawn position can be rolled back. Subscribers must still get
// every event once, in position order, with no wait for a position that will never come.
import type pg from 'pg';
import t from 'tap';
import { startTestRelay, type TestRelay } from '../helpers/relay.ts';
import type { Frame, TestClient } from '../helpers/ws-client.ts';

async function adminOnOrders(relay: TestRelay): Promise<TestClient> {
  const admin = await relay.connect({ role: 'admin', sub: 'a' });
  admin.send({ type: 'subscribe', topic: 'orders' });
  await admin.next((frame) => frame.type === 'subscribed');
  return admin;
}

/** A client in a transaction that has already drawn its commit position (its stamp fired early). */
async function drawPositionEarly(relay: TestRelay, t: { teardown(fn: () => unknown): void }, orderId: string): Promise<pg.PoolClient> {
  const client = await relay.db.pool.connect();
  t.teardown(() => client.release());
  await client.query('begin');
  await client.query('set constraints all immediate');
  await client.query(`insert into orders (id, hospital_id, status) values ($1, 'H1', 'new')`, [orderId]);
  return client;
}

const orderIds = (frames: readonly Frame[]): unknown[] => frames.map((frame) => (frame.data as { id: string }).id);

t.test('a position drawn first and committed last is delivered first, and its writer blocked nobody', async (t) => {
  const relay = await startTestRelay(t);
  const admin = await adminOnOrders(relay);
  const early = await drawPositionEarly(relay, t, 'drawn-first');
  // Before this design the early stamp held a lock that this commit would wait for.
  await relay.db.pool.query(`insert into orders (id, hospital_id, status) values ('committed-first', 'H1', 'new')`);
  await early.query('commit');
  const frames = [await admin.next((f) => f.type === 'event'), await admin.next((f) => f.type === 'event')];
  t.same(orderIds(frames), ['drawn-first', 'committed-first'], 'position order, not visibility order');
});

t.test('a position rolled back after it was drawn does not hold back the commits after it', async (t) => {
  const relay = await startTestRelay(t);
  const admin = await adminOnOrders(relay);
  // A deferred check that fails after the commit stamp has drawn the position.
  await relay.db.pool.query(`
    create table doomed (id int);
    create function refuse() returns trigger language plpgsql as $$
    begin raise exception 'refused at commit'; end $$;
    create constraint trigger refuse after insert on doomed deferrable initially deferred
      for each row execute function refuse();`);
  const client = await relay.db.pool.connect();
  t.teardown(() => client.release());
  await client.query('begin');
  await client.query(`insert into orders (id, hospital_id, status) values ('rolled-back', 'H1', 'new')`);
  await client.query('insert into doomed values (1)');
  await t.rejects(client.query('commit'), /refused at commit/);
  const { rows } = await relay.db.pool.query<{ drawn: string }>('select last_value as drawn from relay.commit_position');
  await relay.db.pool.query(`insert into orders (id, hospital_id, status) values ('after', 'H1', 'new')`);
  const event = await admin.next((f) => f.type === 'event');
  t.match(event, { data: { id: 'after' } }, 'the next commit arrives, and nothing of the rolled-back one');
  const { rows: after } = await relay.db.pool.query<{ pos: string }>(`select pos from relay.commits`);
  t.notOk(
    after.some((row) => row.pos === rows[0]?.drawn),
    `position ${rows[0]?.drawn} was drawn, then rolled back: the log never holds it`,
  );
});

t.test('a committer that saw the bell disarmed and committed after the relay read is still delivered', async (t) => {
  const relay = await startTestRelay(t);
  const admin = await adminOnOrders(relay);
  // The first looks at the armed bell, disarms it and will notify at its commit; the second then
  // finds it disarmed and will not notify.
  const first = await drawPositionEarly(relay, t, 'notifies');
  const second = await drawPositionEarly(relay, t, 'silent');
  await first.query('commit');
  t.match(await admin.next((f) => f.type === 'event'), { data: { id: 'notifies' } });
  // The relay has read the log and armed the bell again; nothing will notify this commit.
  await second.query('commit');
  t.match(await admin.next((f) => f.type === 'event'), { data: { id: 'silent' } }, 'found without a notification');
});

t.test('many writers committing side by side: every event once, in position order', async (t) => {
  const relay = await startTestRelay(t);
  const admin = await adminOnOrders(relay);
  const writers = 8;
  const each = 40;
  await Promise.all(
    Array.from({ length: writers }, async (_, w) => {
      for (let i = 0; i < each; i++) {
        await relay.db.pool.query(`insert into orders (id, hospital_id, status) values ($1, 'H1', 'new')`, [`w${w}-${i}`]);
      }
    }),
  );
  const frames: Frame[] = [];
  while (frames.length < writers * each) frames.push(await admin.next((f) => f.type === 'event'));
  const { rows } = await relay.db.pool.query<{ id: string }>(
    `select e.data->>'id' as id from relay.commits c join relay.events e using (xid)
      where e.topic = 'orders' order by c.pos, e.id`,
  );
  t.same(orderIds(frames), rows.map((row) => row.id), 'exactly the log, in position order');
});
