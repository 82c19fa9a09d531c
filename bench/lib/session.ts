// One system under test with its database, subscribers and row source, driven step by step: write at
// a rate, wait until every row reached every subscriber that must get it (or stopped arriving), and
// charge each party its CPU. The scenarios are sequences of these steps.

import { latencySummaryMs, type Histogram } from './histogram.ts';
import { rssBytes, usageOf, usageSince, type UsageSnapshot } from './process-stats.ts';
import { bucketPercentileMs, bucketsBetween, parseBuckets, type BucketCounts } from './prometheus-histogram.ts';
import type { BenchPostgres, PostgresProcess } from './postgres.ts';
import { freshDatabase, prepareDatabase } from './postgres.ts';
import { nowUs } from './clock.ts';
import { startWriter, systemAsSource, type RowSource, type WrittenStep } from './row-source.ts';
import type { SubscriberSpec } from './subscriber-messages.ts';
import { startSubscribers, type Subscribers } from './subscribers.ts';
import { startSystemProcess, type SystemProcess } from './system-process.ts';
import type { SystemSpec } from './systems.ts';

/** A step stops waiting for deliveries once none arrived for this long, */
const STALL_MS = 5_000;
/** or this long after its last row was written: what has not arrived by then counts as missing. */
const SETTLE_LIMIT_MS = 30_000;
const SETTLE_POLL_MS = 100;

/** What one step measured. */
export interface StepResult {
  /** Rows/s asked of the writer; 0 means as fast as it could. */
  readonly offeredRate: number;
  /** Rows committed per second. */
  readonly committedPerSecond: number;
  readonly rows: number;
  /** Row deliveries to subscribers (one row to ten subscribers is ten). */
  readonly deliveries: number;
  readonly deliveredPerSecond: number;
  /** Deliveries that had not arrived 30 s after the step (lost, or still queued), and that arrived twice. */
  readonly missing: number;
  readonly duplicates: number;
  readonly latencyMs: { p50: number; p95: number; p99: number; max: number };
  /** The INSERT's own round trip, commit included, as the writer saw it: part of every latency above. */
  readonly commitMs?: { p50: number; p95: number; p99: number; max: number };
  /**
   * From the commit to the system's send, as the system measured it (SystemSpec.lagMetric): the
   * upper bounds of the histogram buckets holding p50 and p99.
   */
  readonly systemLagMs?: { p50: number; p99: number };
  /** CPU the system under test used, as a share of one core, and per delivery. */
  readonly systemCpuCores: number;
  readonly systemCpuUsPerDelivery: number;
  readonly systemRssMb: number;
  readonly postgresCpuCores: number;
  /** PostgreSQL's CPU by who used it: each connection's application_name, or the background process. */
  readonly postgresCpuByRole: Record<string, number>;
  /** The writer's and subscribers' CPU, as a share of one core. */
  readonly loadCpuCores: number;
  /**
   * Seconds per second that each party's threads were ready to run but waited for a core: how
   * saturated the two cores were, as each party felt it.
   */
  readonly waitingForCpu: { system: number; postgres: number; load: number };
  /** Seconds from the first row written until the last delivery (or the stall). */
  readonly seconds: number;
}

/**
 * What a drain measured: rows committed as fast as the writers went while the system was stopped
 * (SIGSTOP), then delivered from the moment it was resumed. The database has finished writing by
 * then, so the rate is the system's own, as far as it and the load share the cores.
 */
export interface DrainResult {
  readonly rows: number;
  readonly deliveries: number;
  /** From the resumption to the last delivery. */
  readonly seconds: number;
  readonly deliveredPerSecond: number;
  readonly missing: number;
  readonly duplicates: number;
  readonly systemCpuCores: number;
  readonly systemCpuUsPerDelivery: number;
  readonly postgresCpuCores: number;
  readonly loadCpuCores: number;
}

