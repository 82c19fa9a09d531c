// The bench's own arithmetic: if percentiles or loss counting were wrong, every number in
// bench/RESULTS.md would be too.
import { spawn } from 'node:child_process';
import t from 'tap';
import { numberAfterFirstKey, numberAfterKey, numberAfterLastKey } from '../../bench/lib/dialect.ts';
import { createHistogram, latencySummaryMs, mergeHistogram, percentileUs, recordLatency } from '../../bench/lib/histogram.ts';
import { usageOf, usageSince } from '../../bench/lib/process-stats.ts';
import { bucketPercentileMs, bucketsBetween, parseBuckets } from '../../bench/lib/prometheus-histogram.ts';
import { createReceivedIds } from '../../bench/lib/received-ids.ts';
import { renderReport, type BenchRun } from '../../bench/lib/report.ts';
import type { DrainResult, StepResult } from '../../bench/lib/session.ts';
import { pgRelayDialect } from '../../bench/peers/pg-relay/dialect.ts';
import { socketIoDialect } from '../../bench/peers/socketio/dialect.ts';
import { uwsRawDialect } from '../../bench/peers/uws-raw/dialect.ts';

t.test('percentiles are within the 2% bucket width of the exact ones', async (t) => {
  const histogram = createHistogram();
  const samples = Array.from({ length: 10_000 }, (_, i) => 100 + i * 7);
  for (const us of samples) recordLatency(histogram, us);
  for (const fraction of [0.5, 0.95, 0.99]) {
    const exact = samples[Math.ceil(fraction * samples.length) - 1]!;
    const measured = percentileUs(histogram, fraction);
    t.ok(measured >= exact && measured <= exact * 1.021, `p${fraction * 100}: ${measured} for ${exact}`);
  }
  t.equal(latencySummaryMs(histogram).max, (100 + 9999 * 7) / 1000, 'max is exact');
});

t.test('merged histograms count every sample once', async (t) => {
  const a = createHistogram();
  const b = createHistogram();
  recordLatency(a, 1000);
  recordLatency(b, 3_000_000);
  recordLatency(b, 0);
  mergeHistogram(a, b);
  t.equal(a.count, 3);
  t.equal(a.maxUs, 3_000_000);
  t.ok(Number.isNaN(percentileUs(createHistogram(), 0.5)), 'no samples: no percentile');
});

t.test('received ids see duplicates and count a range', async (t) => {
  const ids = createReceivedIds();
  t.equal(ids.add(5), true);
  t.equal(ids.add(5), false, 'the second 5 is a duplicate');
  t.equal(ids.add(100_000), true, 'grows past its first size');
  t.equal(ids.countBetween(1, 10), 1);
  t.equal(ids.countBetween(5, 100_000), 2);
  t.equal(ids.countBetween(100_001, 200_000), 0, 'beyond what it holds');
});

t.test('counting a range a word at a time agrees with counting id by id', async (t) => {
  const ids = createReceivedIds();
  const marked = new Set<number>();
  for (let i = 0; i < 3000; i++) {
    const id = (i * 7919) % 5000; // every residue mod 32, dense and sparse words alike
    ids.add(id);
    marked.add(id);
  }
  for (const [low, high] of [[0, 4999], [1, 31], [5, 70], [31, 32], [33, 4000], [4990, 9000], [64, 64]] as const) {
    let expected = 0;
    for (let id = low; id <= high; id++) if (marked.has(id)) expected++;
    t.equal(ids.countBetween(low, high), expected, `[${low}, ${high}]`);
  }
});

t.test('numbers are read after their key, with or without a space', async (t) => {
  t.equal(numberAfterKey('{"id": 42, "sent_at":7}', 'id'), 42);
  t.equal(numberAfterKey('{"hospital_id":"H1","id":9}', 'id'), 9, 'hospital_id is not id');
  t.equal(numberAfterKey('{"sent_at":1234567890123}', 'sent_at'), 1234567890123);
  t.ok(Number.isNaN(numberAfterKey('{"id":"x"}', 'id')));
  t.ok(Number.isNaN(numberAfterKey('{}', 'id')));
  t.ok(Number.isNaN(numberAfterKey('{"id":-}', 'id')), 'a sign alone is no number');
  t.equal(numberAfterKey('{"id":-12,"x":1}', 'id'), -12);
  t.equal(numberAfterKey('{"sent_at":9007199254740991}', 'sent_at'), Number.MAX_SAFE_INTEGER, 'exact up to 2^53');
  t.equal(numberAfterLastKey('{"id":1,"old":{"id":2}}', 'id'), 2, 'the last one, from the end');
  t.equal(numberAfterLastKey('{"id": 3}', 'id'), 3, 'at the very start, with a space');
  t.equal(numberAfterLastKey('{"id":4,"hospital_id":"H"}', 'id'), 4, 'hospital_id, nearer the end, is not id');
  t.ok(Number.isNaN(numberAfterLastKey('{"x":1}', 'id')));
  t.ok(Number.isNaN(numberAfterLastKey('d":', 'id')), 'a text shorter than the key');
  t.equal(numberAfterFirstKey('42["order",{"id":5,"sent_at":6}]', 'id'), 5, 'where it opens an object');
  t.equal(numberAfterFirstKey('{"hospital_id":"H","x":{"id":7}}', 'id'), 7, 'not inside another key');
  t.ok(Number.isNaN(numberAfterFirstKey('{"x":1,"id":8}', 'id')), 'a key that does not open its object is not read');
});

