// The subscriber side of a run: several forked load processes sharing the subscribers, their
// reports added together.
import { forkChild, type Child } from './child.ts';
import { cpuProfileArgs } from './cpu-profile.ts';
import { createHistogram, mergeHistogram, type Histogram } from './histogram.ts';
import type { SubscriberCommand, SubscriberReport, SubscriberSpec } from './subscriber-messages.ts';

type LoadProcess = Child<SubscriberCommand, SubscriberReport>;

/** Every subscriber of a run. */
export interface Subscribers {
  readonly pids: readonly number[];
  /** Opens every connection; resolves with how many opened and failed. */
  connect(target: { host: string; port: number; dialect: string; localAddresses?: readonly string[]; concurrency?: number }): Promise<{
    opened: number;
    failed: number;
    firstError?: string;
  }>;
  beginWindow(): void;
  progress(): Promise<{ events: number; withoutEvents: number; closed: number; histogram: Histogram }>;
  settle(low: number, high: number, rowsByTenant: Record<string, number>): Promise<{
    missing: number;
    duplicates: number;
    events: number;
    histogram: Histogram;
    /** When the window's last event arrived at any subscriber (µs of CLOCK_MONOTONIC), 0 if none did. */
    lastEventUs: number;
  }>;
  close(): Promise<void>;
}

/** Forks `processes` load processes and deals `specs` out to them. */
export function startSubscribers(specs: readonly SubscriberSpec[], processes: number): Subscribers {
  const count = Math.max(1, Math.min(processes, specs.length));
  const children: LoadProcess[] = Array.from({ length: count }, () =>
    forkChild<SubscriberCommand, SubscriberReport>(new URL('./subscriber-process.js', import.meta.url), cpuProfileArgs()),
  );
  const shares: SubscriberSpec[][] = children.map(() => []);
  specs.forEach((spec, index) => shares[index % count]!.push(spec));
  const all = <T extends SubscriberReport['type']>(command: SubscriberCommand, type: T) =>
    Promise.all(
      children.map((child) => {
        const report = child.next(type);
        child.send(command);
        return report;
      }),
    );
  return {
    pids: children.map((child) => child.process.pid!),
    async connect(target) {
      const reports = await Promise.all(
        children.map((child, index) => {
          const report = child.next('connected');
          child.send({
            type: 'connect',
            host: target.host,
            port: target.port,
            dialect: target.dialect,
            subscribers: shares[index]!,
            localAddresses: target.localAddresses ?? ['127.0.0.1'],
            concurrency: target.concurrency ?? 50,
          });
          return report;
        }),
      );
      return {
        opened: reports.reduce((sum, report) => sum + report.opened, 0),
        failed: reports.reduce((sum, report) => sum + report.failed, 0),
        firstError: reports.find((report) => report.firstError)?.firstError,
      };
    },
    beginWindow() {
      for (const child of children) child.send({ type: 'begin-window' });
    },
    async progress() {
      const reports = await all({ type: 'progress' }, 'progress');
      return {
        events: reports.reduce((sum, report) => sum + report.events, 0),
        withoutEvents: reports.reduce((sum, report) => sum + report.withoutEvents, 0),
        closed: reports.reduce((sum, report) => sum + report.closed, 0),
        histogram: mergedHistogram(reports),
      };
    },
    async settle(low, high, rowsByTenant) {
      const reports = await all({ type: 'settle', low, high, rowsByTenant }, 'settled');
      return {
        missing: reports.reduce((sum, report) => sum + report.missing, 0),
        duplicates: reports.reduce((sum, report) => sum + report.duplicates, 0),
        events: reports.reduce((sum, report) => sum + report.events, 0),
        histogram: mergedHistogram(reports),
        lastEventUs: Math.max(0, ...reports.map((report) => report.lastEventUs)),
      };
    },
    async close() {
      await Promise.all(
        children.map(async (child) => {
          if (child.process.exitCode !== null) return;
          const closed = child.next('closed').catch(() => undefined);
          child.send({ type: 'close' });
          await closed;
          await child.exited();
        }),
      );
    },
  };
}

/** The load processes' latencies together. */
function mergedHistogram(reports: ReadonlyArray<{ histogram: Histogram }>): Histogram {
  const histogram = createHistogram();
  for (const report of reports) mergeHistogram(histogram, report.histogram);
  return histogram;
}