/** A system under test, ready for steps. */
export interface Session {
  readonly system: SystemProcess;
  readonly subscribers: Subscribers;
  readonly connectSeconds: number;
  /** The system's resident memory before its subscribers connected. */
  readonly rssBeforeConnectBytes: number;
  readonly connected: { opened: number; failed: number; firstError?: string };
  /** Writes at `rate` for `durationMs`, then waits for the deliveries. */
  step(rate: number, durationMs: number, tenants: readonly string[], label: string): Promise<StepResult>;
  /** Stops the system, writes as fast as the writers go for `durationMs`, resumes it and times its delivery of the backlog. */
  drain(durationMs: number, tenants: readonly string[], label: string): Promise<DrainResult>;
  /** Writes until every subscriber got a row, so steps measure a subscribed steady state. */
  warmUp(tenants: readonly string[]): Promise<void>;
  close(): Promise<void>;
}

export interface SessionOptions {
  readonly postgres: BenchPostgres;
  readonly spec: SystemSpec;
  readonly jwtSecret: string;
  readonly subscribers: readonly SubscriberSpec[];
  readonly loadProcesses: number;
  /** Connections each load process opens at once. */
  readonly connectConcurrency?: number;
  readonly writerConnections: number;
  readonly noteBytes: number;
  readonly localAddresses?: readonly string[];
  readonly log: (line: string) => void;
}

