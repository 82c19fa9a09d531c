// What live delivery makes PostgreSQL go through to read a burst of large rows. A read cut to its
// byte budget returns the events that fit, but PostgreSQL measures every event its count allows
// before it cuts (relay.read_log_commits, relay.read_log_page: data and old cast to text for each):
// a read asking for 1,000 events of 1 MB cast a gigabyte to return four, and a burst was read at a
// cost that grew with the square of its length. The stream asks each read for about as many events
// as fit, at the size of those it just read. And while it waits for a transaction left open, it
// reads one event between turns, not a full read thrown away.

import pino from 'pino';
import t from 'tap';
import type { LogPosition } from '../../src/cursor.ts';
import { createEventLog, type EventLog, type ReadLimit } from '../../src/db/event-log.ts';
import { createEventStream, type EventStreamOptions } from '../../src/event-stream.ts';
import { createTestDatabase } from '../helpers/database.ts';
import { guarded } from '../helpers/guard.ts';

/** A stream over `eventLog` keeping what `record` makes of each delivery; `done` once `count` came. */
function collectingStream<T>(
  epoch: string,
  eventLog: EventLog,
  readLimit: ReadLimit,
  count: number,
  record: (...args: Parameters<EventStreamOptions['deliver']>) => T,
) {
  const delivered: T[] = [];
  let allDelivered!: () => void;
  const done = new Promise<void>((resolve) => (allDelivered = resolve));
  const stream = createEventStream({
    identity: { epoch },
    eventLog,
    logger: pino({ level: 'silent' }),
    readLimit,
    deliver(...args) {
      delivered.push(record(...args));
      if (delivered.length === count) allDelivered();
    },
  });
  return { stream, delivered, done };
}

const LARGE_EVENTS = 60;
const SMALL_EVENTS = 5;
const LARGE_CHARS = 200_000;
/** About five of the large events a read. */
const LIMIT: ReadLimit = { events: 1000, bytes: 1024 * 1024 };

t.test('a burst of large rows costs PostgreSQL about the events it returns, not the square of the burst', async (t) => {
  const db = await createTestDatabase(t);
  const eventLog = createEventLog(db.pool);
  const { epoch } = await eventLog.identity();
  await db.pool.query(
    `select relay.publish('docs', 'large', jsonb_build_object('n', n, 'text', repeat('x', $1::int)))
       from generate_series(1, $2::int) n`,
    [LARGE_CHARS, LARGE_EVENTS],
  );
  const head = await db.pool.query<{ pos: string }>('select coalesce(max(pos), 0) as pos from relay.commits');
  const start = Number(head.rows[0]!.pos) - 1;
  for (let n = 1; n <= SMALL_EVENTS; n++) await db.pool.query(`select relay.publish('docs', 'small', jsonb_build_object('n', $1::int))`, [n]);
  const { rows } = await db.pool.query<{ pos: string; id: string }>(
    `select c.pos, e.id from relay.commits c join relay.events e on e.xid = c.xid where c.pos > $1 order by c.pos, e.id`,
    [start],
  );
  const logged = rows.map((row) => ({ pos: Number(row.pos), id: Number(row.id) }));
  const after = (position: LogPosition, upTo: LogPosition = { pos: Infinity, id: Infinity }): number =>
    logged.filter((e) => (e.pos > position.pos || (e.pos === position.pos && e.id > position.id)) && (e.pos < upTo.pos || (e.pos === upTo.pos && e.id <= upTo.id))).length;

  // Events PostgreSQL measured and cast: every one its count allowed, of those the read could reach.
  let measured = 0;
  const counting: EventLog = {
    ...eventLog,
    async readCommits(afterPos, limit, arm) {
      measured += Math.min(limit.events, after({ pos: afterPos, id: Number.MAX_SAFE_INTEGER }));
      return eventLog.readCommits(afterPos, limit, arm);
    },
    async readPage(from, upTo, topic, limit) {
      measured += Math.min(limit.events, after(from, upTo));
      return eventLog.readPage(from, upTo, topic, limit);
    },
    async head() {
      return { position: { pos: start, id: 0 }, settledThrough: start };
    },
  };
  const { stream, delivered, done } = collectingStream(epoch, counting, LIMIT, logged.length, (_topic, _build, position) => position);
  t.teardown(() => stream.stop());
  await stream.start();
  await guarded(done, 30_000, 'every event of the burst delivered');
  t.strictSame(delivered, logged, 'every event once, in commit order');
  t.ok(measured <= 3 * logged.length, `PostgreSQL measured ${measured} events to deliver ${logged.length}`);
});

// A transaction that draws its commit position early and stays open holds live delivery back: the
// stream waits for it in turns of a second, reading the log again between turns in case a lower
// position committed meanwhile. That read only has to see whether the missing position came;
// everything after it is thrown away, and it used to be a full read (1,000 events here) each time.
t.test('between turns of a wait for an open committer, live delivery reads one event, then all once it commits', async (t) => {
  const db = await createTestDatabase(t);
  const eventLog = createEventLog(db.pool);
  const { epoch } = await eventLog.identity();
  const LATER_EVENTS = 300;
  const TURNS_OBSERVED = 2;

  let turnsEnded = 0;
  let turnsWatched!: () => void;
  const watchedTurns = new Promise<void>((resolve) => (turnsWatched = resolve));
  /** Events each read returned once a turn had ended with the committer still open. */
  const readsBetweenTurns: number[] = [];
  const counting: EventLog = {
    ...eventLog,
    async readCommits(afterPos, limit, arm) {
      const read = await eventLog.readCommits(afterPos, limit, arm);
      if (turnsEnded > 0 && turnsEnded <= TURNS_OBSERVED) readsBetweenTurns.push(read.events.length);
      return read;
    },
    async waitForCommitters() {
      const wait = await eventLog.waitForCommitters();
      if (!wait.allEnded && ++turnsEnded === TURNS_OBSERVED + 1) turnsWatched();
      return wait;
    },
  };
  const { stream, delivered, done } = collectingStream(epoch, counting, { events: 1000, bytes: 4 * 1024 * 1024 }, LATER_EVENTS + 1, (topic, build) => ({
    topic,
    event: build()!.event,
  }));
  t.teardown(() => stream.stop());
  await stream.start();

  const held = await db.pool.connect();
  t.teardown(() => held.release());
  await held.query('begin');
  await held.query('set constraints all immediate');
  await held.query(`select relay.publish('docs', 'held', '{}')`);
  await db.pool.query(`select relay.publish('docs', 'later', jsonb_build_object('n', n)) from generate_series(1, $1::int) n`, [LATER_EVENTS]);

  await guarded(watchedTurns, 30_000, `${TURNS_OBSERVED + 1} turns of the wait ended with the committer open`);
  t.equal(delivered.length, 0, 'nothing after the open position is delivered while it is open');
  t.ok(readsBetweenTurns.length >= TURNS_OBSERVED, `the log was read between turns (${readsBetweenTurns.length} reads)`);
  t.ok(
    readsBetweenTurns.every((events) => events <= 1),
    `each read between turns returned at most one event: ${readsBetweenTurns.join(', ')}`,
  );

  await held.query('commit');
  await guarded(done, 30_000, 'the held event and every later one delivered');
  t.strictSame(
    delivered,
    [{ topic: 'docs', event: 'held' }, ...Array.from({ length: LATER_EVENTS }, () => ({ topic: 'docs', event: 'later' }))],
    'the held event first, then every later one, once each',
  );
});