t.test("pg-relay's dialect reads its event frames", async (t) => {
  const frame =
    '{"type":"event","topic":"orders","event":"insert","cursor":"a-1-2","ts":"x","data":{"id":17,"note":"n \\"sent_at\\": 5","status":"placed","sent_at":99,"hospital_id":"H1"}}';
  t.same(pgRelayDialect.read(frame), { kind: 'event', rowId: 17, sentAtUs: 99 });
  t.same(pgRelayDialect.read('{"type":"subscribed","topic":"orders"}'), { kind: 'ignore' }, 'readiness is a first row, not an acknowledgement');
  t.equal(pgRelayDialect.read('{"type":"error","code":"forbidden"}').kind, 'error');
  t.match(pgRelayDialect.upgradePath('a.b+c'), /^\/ws\?access_token=a\.b%2Bc$/);
});

t.test("socket.io's and uws-raw's dialects read their event frames", async (t) => {
  const row = '{"id":17,"hospital_id":"H1","status":"placed","sent_at":99,"note":"n \\"id\\": 5"}';
  t.same(socketIoDialect.read(`42["order",${row}]`), { kind: 'event', rowId: 17, sentAtUs: 99 });
  t.same(socketIoDialect.read('2'), { kind: 'reply', text: '3' }, 'an Engine.IO ping is answered');
  t.same(uwsRawDialect.read(row), { kind: 'event', rowId: 17, sentAtUs: 99 });
});

t.test("a step's percentiles from two scrapes of a Prometheus histogram are the upper bounds of their buckets", async (t) => {
  const scrape = (counts: number[]): string =>
    [
      '# HELP relay_delivery_lag_seconds lag',
      '# TYPE relay_delivery_lag_seconds histogram',
      ...['0.001', '0.002', '0.005', '+Inf'].map((le, i) => `relay_delivery_lag_seconds_bucket{le="${le}"} ${counts[i]}`),
      `relay_delivery_lag_seconds_sum 1`,
      `relay_delivery_lag_seconds_count ${counts[3]}`,
      'relay_other_bucket{le="0.001"} 99',
    ].join('\n');
  const before = parseBuckets(scrape([5, 5, 5, 5]), 'relay_delivery_lag_seconds');
  t.equal(before.size, 4, 'four buckets, the other metric left out');
  // Between the scrapes: 60 under 1 ms, 30 between 1 and 2 ms, 9 between 2 and 5 ms, 1 above.
  const step = bucketsBetween(before, parseBuckets(scrape([65, 95, 104, 105]), 'relay_delivery_lag_seconds'));
  t.equal(bucketPercentileMs(step, 0.5), 1, 'p50 is in the first bucket');
  t.equal(bucketPercentileMs(step, 0.9), 2, 'p90 is in the second');
  t.equal(bucketPercentileMs(step, 0.99), 5, 'p99 is in the third');
  t.equal(bucketPercentileMs(step, 1), Number.POSITIVE_INFINITY, 'the slowest is past the last bound');
  t.ok(Number.isNaN(bucketPercentileMs(bucketsBetween(before, before), 0.5)), 'nothing observed: no percentile');
});

