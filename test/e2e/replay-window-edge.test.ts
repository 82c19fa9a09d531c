// Contract section 3, `since`: a replay reads the log in windows of 10,000 positions (src/replay.ts).
// A read that ends at the end of its window has read every event up to that position; retention
// that deleted exactly through it deleted nothing the replay still needs.
import t from 'tap';
import { createTestDatabase } from '../helpers/database.ts';
import { readLog } from '../helpers/event-log.ts';
import { guarded } from '../helpers/guard.ts';
import { nextFrame } from '../helpers/frames.ts';
import { startTestRelay } from '../helpers/relay.ts';
import { startTcpProxy } from '../helpers/tcp-proxy.ts';
import { ageCommits } from '../helpers/aged-commits.ts';

const ADMIN = { role: 'admin', sub: 'admin-1' };
const WINDOW = 10_000;

t.test('retention through exactly the end of a replay window does not expire the replay', async (t) => {
  const db = await createTestDatabase(t);
  db.pool.on('error', () => undefined);
  await db.pool.query(`insert into inventory (id, merchant_id, product, quantity, low_stock_threshold) values ('first', 'm1', 'p', 10, 1)`);
  const { rows } = await db.pool.query<{ pos: string }>('select max(pos) as pos from relay.commits');
  const since = Number(rows[0]!.pos);
  const windowEnd = since + WINDOW;
  const later = windowEnd + 5_000;
  const fakeXid = (p: number): string => `'${1099511627776 + p}'::xid8`;
  // A commit of another topic exactly at the end of the replay's first window, and one inventory event after it.
  await db.pool.query(`insert into relay.commits (pos, xid, committed_at) values (${windowEnd}, ${fakeXid(windowEnd)}, now()), (${later}, ${fakeXid(later)}, now())`);
  await db.pool.query(`insert into relay.events (xid, topic, event, data) values (${fakeXid(windowEnd)}, 'ticks', 'update', '{}'), (${fakeXid(later)}, 'inventory', 'update', '{"id": "later", "merchant_id": "m1"}')`);
  await db.pool.query(`select setval('relay.commit_position', $1)`, [later]);

  const server = new URL(db.url);
  const proxy = await startTcpProxy({ host: server.hostname, port: Number(server.port || 5432) });
  t.teardown(() => proxy.close());
  const relay = await startTestRelay(t, { DATABASE_URL: proxy.urlFor(db.url) }, db);
  t.teardown(() => proxy.releaseReplies());
  const cursor = (await readLog(db.pool, 'inventory'))[0]!.cursor;
  const client = await relay.connect(ADMIN);

  // The replay's first read (through windowEnd) is answered, but the answer is held in transit.
  const caught = proxy.holdRepliesAfter('relay-read-log-page');
  client.send({ type: 'subscribe', topic: 'inventory', since: cursor, ref: 's' });
  await caught;
  // Its reply complete (CommandComplete, `SELECT n`): the read has run, and seen the log, before
  // retention below. Caught only means the query went through the proxy; on a busy machine
  // PostgreSQL ran it after the prune once, and rightly answered cursor_expired.
  await proxy.heldRepliesContain('SELECT');
  // Meanwhile retention deletes every commit up to and including windowEnd, none after it.
  await ageCommits(db.pool, 'pos <= $1', [windowEnd]);
  await db.pool.query(`select relay.prune('30 minutes', 100000)`);
  const { rows: pruned } = await db.pool.query<{ p: string }>('select pruned_through::text as p from relay.log_identity');
  t.equal(Number(pruned[0]!.p), windowEnd, 'retention went exactly through the end of the window');
  proxy.releaseReplies();

  const frames: string[] = [];
  for (;;) {
    const frame = await guarded(nextFrame(client, 'the replay'), 10_000, 'a frame of the replay');
    frames.push(frame.type === 'event' ? `event ${String((frame.data as Record<string, unknown>).id)}` : `${frame.type}${frame.type === 'error' ? ` ${String(frame.code)}` : ''}`);
    if (frame.type === 'error' || frame.type === 'event') break;
  }
  t.strictSame(frames, ['subscribed', 'event later'], 'the event after the window arrives; nothing the replay needed was deleted');
});
