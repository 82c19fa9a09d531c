// Contract section 3, "Bad input never ends the process" and bounded memory, under a protocol
// fuzzer: for RELAY_FUZZ_SECONDS (default 10) several connections send random and mutated frames
// to a relay process while an application keeps writing, and an honest subscriber must receive
// every one of its events, in order, throughout. Seeded: RELAY_FUZZ_SEED=N replays a run's frames.
import { readFileSync } from 'node:fs';
import t from 'tap';
import WebSocket from 'ws';
import { collectFrames } from '../helpers/event-collector.ts';
import { logEpoch, cursorAt } from '../helpers/event-log.ts';
import { nextFrame } from '../helpers/frames.ts';
import { fuzzFrame, type FuzzVocabulary } from '../helpers/fuzz-frames.ts';
import { createTestDatabase } from '../helpers/database.ts';
import { startOrderWriter } from '../helpers/order-writer.ts';
import { createRandom, seedFrom, type Random } from '../helpers/random.ts';
import { startRelayProcess, type RelayProcess } from '../helpers/relay-process.ts';
import { TEST_SECRET } from '../helpers/relay.ts';
import { nowSeconds, signHmacToken } from '../helpers/tokens.ts';
import { connectClient } from '../helpers/ws-client.ts';

const SECONDS = Number(process.env.RELAY_FUZZ_SECONDS ?? 10);
const SEED = seedFrom(process.env.RELAY_FUZZ_SEED);
const FUZZERS = 4;
/** The relay's resident memory may grow by at most this much over its size before the fuzz. */
const RSS_GROWTH_LIMIT_BYTES = Number(process.env.RELAY_FUZZ_RSS_GROWTH_MB ?? 256) * 1024 * 1024;
/** A guard: the relay answers a ping within milliseconds, even under the fuzz. */
const REPLY_GUARD_MS = 15_000;

if (!Number.isFinite(SECONDS) || SECONDS <= 0) throw new Error(`RELAY_FUZZ_SECONDS must be a positive number, got ${process.env.RELAY_FUZZ_SECONDS}`);
t.setTimeout((SECONDS + 100) * 1000);

/** The process's resident set size, from /proc (Linux, as the relay requires). */
function residentBytes(pid: number): number {
  const match = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!match) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(match[1]) * 1024;
}

interface FuzzStats {
  frames: number;
  byKind: Record<string, number>;
  closes: Record<string, number>;
  replies: Record<string, number>;
  connections: number;
  /** Frames from the relay that did not parse (there must be none). */
  notJson: string[];
}

/**
 * One fuzzing client until `deadline`: connects, sends a batch of 1-8 fuzz frames then a ping, and
 * waits for the pong (the relay answers in order, so it has handled the batch) or the close that a
 * frame caused (1009, or 1006 for invalid UTF-8 and frames over the hard cap); then goes on, on a
 * new connection if need be.
 */
async function fuzzClient(relay: RelayProcess, random: Random, vocabulary: FuzzVocabulary, token: string, deadline: number, stats: FuzzStats): Promise<void> {
  let pings = 0;
  while (Date.now() < deadline) {
    const socket = new WebSocket(`${relay.wsUrl}?access_token=${token}`);
    stats.connections++;
    let waiting: ((outcome: 'pong' | 'closed') => void) | undefined;
    let closed = false;
    let expectedRef = '';
    socket.on('message', (data) => {
      let frame: { type?: string; ref?: unknown };
      try {
        frame = JSON.parse(String(data)) as typeof frame;
      } catch {
        stats.notJson.push(String(data).slice(0, 200));
        return;
      }
      stats.replies[String(frame.type)] = (stats.replies[String(frame.type)] ?? 0) + 1;
      if (frame.type === 'pong' && frame.ref === expectedRef) waiting?.('pong');
    });
    socket.on('close', (code) => {
      closed = true;
      stats.closes[code] = (stats.closes[code] ?? 0) + 1;
      waiting?.('closed');
    });
    // A dropped connection (1006) also reports an error; the close handler accounts for it.
    socket.on('error', () => undefined);
    await new Promise<void>((resolve) => {
      socket.once('open', () => resolve());
      socket.once('close', () => resolve());
    });
    while (!closed && Date.now() < deadline) {
      for (let batch = random.int(1, 8); batch > 0 && !closed; batch--) {
        const frame = fuzzFrame(random, vocabulary);
        stats.frames++;
        stats.byKind[frame.kind] = (stats.byKind[frame.kind] ?? 0) + 1;
        socket.send(frame.data, { binary: frame.binary });
      }
      if (closed) break;
      expectedRef = `fuzz-ping-${++pings}`;
      const outcome = new Promise<'pong' | 'closed'>((resolve) => (waiting = resolve));
      socket.send(JSON.stringify({ type: 'ping', ref: expectedRef }));
      let timer: NodeJS.Timeout | undefined;
      const answered = await Promise.race([
        outcome,
        new Promise<'silent'>((resolve) => (timer = setTimeout(() => resolve('silent'), REPLY_GUARD_MS))),
      ]).finally(() => clearTimeout(timer));
      if (answered === 'silent') throw new Error(`the relay did not answer a ping within ${REPLY_GUARD_MS} ms under the fuzz (seed ${random.seed})`);
    }
    if (!closed) {
      const done = new Promise<void>((resolve) => socket.once('close', () => resolve()));
      socket.close();
      await done;
    }
  }
}

