// Cursors follow commit order, not write order: eight writers open their transactions in one
// order and commit in another, round after round, while more transactions commit concurrently.
// An admin subscriber must see the events in the order the COMMITs returned, exactly as the log
// holds them, and resuming from any cursor of that stream must give exactly the rest.
import { isDeepStrictEqual } from 'node:util';
import pg from 'pg';
import t from 'tap';
import { changeCatalog } from '../helpers/catalog.ts';
import {
  asFrame,
  describeDifference,
  eventsUntil,
  readLog,
  withoutTs,
  type LoggedEvent,
} from '../helpers/event-log.ts';
import { nextFrame, subscribe } from '../helpers/frames.ts';
import { createRandom, seedFrom, type Random } from '../helpers/random.ts';
import { startTestRelay, type TestRelay } from '../helpers/relay.ts';
import type { Frame, TestClient } from '../helpers/ws-client.ts';

const TOPIC = 'commit_order';
const WRITERS = 8;
const ROUNDS = 6;
const LOAD_WORKERS = 4;
const LOAD_TRANSACTIONS_PER_WORKER = 25;
/** Connections that resume side by side, each from its own cursor. */
const RESUMERS = 8;

/** One transaction as the test ran it: its events' keys, and when its COMMIT was sent and returned. */
interface Transaction {
  readonly label: string;
  readonly keys: string[];
  sentAt: number;
  returnedAt: number;
  committed: boolean;
}

/** A logical clock: one tick per COMMIT sent or returned, across every writer. */
let clock = 0;
let nextSeq = 0;

async function publish(db: pg.ClientBase, transaction: Transaction, writer: string): Promise<void> {
  const key = `${transaction.label}/e${transaction.keys.length}`;
  await db.query(`select relay.publish($1, 'written', $2)`, [TOPIC, { key, writer, seq: nextSeq++ }]);
  transaction.keys.push(key);
}

async function finish(db: pg.ClientBase, transaction: Transaction, outcome: 'commit' | 'rollback'): Promise<void> {
  transaction.sentAt = ++clock;
  await db.query(outcome);
  transaction.returnedAt = ++clock;
  transaction.committed = outcome === 'commit';
}

/**
 * A random order of the round's 2 x WRITERS steps in which each writer writes before it commits
 * and the commit order differs from the write order. Round 0 is the plain mirror: writer k writes
 * at step k, and the commits run from writer 7 down to writer 0.
 */
function interleaving(random: Random, round: number): Array<{ writer: number; step: 'write' | 'commit' }> {
  if (round === 0) {
    return [
      ...Array.from({ length: WRITERS }, (_, writer) => ({ writer, step: 'write' as const })),
      ...Array.from({ length: WRITERS }, (_, k) => ({ writer: WRITERS - 1 - k, step: 'commit' as const })),
    ];
  }
  for (;;) {
    const pending = Array.from({ length: WRITERS }, (_, writer) => writer);
    const written: number[] = [];
    const steps: Array<{ writer: number; step: 'write' | 'commit' }> = [];
    const writeOrder: number[] = [];
    const commitOrder: number[] = [];
    while (steps.length < 2 * WRITERS) {
      const canCommit = written.length > 0 && (pending.length === 0 || random.chance(0.45));
      if (canCommit) {
        const writer = written.splice(random.int(0, written.length - 1), 1)[0]!;
        steps.push({ writer, step: 'commit' });
        commitOrder.push(writer);
      } else {
        const writer = pending.splice(random.int(0, pending.length - 1), 1)[0]!;
        steps.push({ writer, step: 'write' });
        writeOrder.push(writer);
        written.push(writer);
      }
    }
    if (commitOrder.join() !== writeOrder.join()) return steps;
  }
}

async function runRounds(writers: pg.Client[], random: Random, transactions: Transaction[]): Promise<Transaction[][]> {
  const rounds: Transaction[][] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const open = new Map<number, Transaction>();
    const committedInOrder: Transaction[] = [];
    for (const { writer, step } of interleaving(random, round)) {
      const db = writers[writer]!;
      if (step === 'write') {
        const transaction: Transaction = { label: `round${round}/writer${writer}`, keys: [], sentAt: 0, returnedAt: 0, committed: false };
        open.set(writer, transaction);
        transactions.push(transaction);
        await db.query('begin');
        const count = random.int(1, 3);
        for (let i = 0; i < count; i++) await publish(db, transaction, `writer${writer}`);
      } else {
        const transaction = open.get(writer)!;
        // Now and then a writer gives up: its events must never reach anyone.
        const outcome = random.chance(0.1) ? 'rollback' : 'commit';
        await finish(db, transaction, outcome);
        if (outcome === 'commit') committedInOrder.push(transaction);
      }
    }
    rounds.push(committedInOrder);
  }
  return rounds;
}