/** Starts the system on a fresh database, its subscribers and its row source. */
export async function startSession(options: SessionOptions): Promise<Session> {
  const { spec, log } = options;
  await spec.prepare?.();
  let databaseUrl: string | undefined;
  if (spec.database) {
    databaseUrl = await freshDatabase(options.postgres.serverUrl, `bench_${spec.name.replace(/\W/g, '_')}`);
    await prepareDatabase(databaseUrl, spec.database);
  }
  const system = await startSystemProcess(spec.name, spec.args, {
    ...(databaseUrl ? { DATABASE_URL: databaseUrl } : {}),
    JWT_SECRET: options.jwtSecret,
    NOTE_BYTES: String(options.noteBytes),
  });
  const subscribers = startSubscribers(options.subscribers, options.loadProcesses);
  /** The system's own commit-to-send histogram now, if it has one. */
  const scrapeLag = async (): Promise<BucketCounts | undefined> => {
    if (!spec.lagMetric) return undefined;
    const response = await fetch(`http://127.0.0.1:${system.port}/metrics`);
    return parseBuckets(await response.text(), spec.lagMetric);
  };
  let source: RowSource | undefined;
  try {
    source = databaseUrl
      ? await startWriter(databaseUrl, options.writerConnections, options.noteBytes)
      : systemAsSource(system);
    const rssBeforeConnectBytes = rssBytes(system.pid);
    const connectStarted = performance.now();
    const connected = await subscribers.connect({
      host: '127.0.0.1',
      port: system.port,
      dialect: spec.dialect,
      localAddresses: options.localAddresses,
      concurrency: options.connectConcurrency,
    });
    const connectSeconds = (performance.now() - connectStarted) / 1000;
    log(`${spec.name}: ${connected.opened} connections in ${connectSeconds.toFixed(1)} s, ${connected.failed} failed`);
    if (connected.failed > 0) log(`${spec.name}: first failure: ${connected.firstError}`);
    const rowSource = source;
    const loadPids = (): number[] => [...subscribers.pids, ...(rowSource.pid ? [rowSource.pid] : [])];
    /** What each party has used so far: the system, PostgreSQL's `postgresPids`, the load. */
    const usageNow = (postgresPids: readonly number[]): PartyUsage => ({
      system: usageOf([system.pid]),
      postgres: usageOf(postgresPids),
      load: usageOf(loadPids()),
    });

    const session: Session = {
      system,
      subscribers,
      connectSeconds,
      rssBeforeConnectBytes,
      connected,
      async warmUp(tenants) {
        // One row per tenant, then wait for every subscriber to get one; write again only when a
        // subscription was not in place yet (graphql-ws has no acknowledgement of it).
        const deadline = performance.now() + 60_000;
        for (;;) {
          await rowSource.write(tenants.length, 1000, tenants);
          const roundEnds = performance.now() + 5_000;
          let progress = await subscribers.progress();
          while (progress.withoutEvents > 0 && performance.now() < roundEnds) {
            await new Promise((resolve) => setTimeout(resolve, 200));
            progress = await subscribers.progress();
          }
          if (progress.withoutEvents === 0) break;
          if (performance.now() > deadline) {
            throw new Error(`${spec.name}: ${progress.withoutEvents} subscribers got no row after 60 s (${progress.closed} closed)`);
          }
        }
        // Let the warm-up's deliveries drain, so that the first step starts from a quiet system.
        let events = -1;
        for (;;) {
          const progress = await subscribers.progress();
          if (progress.events === events) return;
          events = progress.events;
          await new Promise((resolve) => setTimeout(resolve, 500));
        }
      },
      async step(rate, durationMs, tenants, label) {
        subscribers.beginWindow();
        // The server's processes of the whole step: those alive at its start (PostgreSQL's own
        // background processes and the connections of the system and the writer).
        const postgresProcesses = await options.postgres.processes();
        const postgresPids = postgresProcesses.map((process) => process.pid);
        const before = usageNow(postgresPids);
        const lagBefore = await scrapeLag();
        const started = performance.now();
        const ticker = setInterval(() => {
          void subscribers.progress().then((progress) => {
            const seconds = (performance.now() - started) / 1000;
            log(
              `${label}: ${seconds.toFixed(0)} s, ${progress.events} deliveries, ` +
                `last second p99 ${latencySummaryMs(progress.histogram).p99} ms, system CPU ${(
                  usageSince(before.system).cpu / seconds
                ).toFixed(2)} cores`,
            );
          });
        }, 1000);
        let written: WrittenStep;
        try {
          written = await rowSource.write(rate, durationMs, tenants);
        } finally {
          clearInterval(ticker);
        }
        const settled = await settle(subscribers, written);
        const seconds = (settled.at - started) / 1000;
        const used = usedSince(before);
        const systemCpu = used.system.cpu;
        const lagAfter = await scrapeLag();
        const lag = lagBefore && lagAfter ? bucketsBetween(lagBefore, lagAfter) : undefined;
        const result: StepResult = {
          offeredRate: rate,
          committedPerSecond: round(written.rows / (written.elapsedMs / 1000)),
          rows: written.rows,
          deliveries: settled.events,
          deliveredPerSecond: round(settled.events / seconds),
          missing: settled.missing,
          duplicates: settled.duplicates,
          latencyMs: latencySummaryMs(settled.histogram),
          ...(written.commitHistogram ? { commitMs: latencySummaryMs(written.commitHistogram) } : {}),
          ...(lag ? { systemLagMs: { p50: bucketPercentileMs(lag, 0.5), p99: bucketPercentileMs(lag, 0.99) } } : {}),
          systemCpuCores: round(systemCpu / seconds, 2),
          systemCpuUsPerDelivery: settled.events ? round((systemCpu * 1e6) / settled.events, 2) : Number.NaN,
          systemRssMb: round(rssBytes(system.pid) / 2 ** 20, 1),
          postgresCpuCores: round(used.postgres.cpu / seconds, 2),
          postgresCpuByRole: cpuCoresByRole(postgresProcesses, used.postgres.cpuByProcess, seconds),
          loadCpuCores: round(used.load.cpu / seconds, 2),
          waitingForCpu: {
            system: round(used.system.waited / seconds, 2),
            postgres: round(used.postgres.waited / seconds, 2),
            load: round(used.load.waited / seconds, 2),
          },
          seconds: round(seconds, 2),
        };
        log(
          `${label}: ${result.committedPerSecond} rows/s committed, ${result.deliveredPerSecond} deliveries/s, ` +
            `p50/p99/max ${result.latencyMs.p50}/${result.latencyMs.p99}/${result.latencyMs.max} ms ` +
            `(commit p50/p99 ${result.commitMs?.p50 ?? '-'}/${result.commitMs?.p99 ?? '-'} ms` +
            `${result.systemLagMs ? `, commit to send p50/p99 ≤ ${result.systemLagMs.p50}/${result.systemLagMs.p99} ms` : ''}), ` +
            `missing ${result.missing}, duplicates ${result.duplicates}, system ${result.systemCpuCores} cores ` +
            `(${result.systemCpuUsPerDelivery} µs/delivery), postgres ${result.postgresCpuCores}, load ${result.loadCpuCores}; ` +
            `waiting for a core (s/s): system ${result.waitingForCpu.system}, postgres ${result.waitingForCpu.postgres}, load ${result.waitingForCpu.load}`,
        );
        return result;
      },
      async drain(durationMs, tenants, label) {
        subscribers.beginWindow();
        process.kill(system.pid, 'SIGSTOP');
        let written: WrittenStep;
        let resumedUs: number;
        let before: PartyUsage;
        try {
          written = await rowSource.write(0, durationMs, tenants);
          const postgresPids = (await options.postgres.processes()).map((process) => process.pid);
          before = usageNow(postgresPids);
          resumedUs = nowUs();
        } finally {
          // Whatever failed, the system runs again: a stopped one would hang the session's close.
          process.kill(system.pid, 'SIGCONT');
        }
        log(`${label}: ${written.rows} rows committed while ${spec.name} was stopped; resumed`);
        const settled = await settle(subscribers, written);
        const seconds = settled.lastEventUs > resumedUs ? (settled.lastEventUs - resumedUs) / 1e6 : Number.NaN;
        // CPU until the settle saw the end, a little past the last delivery (all charged to the
        // drain), in cores over the drain itself: nobody has much left to do after it.
        const used = usedSince(before);
        const result: DrainResult = {
          rows: written.rows,
          deliveries: settled.events,
          seconds: round(seconds, 2),
          deliveredPerSecond: round(settled.events / seconds),
          missing: settled.missing,
          duplicates: settled.duplicates,
          systemCpuCores: round(used.system.cpu / seconds, 2),
          systemCpuUsPerDelivery: settled.events ? round((used.system.cpu * 1e6) / settled.events, 2) : Number.NaN,
          postgresCpuCores: round(used.postgres.cpu / seconds, 2),
          loadCpuCores: round(used.load.cpu / seconds, 2),
        };
        log(
          `${label}: ${result.deliveries} deliveries in ${result.seconds} s (${result.deliveredPerSecond}/s), missing ${result.missing}, ` +
            `duplicates ${result.duplicates}, system ${result.systemCpuCores} cores (${result.systemCpuUsPerDelivery} µs/delivery), ` +
            `postgres ${result.postgresCpuCores}, load ${result.loadCpuCores}`,
        );
        return result;
      },
      async close() {
        await subscribers.close();
        await rowSource.close();
        await system.stop();
      },
    };
    return session;
  } catch (error) {
    await subscribers.close().catch(() => undefined);
    await source?.close().catch(() => undefined);
    await system.stop();
    throw error;
  }
}