t.test(`protocol fuzz for ${SECONDS} s: the relay stays up, its memory bounded, an honest subscriber gets every event`, async (t) => {
  t.comment(`fuzz seed ${SEED}: replay with RELAY_FUZZ_SEED=${SEED} (RELAY_FUZZ_SECONDS=${SECONDS})`);
  const db = await createTestDatabase(t);
  // The fuzzers send as fast as the relay answers, past the default message rate: a refused ping
  // would then wait for a pong that never comes. This test is about what frames say, not how many
  // (test/e2e/limits.test.ts covers the rate), so the limit is out of the way.
  const relay = await startRelayProcess(t, db.url, { RELAY_MAX_MESSAGES_PER_SECOND: '1000000' });
  const epoch = await logEpoch(db.pool);
  const admin = await signHmacToken(TEST_SECRET, { role: 'admin', sub: 'fuzz', exp: nowSeconds() + 3600 });
  const vocabulary: FuzzVocabulary = {
    topics: ['orders', 'inventory', 'driver_locations', 'no_such_topic', ''],
    cursors: [cursorAt(epoch, 1, 1), cursorAt(epoch, 9_007_199_254_740_991, 1), cursorAt('00000000', 1, 1), `${epoch}-zzzzzzzzzzz-1`, 'not-a-cursor'],
    tokens: [
      admin,
      await signHmacToken(TEST_SECRET, { role: 'hospital', hospital_id: 'H1', exp: nowSeconds() + 3600 }),
      await signHmacToken(TEST_SECRET, { role: 'admin', exp: nowSeconds() - 10 }),
      await signHmacToken('another-secret-that-is-at-least-32-bytes-long', { role: 'admin' }),
      'not.a.token',
      '',
    ],
  };

  const honest = await connectClient(`${relay.wsUrl}?access_token=${admin}`);
  honest.send({ type: 'subscribe', topic: 'orders', ref: 'honest' });
  t.match(await nextFrame(honest, 'the honest subscription'), { type: 'subscribed', ref: 'honest' });
  const received = collectFrames(honest);
  const writer = startOrderWriter({ databaseUrl: db.url, prefix: 'fuzz', intervalMs: 10 });
  await writer.waitForCommitted(10, 'the writer starting');
  await received.waitFor((frame) => frame.type === 'event' && (frame.data as { id: string }).id === writer.committed[9], 'the honest subscriber receiving the 10th order');

  const rssBefore = residentBytes(relay.child.pid!);
  let rssMax = rssBefore;
  const sampler = setInterval(() => {
    // Sampling, not synchronizing: the peak is what matters, and the process may have died.
    if (relay.child.exitCode === null) rssMax = Math.max(rssMax, residentBytes(relay.child.pid!));
  }, 200);
  t.teardown(() => clearInterval(sampler));

  const deadline = Date.now() + SECONDS * 1000;
  const stats: FuzzStats = { frames: 0, byKind: {}, closes: {}, replies: {}, connections: 0, notJson: [] };
  await Promise.all(
    Array.from({ length: FUZZERS }, (_, index) => fuzzClient(relay, createRandom((SEED + index * 0x9e3779b9) >>> 0), vocabulary, admin, deadline, stats)),
  );
  clearInterval(sampler);
  await writer.stop();
  t.equal(relay.child.exitCode, null, 'the relay process is still running');
  const health = await fetch(`http://127.0.0.1:${relay.port}/health`);
  t.equal(health.status, 200, '/health is still 200');

  const last = writer.committed.at(-1)!;
  await received.waitFor((frame) => frame.type === 'event' && (frame.data as { id: string }).id === last, `the honest subscriber receiving the last order ${last}`, {
    timeoutMs: 30_000,
  });
  const ids = received.events('orders').map((frame) => (frame.data as { id: string }).id);
  t.strictSame(ids, writer.committed, `the honest subscriber received all ${writer.committed.length} orders written during the fuzz, in commit order, each once`);
  t.equal(received.frames.filter((frame) => frame.type !== 'event').length, 0, 'and nothing but events');

  const growth = rssMax - rssBefore;
  t.comment(
    `fuzz: ${stats.frames} frames on ${stats.connections} connections; kinds ${JSON.stringify(stats.byKind)}; ` +
      `closes ${JSON.stringify(stats.closes)}; replies ${JSON.stringify(stats.replies)}; ` +
      `RSS ${(rssBefore / 2 ** 20).toFixed(0)} MiB before, ${(rssMax / 2 ** 20).toFixed(0)} MiB at most`,
  );
  t.ok(growth <= RSS_GROWTH_LIMIT_BYTES, `the relay's memory stayed bounded: it grew by ${(growth / 2 ** 20).toFixed(0)} MiB (limit ${RSS_GROWTH_LIMIT_BYTES / 2 ** 20} MiB)`);
  t.strictSame(stats.notJson, [], 'every frame the relay sent the fuzzers was JSON');
  t.ok(stats.frames > SECONDS * 50, `the fuzz did run (${stats.frames} frames)`);
  await honest.close();
});