/** Transactions committed concurrently on the pool, with no order imposed between workers. */
async function runLoad(pool: pg.Pool, random: Random, transactions: Transaction[]): Promise<void> {
  const seeds = Array.from({ length: LOAD_WORKERS }, () => random.int(0, 2 ** 31));
  await Promise.all(
    seeds.map(async (seed, worker) => {
      const own = createRandom(seed);
      const db = await pool.connect();
      try {
        for (let i = 0; i < LOAD_TRANSACTIONS_PER_WORKER; i++) {
          const transaction: Transaction = { label: `load${worker}/tx${i}`, keys: [], sentAt: 0, returnedAt: 0, committed: false };
          transactions.push(transaction);
          await db.query('begin');
          const count = own.int(1, 3);
          for (let j = 0; j < count; j++) await publish(db, transaction, `load${worker}`);
          await finish(db, transaction, own.chance(0.1) ? 'rollback' : 'commit');
        }
      } finally {
        db.release();
      }
    }),
  );
}

/** Publishes one marker event on the topic itself: it is logged, and follows everything before it. */
async function publishSentinel(relay: TestRelay, name: string): Promise<string> {
  await relay.db.pool.query(`select relay.publish($1, 'sentinel', $2)`, [TOPIC, { key: name, seq: nextSeq++ }]);
  return name;
}

const keyOf = (frame: Frame | LoggedEvent): string => String((frame.data as Record<string, unknown>).key);

