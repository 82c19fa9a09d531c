// Contract section 3, `since`, and README "Limits": a replay reads one topic, and the log has no
// index by topic, so a topic with few events in a long log of other topics' commits costs a read
// of the log as many commits as lie in between. Those replays must not take live delivery's turn
// at PostgreSQL: other clients keep getting their events at once, and the replays still get every
// event of their topic, in order.
import t from 'tap';
import { createTestDatabase } from '../helpers/database.ts';
import { readLog } from '../helpers/event-log.ts';
import { nextFrame, subscribe } from '../helpers/frames.ts';
import { startTestRelay } from '../helpers/relay.ts';
import type { Frame } from '../helpers/ws-client.ts';

const ADMIN = { role: 'admin', sub: 'admin-1' };
/** Commits of another topic between the replays' cursors and the end of the log. */
const OTHER_COMMITS = 300_000;
/** More replays at once than the relay's pool has connections (4). */
const REPLAYS = 5;
/**
 * The middle of the stretch holds one inventory event ("mid"): a replay reaches it after half the
 * stretch, 15 reads of 10,000 positions. A read that went through the whole stretch at once found
 * it in its first page, and took seconds (8 s for five at once over 600,000 commits), in which
 * live delivery waited for a pool connection.
 */
/** A guard only: the replays go through the whole log, five at once. */
const REPLAY_GUARD_MS = 60_000;

const idOf = (frame: Frame): unknown => (frame.data as Record<string, unknown>).id;

t.test('replays of a topic with few events in a long log hold up neither live delivery nor their own events', async (t) => {
  const db = await createTestDatabase(t);
  for (let i = 1; i <= REPLAYS; i++) {
    await db.pool.query(`insert into inventory (id, merchant_id, product, quantity, low_stock_threshold) values ($1, 'm1', 'p', 10, 1)`, [`i${i}`]);
  }
  // A long stretch of another topic's commits, written straight into the log (as many commits
  // would): one event each, and in the middle of them one inventory event.
  const { rows } = await db.pool.query<{ pos: string }>('select max(pos) as pos from relay.commits');
  const first = Number(rows[0]!.pos) + 1;
  const last = first + OTHER_COMMITS - 1;
  const middle = first + OTHER_COMMITS / 2;
  const fakeXid = `((1099511627776 + p)::text)::xid8`;
  await db.pool.query(`insert into relay.commits (pos, xid, committed_at) select p, ${fakeXid}, now() from generate_series($1::bigint, $2::bigint) p`, [first, last]);
  await db.pool.query(
    `insert into relay.events (xid, topic, event, data)
     select ${fakeXid}, case when p = $3 then 'inventory' else 'ticks' end, 'update',
            case when p = $3 then '{"id": "mid", "merchant_id": "m1"}'::jsonb else '{}'::jsonb end
       from generate_series($1::bigint, $2::bigint) p`,
    [first, last, middle],
  );
  await db.pool.query(`select setval('relay.commit_position', $1)`, [last]);

  const relay = await startTestRelay(t, {}, db);
  // Read once the relay has claimed the log's name (a cloned database gets its own at the start).
  const cursors = (await readLog(db.pool, 'inventory')).map((event) => event.cursor).slice(0, REPLAYS);
  const live = await relay.connect(ADMIN);
  t.match(await subscribe(live, 'orders'), { type: 'subscribed' }, 'a live subscriber to orders');
  const resuming = await Promise.all(cursors.map(() => relay.connect(ADMIN)));
  resuming.forEach((client, i) => client.send({ type: 'subscribe', topic: 'inventory', since: cursors[i], ref: i }));

  // The order of arrival across the clients, not a time limit: live delivery needs one read, a
  // replay 15 to reach "mid"; with its turn at the pool, the live order comes first.
  const arrivals: string[] = [];
  await db.pool.query(`insert into orders (id, hospital_id, status) values ('live', 'H1', 'placed')`);
  const liveArrived = nextFrame(live, 'the live order', (frame) => frame.type === 'event' && idOf(frame) === 'live').then(() => arrivals.push('live'));
  await Promise.all([
    liveArrived,
    ...resuming.map(async (client, i) => {
      const frames: Frame[] = [];
      for (;;) {
        const frame = await nextFrame(client, `replay ${i}: the inventory event "mid"`, undefined, REPLAY_GUARD_MS);
        frames.push(frame);
        if (frame.type === 'error' || (frame.type === 'event' && idOf(frame) === 'mid')) break;
      }
      arrivals.push(`mid ${i}`);
      const expected = ['subscribed', ...cursors.slice(i + 1).map((_, k) => `i${i + k + 2}`), 'mid'];
      t.strictSame(frames.map((frame) => (frame.type === 'event' ? idOf(frame) : frame.type)), expected, `replay ${i}: the events after its cursor, in order`);
    }),
  ]);
  t.equal(arrivals[0], 'live', `the live order came before any replay reached the middle of the stretch (${arrivals.join(', ')})`);
});
