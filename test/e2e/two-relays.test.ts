// Contract section 3: "Cursors are opaque strings, valid on any relay serving the same database."
// Two relays on one database deliver the same live events with the same cursors, and a client
// that moves from one to the other with its last cursor gets exactly the rest.
import t from 'tap';
import { createTestDatabase } from '../helpers/database.ts';
import { asFrame, describeDifference, eventsUntil, readLog, withoutTs } from '../helpers/event-log.ts';
import { nextFrame, subscribe } from '../helpers/frames.ts';
import { startTestRelay, type TestRelay } from '../helpers/relay.ts';
import type { Frame, TestClient } from '../helpers/ws-client.ts';

const ADMIN = { role: 'admin', sub: 'admin-1' };
const dataOf = (frame: Frame): Record<string, unknown> => frame.data as Record<string, unknown>;
const idIs = (id: string) => (frame: Frame): boolean => dataOf(frame).id === id;

async function subscribed(client: TestClient, topic: string, extra: Record<string, unknown> = {}): Promise<void> {
  const reply = await subscribe(client, topic, extra);
  if (reply.type !== 'subscribed') throw new Error(`subscribe ${topic} ${JSON.stringify(extra)}: the relay answered ${JSON.stringify(reply)}`);
}

async function insertOrder(relay: TestRelay, id: string): Promise<void> {
  await relay.db.pool.query(`insert into orders (id, hospital_id, status) values ($1, 'H1', 'placed')`, [id]);
}

t.test('two relays on one database: the same events with the same cursors, and a cursor of one resumes on the other', async (t) => {
  const db = await createTestDatabase(t);
  const a = await startTestRelay(t, {}, db);
  const b = await startTestRelay(t, {}, db);
  const onA = await a.connect(ADMIN);
  const onB = await b.connect(ADMIN);
  await subscribed(onA, 'orders');
  await subscribed(onB, 'orders');

  // Concurrent writers, transactions of one to three rows, updates among them.
  await Promise.all(
    [0, 1, 2, 3].map(async (worker) => {
      const client = await db.pool.connect();
      try {
        for (let i = 0; i < 30; i++) {
          await client.query('begin');
          for (let j = 0; j <= (i + worker) % 3; j++) {
            await client.query(`insert into orders (id, hospital_id, status) values ($1, 'H1', 'placed')`, [`w${worker}-${i}-${j}`]);
          }
          if (i % 5 === 4) await client.query(`update orders set status = 'ready' where id = $1`, [`w${worker}-${i - 1}-0`]);
          await client.query('commit');
        }
      } finally {
        client.release();
      }
    }),
  );
  const log = await readLog(db.pool, 'orders');
  const lastCursor = log.at(-1)!.cursor;
  const [fromA, fromB] = await Promise.all(
    [onA, onB].map((client, i) => eventsUntil(client, 'orders', (frame) => frame.cursor === lastCursor, `relay ${'AB'[i]} delivering every order`)),
  );
  t.equal(describeDifference(fromA!.map((frame) => String(frame.cursor)), log.map((event) => event.cursor)), 'identical', 'relay A delivers the log, in order');
  t.strictSame(fromB, fromA, 'relay B delivers the same frames as relay A: same events, same cursors, same times');
  t.strictSame(fromA!.map(withoutTs), log.map(asFrame), 'and they are the logged events');

  // A client moves: its last cursor from one relay, resumed on the other.
  const cursors = fromA!.map((frame) => String(frame.cursor));
  const picks = cursors.filter((_, index) => index % 9 === 0 || index === cursors.length - 1);
  const movers = await Promise.all([0, 1, 2, 3].map(() => b.connect(ADMIN)));
  const backMovers = await Promise.all([0, 1, 2, 3].map(() => a.connect(ADMIN)));
  const failures: string[] = [];
  for (let start = 0; start < picks.length; start += movers.length) {
    const batch = picks.slice(start, start + movers.length);
    // Half of them go from A to B, the other half back, from B's cursor to A.
    const clients = batch.map((_, i) => (i % 2 === 0 ? movers[i]! : backMovers[i]!));
    await Promise.all(batch.map((cursor, i) => subscribed(clients[i]!, 'orders', { since: cursor })));
    const sentinel = `sentinel-${start}`;
    await insertOrder(a, sentinel);
    const got = await Promise.all(batch.map((cursor, i) => eventsUntil(clients[i]!, 'orders', idIs(sentinel), `resuming from ${cursor} on relay ${i % 2 === 0 ? 'B' : 'A'}`)));
    const now = await readLog(db.pool, 'orders');
    for (const [i, cursor] of batch.entries()) {
      const expected = now.slice(now.findIndex((event) => event.cursor === cursor) + 1).map((event) => event.cursor);
      const difference = describeDifference(got[i]!.map((frame) => String(frame.cursor)), expected);
      if (difference !== 'identical') failures.push(`a cursor of relay ${i % 2 === 0 ? 'A resumed on B' : 'B resumed on A'} (${cursor}): ${difference}`);
    }
    await Promise.all(
      clients.map(async (client) => {
        client.send({ type: 'unsubscribe', topic: 'orders' });
        const reply = await nextFrame(client, 'the reply to unsubscribe');
        if (reply.type !== 'unsubscribed') failures.push(`unsubscribe: ${JSON.stringify(reply)}`);
      }),
    );
  }
  t.strictSame(failures, [], `each of ${picks.length} moves between relays gets exactly the events after its cursor`);

  // A cursor fresh from A, resumed on B at once: B may not have delivered that event itself yet.
  // The client must get what follows it, from B, and nothing before.
  const hopper = await b.connect(ADMIN);
  const scout = await a.connect(ADMIN);
  await subscribed(scout, 'orders');
  const racing: string[] = [];
  for (let round = 0; round < 25; round++) {
    await insertOrder(a, `race-${round}`);
    const seen = (await eventsUntil(scout, 'orders', idIs(`race-${round}`), `relay A delivering race-${round}`)).at(-1)!;
    await subscribed(hopper, 'orders', { since: seen.cursor });
    await insertOrder(a, `race-${round}-next`);
    const first = await nextFrame(hopper, `relay B delivering what follows race-${round}`);
    if (dataOf(first).id !== `race-${round}-next`) racing.push(`round ${round}: after race-${round}, relay B sent ${JSON.stringify(first)}`);
    hopper.send({ type: 'unsubscribe', topic: 'orders' });
    const reply = await nextFrame(hopper, 'the reply to unsubscribe');
    if (reply.type !== 'unsubscribed') racing.push(`round ${round}: before unsubscribed, relay B sent ${JSON.stringify(reply)}`);
  }
  t.strictSame(racing, [], 'a cursor that relay B may not have reached yet resumes there with exactly the next event');

  // Both live streams stayed identical through all of it.
  const finalLog = await readLog(db.pool, 'orders');
  const end = finalLog.at(-1)!.cursor;
  const [restA, restB] = await Promise.all(
    [onA, onB].map((client, i) => eventsUntil(client, 'orders', (frame) => frame.cursor === end, `relay ${'AB'[i]} delivering the rest`)),
  );
  t.strictSame(restB, restA, 'relays A and B kept delivering the same frames');
  t.equal(
    describeDifference(
      [...fromA!, ...restA!].map((frame) => String(frame.cursor)),
      finalLog.map((event) => event.cursor),
    ),
    'identical',
    `relay A's live subscriber received the whole log once, in order (${finalLog.length} events)`,
  );
});
