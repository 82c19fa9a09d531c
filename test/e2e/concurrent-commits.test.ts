// Committers draw positions without waiting for each other, so a higher position can become
// visible before a lower one, and a drawn position can be rolled back. Subscribers must still get
// every event once, in position order, with no wait for a position that will never come.
import t from 'tap';
import { waitOrFinish } from '../helpers/backend-waits.ts';
import { drawPositionEarly, relayWaitsForCommitters } from '../helpers/early-position.ts';
import { guarded } from '../helpers/guard.ts';
import { watchLogLines } from '../helpers/log-lines.ts';
import { scrapeMetrics } from '../helpers/metrics.ts';
import { createRandom, seedFrom } from '../helpers/random.ts';
import { startTestRelay, type TestRelay } from '../helpers/relay.ts';
import type { Frame, TestClient } from '../helpers/ws-client.ts';

async function adminOnOrders(relay: TestRelay): Promise<TestClient> {
  const admin = await relay.connect({ role: 'admin', sub: 'a' });
  admin.send({ type: 'subscribe', topic: 'orders' });
  await admin.next((frame) => frame.type === 'subscribed');
  return admin;
}

const orderIds = (frames: readonly Frame[]): unknown[] => frames.map((frame) => (frame.data as { id: string }).id);

t.test('a position drawn first and committed last is delivered first, and its writer blocked nobody', async (t) => {
  const relay = await startTestRelay(t);
  const admin = await adminOnOrders(relay);
  const early = await drawPositionEarly(relay.db.pool, t, 'drawn-first');
  // Before this design the early stamp held a lock that this commit would wait for.
  await relay.db.pool.query(`insert into orders (id, hospital_id, status) values ('committed-first', 'H1', 'new')`);
  // The relay has seen the later position and holds it back until the earlier one is settled.
  await relayWaitsForCommitters(relay.db.pool);
  await early.query('commit');
  const frames = [await admin.next((f) => f.type === 'event'), await admin.next((f) => f.type === 'event')];
  t.same(orderIds(frames), ['drawn-first', 'committed-first'], 'position order, not visibility order');
});

/** A table whose rows make their transaction fail at commit, after the commit stamp has drawn its position. */
async function createDoomedTable(relay: TestRelay): Promise<void> {
  await relay.db.pool.query(`
    create table doomed (id int);
    create function refuse() returns trigger language plpgsql as $$
    begin raise exception 'refused at commit'; end $$;
    create constraint trigger refuse after insert on doomed deferrable initially deferred
      for each row execute function refuse();`);
}

