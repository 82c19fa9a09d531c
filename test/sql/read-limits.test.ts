// A read of the log is cut at a number of events and at a number of bytes of their JSON text, by
// PostgreSQL: a burst of large rows reaches the relay a few at a time. Before, live delivery read a
// thousand events a query whatever their size (a burst of 1 MB rows: a gigabyte in the relay at
// once), and a replay learned a page was too large only after reading it whole.

import t from 'tap';
import { createEventLog, type EventsRead, type ReadLimit } from '../../src/db/event-log.ts';
import { createTestDatabase } from '../helpers/database.ts';

const db = await createTestDatabase(t);
const log = createEventLog(db.pool);

const LARGE = 1_500_000;
const BUDGET: ReadLimit = { events: 1000, bytes: 4 * 1024 * 1024 };

// One commit of five large events, then three commits of one small event each.
await db.pool.query(
  `select relay.publish('docs', 'large', jsonb_build_object('n', n, 'text', repeat('x', $1::int)))
     from generate_series(1, 5) n`,
  [LARGE],
);
for (let n = 6; n <= 8; n++) await db.pool.query(`select relay.publish('docs', 'small', jsonb_build_object('n', $1::int))`, [n]);

const numbers = (read: EventsRead): unknown[] => read.events.map((event) => (event.body()?.data as { n: number }).n);
const textBytes = (read: EventsRead): number => read.events.reduce((sum, event) => sum + event.textLength, 0);

t.test('live delivery reads large events only as many as fit in the byte budget, and says it cut', async (t) => {
  const first = await log.readCommits(0, BUDGET, false);
  t.same(numbers(first), [1, 2], 'two events of 1.5 MB in 4 MiB');
  t.ok(textBytes(first) <= BUDGET.bytes, `${textBytes(first)} bytes of JSON text`);
  t.equal(first.cut, true, 'cut: more follow');

  // The relay finishes a cut commit with page reads (src/event-stream.ts), each cut the same way.
  const commit = first.events[0]!.pos;
  const rest = await log.readPage(first.events[1]!, { pos: commit, id: Number.MAX_SAFE_INTEGER }, null, BUDGET);
  t.same(numbers(rest), [3, 4], 'the next two of that commit');
  t.equal(rest.cut, true, 'cut again');
  const last = await log.readPage(rest.events[1]!, { pos: commit, id: Number.MAX_SAFE_INTEGER }, null, BUDGET);
  t.same(numbers(last), [5], 'the last one of that commit');
  t.equal(last.cut, false, 'the commit read to its end');

  const after = await log.readCommits(commit, BUDGET, false);
  t.same(numbers(after), [6, 7, 8], 'the small commits after it, all at once');
  t.equal(after.cut, false, 'nothing more to read');
});

t.test('an event larger than the whole budget is read on its own', async (t) => {
  const read = await log.readCommits(0, { events: 1000, bytes: 10 }, false);
  t.same(numbers(read), [1], 'one event, whatever its size');
  t.equal(read.cut, true, 'and the read says it cut');
});

t.test('the event count still limits a read, and a read that reaches the limit counts as cut', async (t) => {
  const generous = { events: 3, bytes: 1024 * 1024 * 1024 };
  const read = await log.readCommits(0, generous, false);
  t.same(numbers(read), [1, 2, 3], 'three events');
  t.equal(read.cut, true, 'cut at the event limit');
  const page = await log.readPage({ pos: 0, id: 0 }, read.events[2]!, 'docs', generous);
  t.same(numbers(page), [1, 2, 3], 'a page up to the third event');
  t.equal(page.cut, true, 'a page that filled its event limit may have more after it');
});

t.test('a replay page is cut to its byte budget and still tells whether its cursor is in the log', async (t) => {
  const end = { pos: Number.MAX_SAFE_INTEGER, id: Number.MAX_SAFE_INTEGER };
  const { events } = await log.readCommits(0, { events: 1, bytes: 1 }, false);
  const fromFirst = await log.readPage(events[0]!, end, 'docs', BUDGET);
  t.same(numbers(fromFirst), [2, 3], 'the two large events after the cursor that fit');
  t.equal(fromFirst.afterInLog, true, 'the cursor names an event of this log');
  t.equal(fromFirst.cut, true, 'cut');

  const forged = await log.readPage({ pos: events[0]!.pos, id: events[0]!.id + 100 }, end, 'docs', BUDGET);
  t.equal(forged.afterInLog, false, 'a cursor naming no event of this log is told apart, as before');

  const otherTopic = await log.readPage({ pos: 0, id: 0 }, end, 'nothing-here', BUDGET);
  t.same(otherTopic.events, [], 'no events of a topic nobody wrote');
  t.equal(otherTopic.cut, false, 'and nothing cut');
});