t.test('events reach a subscriber in commit order, and every cursor resumes with exactly the rest', async (t) => {
  const seed = seedFrom(process.env.RELAY_TEST_SEED);
  t.comment(`seed ${seed} (RELAY_TEST_SEED=${seed} replays this run)`);
  const random = createRandom(seed);
  const relay = await startTestRelay(t);
  await changeCatalog(relay, `select relay.allow($1, 'admin')`, [TOPIC]);

  const recorder = await relay.connect({ role: 'admin', sub: 'recorder' });
  t.match(await subscribe(recorder, TOPIC), { type: 'subscribed', topic: TOPIC });

  const writers = await Promise.all(
    Array.from({ length: WRITERS }, async () => {
      const client = new pg.Client({ connectionString: relay.db.url });
      await client.connect();
      return client;
    }),
  );
  t.teardown(() => Promise.all(writers.map((client) => client.end())));

  const transactions: Transaction[] = [];
  const [rounds] = await Promise.all([runRounds(writers, random, transactions), runLoad(relay.db.pool, random, transactions)]);

  const log = await readLog(relay.db.pool, TOPIC);
  t.ok(log.length > 150, `the writers committed ${log.length} events`);
  const lastCursor = log.at(-1)!.cursor;
  const recorded = await eventsUntil(recorder, TOPIC, (frame) => frame.cursor === lastCursor, 'the recorder receiving every committed event');

  // 1. The stream is the log, in commit-position order, with the log's cursors.
  const recordedCursors = recorded.map((frame) => String(frame.cursor));
  t.equal(
    describeDifference(recordedCursors, log.map((event) => event.cursor)),
    'identical',
    'the live stream holds every committed event once, in the order of the log',
  );
  t.strictSame(recorded.map(withoutTs), log.map(asFrame), 'each live event carries what the log holds for it');

  // 2. Exactly the committed transactions, each one's events together and in the order written.
  const committed = transactions.filter((transaction) => transaction.committed);
  const aborted = transactions.filter((transaction) => !transaction.committed);
  t.ok(aborted.length > 0 && committed.length > 100, `${committed.length} transactions committed, ${aborted.length} rolled back`);
  const streamKeys = recorded.map(keyOf);
  const indexOfKey = new Map(streamKeys.map((key, index) => [key, index]));
  const leaked = aborted.flatMap((transaction) => transaction.keys).filter((key) => indexOfKey.has(key));
  t.strictSame(leaked, [], 'no event of a rolled-back transaction reaches the subscriber');
  t.equal(streamKeys.length, committed.reduce((sum, transaction) => sum + transaction.keys.length, 0), 'no event is missing or extra');
  const split = committed.filter((transaction) => {
    const first = indexOfKey.get(transaction.keys[0]!);
    return first === undefined || transaction.keys.some((key, offset) => indexOfKey.get(key) !== first + offset);
  });
  t.strictSame(split.map((transaction) => transaction.label), [], "a transaction's events arrive together, in the order it wrote them");

  // 3. Commit order: within each round the COMMITs ran one after another.
  const streamIndex = (transaction: Transaction): number => indexOfKey.get(transaction.keys[0]!) ?? -1;
  for (const [round, inCommitOrder] of rounds.entries()) {
    const delivered = [...inCommitOrder].sort((a, b) => streamIndex(a) - streamIndex(b));
    t.strictSame(
      delivered.map((transaction) => transaction.label),
      inCommitOrder.map((transaction) => transaction.label),
      `round ${round}: the subscriber sees the transactions in the order their COMMITs returned, not the order they wrote`,
    );
  }
  // Across every transaction, the concurrent ones included: one whose COMMIT returned before
  // another's COMMIT was sent committed first, so its events come first.
  const inversions: string[] = [];
  for (const a of committed) {
    for (const b of committed) {
      if (a.returnedAt < b.sentAt && streamIndex(a) > streamIndex(b)) inversions.push(`${a.label} committed before ${b.label}`);
    }
  }
  t.strictSame(inversions.slice(0, 5), [], `no event follows one that committed after it (${inversions.length} inversions)`);

  // Nothing more was sent to the recorder: the next event is a marker committed now.
  const oracle: LoggedEvent[] = [...log];
  const firstSentinel = await publishSentinel(relay, 'sentinel-0');
  const afterLast = await nextFrame(recorder, 'the first sentinel');
  t.equal(keyOf(afterLast), firstSentinel, 'the recorder receives nothing after the last committed event but the sentinel');
  oracle.push(...(await readLog(relay.db.pool, TOPIC)).slice(oracle.length));

  // 4. Resume from every cursor of the recorded stream (and from the last one): exactly the rest.
  const resumers = await Promise.all(Array.from({ length: RESUMERS }, (_, i) => relay.connect({ role: 'admin', sub: `resumer${i}` })));
  const failures: string[] = [];
  let resumed = 0;
  for (let start = 0; start < recordedCursors.length; start += RESUMERS) {
    const batch = recordedCursors.slice(start, start + RESUMERS);
    const expectedAfter = (cursor: string): string[] =>
      oracle.slice(oracle.findIndex((event) => event.cursor === cursor) + 1).map((event) => event.cursor);
    await Promise.all(
      batch.map(async (cursor, i) => {
        const client = resumers[i]!;
        const reply = await subscribe(client, TOPIC, { since: cursor, ref: cursor });
        if (reply.type !== 'subscribed') throw new Error(`resuming from ${cursor}: the relay answered ${JSON.stringify(reply)}`);
      }),
    );
    // Everything committed after each cursor, then the round's sentinel and nothing in between.
    const sentinel = await publishSentinel(relay, `sentinel-${start + 1}`);
    const got = await Promise.all(
      batch.map((cursor, i) =>
        eventsUntil(resumers[i]!, TOPIC, (frame) => keyOf(frame) === sentinel, `resuming from ${cursor} until ${sentinel}`),
      ),
    );
    const recorderNext = await nextFrame(recorder, `the recorder getting ${sentinel}`);
    if (keyOf(recorderNext) !== sentinel) failures.push(`the recorder got ${JSON.stringify(recorderNext)} instead of ${sentinel}`);
    oracle.push(...(await readLog(relay.db.pool, TOPIC)).slice(oracle.length));
    for (const [i, cursor] of batch.entries()) {
      const expected = expectedAfter(cursor);
      const frames = got[i]!;
      const cursors = frames.map((frame) => String(frame.cursor));
      const difference = describeDifference(cursors, expected);
      if (difference !== 'identical') failures.push(`since ${cursor} (event ${start + i + 1} of ${recordedCursors.length}): ${difference}`);
      else {
        const byCursor = new Map(oracle.map((event) => [event.cursor, asFrame(event)]));
        const wrong = frames.find((frame) => !isDeepStrictEqual(withoutTs(frame), byCursor.get(String(frame.cursor))));
        if (wrong) failures.push(`since ${cursor}: event ${String(wrong.cursor)} differs from the log: ${JSON.stringify(wrong)}`);
      }
      resumed++;
    }
    await Promise.all(
      batch.map(async (_cursor, i) => {
        const client: TestClient = resumers[i]!;
        client.send({ type: 'unsubscribe', topic: TOPIC });
        const reply = await nextFrame(client, 'the reply to unsubscribe');
        if (reply.type !== 'unsubscribed') failures.push(`unsubscribe after a replay: ${JSON.stringify(reply)}`);
      }),
    );
  }
  t.equal(resumed, recordedCursors.length, `resumed from all ${resumed} cursors`);
  t.strictSame(failures.slice(0, 10), [], `every resumption gets exactly the events after its cursor (${failures.length} did not)`);
});