t.test('a position rolled back after it was drawn does not hold back the commits after it', async (t) => {
  const relay = await startTestRelay(t);
  const admin = await adminOnOrders(relay);
  await createDoomedTable(relay);
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

t.test('a transaction that writes a row at commit, after waiting for its lock, is delivered after the one that held it', async (t) => {
  // An application's deferred trigger, fired at commit after the commit stamp, updates a row that
  // another transaction holds. Its transaction drew a position before that one committed, and
  // draws a new one for the row it writes afterwards: subscribers must end on the row as the
  // table holds it, and the position it left behind must not hold back delivery.
  const relay = await startTestRelay(t);
  await relay.db.pool.query(`
    create table audit_requests (order_id text);
    create function audit_order() returns trigger language plpgsql as $$
    begin
      update orders set status = 'audited' where id = NEW.order_id;
      return null;
    end $$;
    create constraint trigger audit_order after insert on audit_requests
      deferrable initially deferred for each row execute function audit_order();`);
  const admin = await adminOnOrders(relay);
  await relay.db.pool.query(`insert into orders (id, hospital_id, status) values ('x1', 'H1', 'new'), ('x2', 'H1', 'new')`);
  for (let i = 0; i < 2; i++) await admin.next((f) => f.type === 'event' && f.event === 'insert');
  const auditor = await relay.db.pool.connect();
  t.teardown(() => auditor.release());
  const canceller = await relay.db.pool.connect();
  t.teardown(() => canceller.release());
  const { rows: auditorBackend } = await auditor.query<{ pid: number }>('select pg_backend_pid() as pid');
  await auditor.query('begin');
  await auditor.query(`update orders set status = 'shipped' where id = 'x1'`);
  await auditor.query(`insert into audit_requests values ('x2')`);
  await canceller.query('begin');
  await canceller.query(`update orders set status = 'cancelled' where id = 'x2'`);
  const audited = auditor.query('commit');
  t.equal(
    await waitOrFinish(relay.db.pool, auditorBackend[0]!.pid, audited, ['Lock']),
    'Lock',
    'the audit, at commit, waits for the cancelling transaction',
  );
  await canceller.query('commit');
  await audited;
  const frames: Frame[] = [];
  while (frames.length < 3) frames.push(await admin.next((f) => f.type === 'event'));
  const { rows } = await relay.db.pool.query<{ status: string }>(`select status from orders where id = 'x2'`);
  const x2 = frames.filter((frame) => (frame.data as { id: string }).id === 'x2').map((frame) => (frame.data as { status: string }).status);
  t.same(x2, ['cancelled', 'audited'], 'x2 as it was changed: cancelled, then audited by the transaction that waited');
  t.equal(x2.at(-1), rows[0]?.status, 'the subscriber ends on the value the table holds');
  t.same(orderIds(frames), ['x2', 'x1', 'x2'], "the auditing transaction's events together, after the cancel");
});

t.test('a committer that saw the bell disarmed and committed after the relay read is still delivered', async (t) => {
  const relay = await startTestRelay(t);
  const admin = await adminOnOrders(relay);
  // The first looks at the armed bell, disarms it and will notify at its commit; the second then
  // finds it disarmed and will not notify.
  const first = await drawPositionEarly(relay.db.pool, t, 'notifies');
  const second = await drawPositionEarly(relay.db.pool, t, 'silent');
  await first.query('commit');
  t.match(await admin.next((f) => f.type === 'event'), { data: { id: 'notifies' } });
  // The relay has read the log and armed the bell again; nothing will notify this commit.
  await second.query('commit');
  t.match(await admin.next((f) => f.type === 'event'), { data: { id: 'silent' } }, 'found without a notification');
});

t.test('a position committed while the relay waits for a later one left open is delivered without waiting for it', async (t) => {
  const relay = await startTestRelay(t);
  const admin = await adminOnOrders(relay);
  const lower = await drawPositionEarly(relay.db.pool, t, 'lower');
  const higher = await drawPositionEarly(relay.db.pool, t, 'higher, left open');
  // Both are drawn and neither is visible: the relay waits for committers, both of them.
  await relayWaitsForCommitters(relay.db.pool);
  await lower.query('commit');
  // The lower position holds back nothing of the higher one's: it goes out while that stays open.
  const frame = await guarded(admin.next((f) => f.type === 'event'), 10_000, 'the lower position, with the higher one still open');
  t.match(frame, { data: { id: 'lower' } });
  await higher.query('commit');
  t.match(await admin.next((f) => f.type === 'event'), { data: { id: 'higher, left open' } });
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

t.test('writers side by side, some rolled back after drawing a position, some drawing early: exactly the committed events, in position order', async (t) => {
  const seed = seedFrom(process.env.RELAY_CONCURRENT_SEED);
  t.comment(`seed ${seed} (RELAY_CONCURRENT_SEED replays it)`);
  const random = createRandom(seed);
  const relay = await startTestRelay(t);
  const admin = await adminOnOrders(relay);
  await createDoomedTable(relay);
  const writers = 6;
  const each = 25;
  const plans = Array.from({ length: writers }, (_, w) =>
    Array.from({ length: each }, (_, i) => ({ id: `w${w}-${i}`, fails: random.chance(0.3), early: random.chance(0.2) })),
  );
  const rolledBack = new Set<string>();
  await Promise.all(
    plans.map(async (plan) => {
      const client = await relay.db.pool.connect();
      try {
        for (const { id, fails, early } of plan) {
          await client.query('begin');
          if (early) await client.query('set constraints all immediate');
          await client.query(`insert into orders (id, hospital_id, status) values ($1, 'H1', 'new')`, [id]);
          // Let the other writers run while this one holds a drawn position (early) or not.
          await new Promise<void>((resolve) => setImmediate(resolve));
          if (fails) {
            if (early) await client.query('set constraints all deferred');
            await client.query('insert into doomed values (1)');
          }
          const committed = await client.query('commit').then(
            () => true,
            async () => {
              await client.query('rollback').catch(() => undefined);
              return false;
            },
          );
          if (!committed) rolledBack.add(id);
        }
      } finally {
        client.release();
      }
    }),
  );
  t.ok(rolledBack.size > 0, `${rolledBack.size} transactions rolled back at commit`);
  const { rows } = await relay.db.pool.query<{ id: string }>(
    `select e.data->>'id' as id from relay.commits c join relay.events e using (xid)
      where e.topic = 'orders' order by c.pos, e.id`,
  );
  t.equal(rows.length, writers * each - rolledBack.size, 'the log holds every committed order');
  const frames: Frame[] = [];
  while (frames.length < rows.length) frames.push(await admin.next((f) => f.type === 'event'));
  t.same(orderIds(frames), rows.map((row) => row.id), 'exactly the log, in position order, nothing rolled back');
});

t.test('a relay stops while a transaction that drew its position early stays open', async (t) => {
  const relay = await startTestRelay(t);
  await adminOnOrders(relay);
  const early = await drawPositionEarly(relay.db.pool, t, 'left-open');
  await relay.db.pool.query(`insert into orders (id, hospital_id, status) values ('later', 'H1', 'new')`);
  await relayWaitsForCommitters(relay.db.pool);
  // The relay waits for committers in turns of a second, and a stop ends the wait between them.
  await guarded(relay.stop(), 5_000, 'the relay stopping while the writer stays open');
  t.pass('stopped, the writer still open');
  await early.query('rollback');
});

t.test('live delivery held back by an open transaction that drew its position early is logged as a warning', async (t) => {
  const relay = await startTestRelay(t);
  const logs = watchLogLines(relay.logLines);
  const admin = await adminOnOrders(relay);
  const early = await drawPositionEarly(relay.db.pool, t, 'left-open');
  await relay.db.pool.query(`insert into orders (id, hospital_id, status) values ('later', 'H1', 'new')`);
  const line = await logs.waitFor((l) => String(l.msg).startsWith('live delivery waits for a transaction that drew its commit position'), {
    timeoutMs: 20_000,
    what: 'the warning',
  });
  t.match(line, { level: 40, seconds: 5 }, 'a warning, after five seconds of waiting');
  t.ok((await heldBackSeconds(relay)) >= 5, 'relay_live_delivery_held_back_seconds shows the wait too, for an alert');
  await early.query('rollback');
  await admin.next((frame) => frame.type === 'event' && (frame.data as { id: string }).id === 'later');
  t.equal(await heldBackSeconds(relay), 0, 'and is 0 once nothing is missing');
});

/** The relay_live_delivery_held_back_seconds gauge, from GET /metrics. */
async function heldBackSeconds(relay: TestRelay): Promise<number> {
  const sample = (await scrapeMetrics(relay)).samples.get('relay_live_delivery_held_back_seconds');
  if (sample === undefined) throw new Error('no relay_live_delivery_held_back_seconds sample');
  return sample;
}
