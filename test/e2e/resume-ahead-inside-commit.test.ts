// Contract section 3: `since` resumes with no gap and no duplicate, and cursors are valid on any
// relay serving the same database.
//
// A client received the first event of a three-event commit from relay A and resumes on relay B,
// whose live stream has not delivered that commit yet. Event ids are drawn as rows are written and
// commit positions at commit, so the rest of the commit has ids below the last event B delivered.
// B's replay has nothing to read before its live stream reaches the cursor: a read "through" B's
// live position, below the cursor, returned the rest of the cursor's commit, and B's live stream
// then delivered it a second time (found by a review helper).
import t from 'tap';
import { createTestDatabase } from '../helpers/database.ts';
import { nextFrame, subscribe } from '../helpers/frames.ts';
import { startTestRelay } from '../helpers/relay.ts';
import { startTcpProxy } from '../helpers/tcp-proxy.ts';
import type { Frame } from '../helpers/ws-client.ts';

const ADMIN = { role: 'admin', sub: 'admin-1' };
const idOf = (frame: Frame): string => String((frame.data as Record<string, unknown>).id);

t.test('a cursor inside a commit that relay B has not delivered yet resumes on B with the rest of that commit exactly once', async (t) => {
  const db = await createTestDatabase(t);
  db.pool.on('error', () => undefined);
  const a = await startTestRelay(t, {}, db);
  const server = new URL(db.url);
  const proxy = await startTcpProxy({ host: server.hostname, port: Number(server.port || 5432) });
  t.teardown(() => proxy.close());
  const b = await startTestRelay(t, { DATABASE_URL: proxy.urlFor(db.url) }, db);
  t.teardown(() => proxy.releaseReplies());

  const onA = await a.connect(ADMIN);
  const onB = await b.connect(ADMIN);
  t.match(await subscribe(onA, 'orders'), { type: 'subscribed' });
  t.match(await subscribe(onB, 'orders'), { type: 'subscribed' });

  // T1 writes three rows first (their events get the lower ids) and commits last.
  const t1 = await db.pool.connect();
  t.teardown(() => t1.release());
  await t1.query('begin');
  for (const id of ['c1', 'c2', 'c3']) await t1.query(`insert into orders (id, hospital_id, status) values ($1, 'H1', 'placed')`, [id]);
  // T2 writes one row after them (a higher id) and commits first (a lower position).
  await db.pool.query(`insert into orders (id, hospital_id, status) values ('before', 'H1', 'placed')`);
  t.equal(idOf(await nextFrame(onA, 'A delivering "before"')), 'before');
  t.equal(idOf(await nextFrame(onB, 'B delivering "before"')), 'before');

  // Relay B's live stream falls behind here: its next read of the log is held in transit.
  await proxy.holdRepliesAfter('relay-read-log-commits');
  await t1.query('commit');
  const first = await nextFrame(onA, 'A delivering c1');
  t.equal(idOf(first), 'c1', 'relay A delivers the commit; the client keeps the cursor of c1 and loses its connection');

  // The client resumes on relay B from c1.
  const mover = await b.connect(ADMIN);
  t.match(await subscribe(mover, 'orders', { since: first.cursor, ref: 'r' }), { type: 'subscribed', ref: 'r' });
  // B catches up.
  proxy.releaseReplies();
  await db.pool.query(`insert into orders (id, hospital_id, status) values ('sentinel', 'H1', 'placed')`);
  const got: string[] = [];
  for (;;) {
    const frame = await nextFrame(mover, 'the resumed stream on relay B');
    if (frame.type !== 'event') {
      got.push(`${frame.type} ${String(frame.code ?? '')}`);
      break;
    }
    got.push(`${idOf(frame)} ${String(frame.cursor)}`);
    if (idOf(frame) === 'sentinel') break;
  }
  t.strictSame(
    got.map((line) => line.split(' ')[0]),
    ['c2', 'c3', 'sentinel'],
    `after c1: c2, c3, then the sentinel, each once (received: ${got.join(' | ')})`,
  );
});