t.test('a process that exits during a step adds nothing to what the step used, never a negative share', async (t) => {
  // A child that burns some CPU, says so, then waits to be killed.
  const child = spawn(process.execPath, ['-e', 'const end = Date.now() + 300; while (Date.now() < end); console.log("ready"); setInterval(() => {}, 1000);'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
  const before = usageOf([child.pid!, process.pid]);
  t.ok(before.cpu[0]! > 0, `the child used ${before.cpu[0]} s of CPU before the snapshot`);
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill();
  await exited;
  const used = usageSince(before);
  t.ok(used.cpu >= 0 && used.waited >= 0, `used ${used.cpu} s of CPU, waited ${used.waited} s`);
  t.equal(used.cpuByProcess[0], 0, 'the exited child itself reads 0, as PostgreSQL CPU by role counts it');
});

/** A bench run of one scenario, on the machine of these tests' made-up results. */
function benchRun(scenario: string, results: Partial<BenchRun>): BenchRun {
  return {
    command: `npm run bench -- ${scenario}`,
    startedAt: '',
    finishedAt: '',
    machine: { cpus: 2, memoryGb: 24, node: 'v20', openFiles: 20000 },
    postgres: { version: '18', embedded: true },
    versions: {},
    ...results,
  };
}

/** A made-up fan-out step: 1,000 rows/s for 5 s to 110 subscribers each, as `changes` say. */
function fanoutStep(changes: Partial<StepResult>): StepResult {
  return {
    offeredRate: 1000,
    committedPerSecond: 1000,
    rows: 5000,
    deliveries: 550_000,
    deliveredPerSecond: 110_000,
    missing: 0,
    duplicates: 0,
    latencyMs: { p50: 1, p95: 1, p99: 1, max: 1 },
    systemCpuCores: 0.3,
    systemCpuUsPerDelivery: 1,
    systemRssMb: 90,
    postgresCpuCores: 0.7,
    postgresCpuByRole: {},
    loadCpuCores: 0.9,
    waitingForCpu: { system: 0, postgres: 0, load: 0 },
    seconds: 5,
    ...changes,
  };
}

/** The line of the report's targets table that starts with `target`. */
function targetLine(report: string, target: string): string {
  return report.split('\n').find((line) => line.startsWith(`| ${target}`)) ?? '';
}

t.test("the commit-rate target is judged at the step PostgreSQL committed most, once a step showed the writers could go no faster", async (t) => {
  const step = (offeredRate: number, committedPerSecond: number, deliveryShare: number): StepResult =>
    fanoutStep({
      offeredRate,
      committedPerSecond,
      rows: committedPerSecond * 5,
      deliveries: committedPerSecond * 5 * 110 * deliveryShare,
      deliveredPerSecond: committedPerSecond * 110 * deliveryShare,
    });
  const run = (steps: StepResult[], max?: StepResult): BenchRun =>
    benchRun('fanout', { fanout: { 'pg-relay': { subscribers: 1100, deliveriesPerRow: 110, connectionsPerSecond: 1000, steps, ...(max ? { max } : {}) } } });
  const verdict = (report: string): string => targetLine(report, "At PostgreSQL's highest commit rate");
  // The 4,000 step committed most (3,797); flat out, the writers got 3,663: that is the ceiling.
  const ceiling = verdict(renderReport(run([step(1000, 1000, 1), step(4000, 3797, 0.94)], step(0, 3663, 0.97))));
  t.match(ceiling, /94\.0% \(3797 rows\/s committed/, 'judged at the step with the most commits');
  t.match(ceiling, /\| met \|$/);
  // Every rate was reached: the ceiling is unknown, and a relay short of 90% fell behind.
  t.match(verdict(renderReport(run([step(1000, 1000, 1), step(2000, 2000, 0.5)]))), /fell behind before the writers saturated/);
  t.match(verdict(renderReport(run([step(1000, 1000, 1)], step(0, 3000, 0.5)))), /50\.0% .*\*\*missed\*\*/, 'a relay far behind at the ceiling misses');
  t.match(verdict(renderReport(run([step(1000, 1000, 1)], step(0, 3000, 0.8999)))), /89\.9% .*\*\*missed\*\*/, 'a share just short of 90% never reads as 90');
});

t.test('the write-path target names both commit modes, and says which one missed', async (t) => {
  const writepath = (flushed: number, unflushed: number, withoutReader = unflushed): BenchRun =>
    benchRun('writepath', {
      writepath: {
        clients: 4,
        seconds: 5,
        rounds: 3,
        tps: { plain: 1000, watched: 1000 * flushed, notifyTrigger: 500, bareNotify: 9000 },
        watchedOverPlain: flushed,
        notifyTriggerOverPlain: 0.5,
        wakeupsPerWatchedTransaction: 0.001,
        server: { fsync: 'on', synchronousCommit: 'on' },
        withoutFlushWait: {
          tps: { plain: 10_000, watched: 10_000 * unflushed, notifyTrigger: 5000, watchedWithoutReader: 10_000 * withoutReader },
          watchedOverPlain: unflushed,
          notifyTriggerOverPlain: 0.5,
          watchedWithoutReaderOverPlain: withoutReader,
          readerCores: { relay: 0.15, postgres: 0.07 },
        },
      },
    });
  const verdict = (report: string): string => targetLine(report, 'Write path');
  const split = verdict(renderReport(writepath(0.62, 0.36)));
  t.match(split, /0\.62 \(620 vs 1000 tps\) as the server commits \(fsync on, synchronous_commit on\)/);
  t.match(split, /0\.36 \(3600 vs 10000 tps\) with commits that do not wait for the disk/);
  t.match(split, /\| met as the server commits; \*\*missed\*\* without waiting for the disk \|$/);
  t.match(verdict(renderReport(writepath(0.62, 0.55))), /\| met \|$/, 'both at least half: met');
  t.match(verdict(renderReport(writepath(0.45, 0.36))), /\| \*\*missed\*\* \|$/, 'both short: missed');
  // The relay's share of the cores is named, and so is what the triggers alone cost.
  const separated = verdict(renderReport(writepath(0.62, 0.42, 0.58)));
  t.match(separated, /the relay reading on the same cores with 0\.15 of a core \(its reads took 0\.07 of PostgreSQL's\)/);
  t.match(separated, /0\.58 \(5800 tps\) with the relay stopped: the triggers' own cost/);
  t.match(separated, /\| met as the server commits; \*\*missed\*\* without waiting for the disk \(met by the triggers alone\) \|$/);
  t.match(verdict(renderReport(writepath(0.62, 0.42, 0.45))), /\*\*missed\*\* without waiting for the disk \|$/, 'triggers alone short too: no mention');
});

t.test('the fan-out target weighs the drain, where both systems were drained, and the drain table names who was not', async (t) => {
  const step = (deliveredPerSecond: number, systemCpuUsPerDelivery: number): StepResult =>
    fanoutStep({ deliveries: deliveredPerSecond * 5, deliveredPerSecond, systemCpuUsPerDelivery });
  const drain = (deliveredPerSecond: number, missing = 0): DrainResult => ({
    rows: 10_000,
    deliveries: 1_100_000,
    seconds: 1_100_000 / deliveredPerSecond,
    deliveredPerSecond,
    missing,
    duplicates: 0,
    systemCpuCores: 0.5,
    systemCpuUsPerDelivery: 0.45,
    postgresCpuCores: 0.05,
    loadCpuCores: 1.4,
  });
  const run = (relayDrain?: DrainResult, gatewayDrain?: DrainResult): BenchRun =>
    benchRun('fanout', {
      fanout: {
        'pg-relay': { subscribers: 1100, deliveriesPerRow: 110, connectionsPerSecond: 1000, steps: [step(500_000, 0.6)], ...(relayDrain ? { drain: relayDrain } : {}) },
        'socket.io': { subscribers: 1100, deliveriesPerRow: 110, connectionsPerSecond: 1000, steps: [step(100_000, 8)], ...(gatewayDrain ? { drain: gatewayDrain } : {}) },
        'uws-raw': { subscribers: 1100, deliveriesPerRow: 110, connectionsPerSecond: 1000, steps: [step(1_000_000, 0.5)], notDrained: 'it has no database' },
      },
    });
  const verdict = (report: string): string => targetLine(report, 'Fan-out');
  const short = verdict(renderReport(run(drain(900_000), drain(100_000))));
  t.match(short, /5\.0x \(500000 vs 100000\/s\)/, 'the stepped peak first');
  t.match(short, /draining a backlog once the database was done writing: 9\.0x \(900000 vs 100000\/s\), the relay using 0\.5 of a core and the load 1\.4/);
  t.notMatch(short, /\| met \|$/, 'short of 10x both ways: not met on deliveries/s');
  t.match(verdict(renderReport(run(drain(1_000_000), drain(100_000)))), /\| met draining a backlog \(with live writes, PostgreSQL's commit rate .*\) \|$/, '10x in the drain: met, and says how');
  t.match(verdict(renderReport(run(drain(1_000_000, 3), drain(100_000)))), /missing 3.*\*\*missed\*\* \(deliveries lost\)/, 'a loss in the drain is a loss');
  t.notMatch(verdict(renderReport(run(drain(1_000_000)))), /draining/, 'no drain of the gateway: no drain ratio');
  const report = renderReport(run(drain(900_000), drain(100_000)));
  t.match(report, /### Draining a backlog/);
  t.match(report, /\| pg-relay \| 10000 \| 1100000 \| [\d.]+ \| 900000 \| 0 \| 0 \|/, 'a row per drained system');
  t.match(report, /\| socket\.io \| 10000 \| 1100000 \| 11 \| 100000 \| 0 \| 0 \|/);
  t.match(report, /Not drained: uws-raw \(it has no database\)\./);
});