/** Polls the subscribers until no delivery of the step is missing, or deliveries stalled. */
async function settle(
  subscribers: Subscribers,
  written: WrittenStep,
): Promise<{ missing: number; duplicates: number; events: number; histogram: Histogram; lastEventUs: number; at: number }> {
  let lastEvents = -1;
  let lastChange = performance.now();
  const limit = lastChange + SETTLE_LIMIT_MS;
  for (;;) {
    const result = await subscribers.settle(written.low, written.high, written.rowsByTenant);
    const now = performance.now();
    if (result.missing <= 0 || now > limit) return { ...result, at: now };
    if (result.events !== lastEvents) {
      lastEvents = result.events;
      lastChange = now;
    } else if (now - lastChange > STALL_MS) return { ...result, at: lastChange };
    await new Promise((resolve) => setTimeout(resolve, SETTLE_POLL_MS));
  }
}

/** Each party's usage snapshot: the system under test, PostgreSQL, the load. */
interface PartyUsage {
  readonly system: UsageSnapshot;
  readonly postgres: UsageSnapshot;
  readonly load: UsageSnapshot;
}

/** What each party used since `before`. */
function usedSince(before: PartyUsage): Record<keyof PartyUsage, ReturnType<typeof usageSince>> {
  return { system: usageSince(before.system), postgres: usageSince(before.postgres), load: usageSince(before.load) };
}

function round(value: number, digits = 0): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}

/** Each role's share of a core over `seconds`, from the CPU seconds each process used (`used`, in the same order); roles that used none are left out. */
function cpuCoresByRole(processes: readonly PostgresProcess[], used: readonly number[], seconds: number): Record<string, number> {
  const byRole: Record<string, number> = {};
  processes.forEach((process, index) => {
    byRole[process.role] = (byRole[process.role] ?? 0) + used[index]!;
  });
  return Object.fromEntries(
    Object.entries(byRole)
      .map(([role, used]) => [role, round(used / seconds, 2)] as const)
      .filter(([, cores]) => cores > 0)
      .sort(([, a], [, b]) => b - a),
  );
}
