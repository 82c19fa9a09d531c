// fanout: 1,000 hospital subscribers over 100 hospitals plus 100 admins (each row reaches its
// hospital's 10 and every admin: 110 deliveries), the write rate stepped up until
// the system (or PostgreSQL) saturates, then one step as fast as the writers go. Last, a drain: the
// system is stopped while the writers go flat out, then resumed, and its delivery of that backlog
// is timed; PostgreSQL is done writing then, so the rate is the system's own. Every system of the
// run on the same workload, one after the other.
import type { DrainResult, StepResult } from '../lib/session.ts';
import { subscriberSpecs, tenantNames } from '../lib/tokens.ts';
import { startScenarioSession, type ScenarioContext } from './context.ts';

export interface FanoutOptions {
  readonly hospitals: number;
  readonly perHospital: number;
  readonly admins: number;
  readonly rates: readonly number[];
  readonly stepMs: number;
  /** After the rates, one step as fast as the writers go (where the system kept up). */
  readonly thenMax: boolean;
  /** Then, writing this long with the system stopped, a drain of the backlog (0: none). */
  readonly drainMs: number;
  /**
   * Drains only a system whose best step delivered at least this share of what DRAIN_MIN_RATE
   * asks (0: every system with a database, as the quick run does, whose backlog is small).
   */
  readonly drainMinShare: number;
}

/**
 * A system is drained if some step of it delivered at least half of what this write rate asks
 * (rows/s times deliveries per row): a backlog of a 2-second flat-out write (about 2 million
 * deliveries here) then drains in well under a minute. Judged on deliveries, not on keeping up with
 * a step, so that a system whose peak sits near that step is drained in every run or in none.
 */
const DRAIN_MIN_RATE = 1000;

export const FANOUT_DEFAULTS: FanoutOptions = {
  hospitals: 100,
  perHospital: 10,
  admins: 100,
  rates: [50, 100, 250, 500, 1000, 2000, 4000, 8000],
  stepMs: 5000,
  thenMax: true,
  drainMs: 2000,
  drainMinShare: 0.5,
};

export interface FanoutSystemResult {
  readonly subscribers: number;
  /** Subscribers each row must reach: its hospital's and every admin. */
  readonly deliveriesPerRow: number;
  readonly connectionsPerSecond: number;
  readonly steps: StepResult[];
  /**
   * The step written as fast as the writers could: PostgreSQL's commit rate through this system's
   * triggers. Skipped for a system that already fell behind the writers at a set rate.
   */
  readonly max?: StepResult;
  /**
   * Its own delivery rate: the backlog of rows committed while it was stopped, delivered with the
   * database no longer writing. Only for systems with a database fast enough (DRAIN_MIN_RATE).
   */
  readonly drain?: DrainResult;
  /** Why a run with drains did not drain this system. */
  readonly notDrained?: string;
}

/** The system fell behind: deliveries 10% short of the rows committed, latency ran away, or rows missing. */
function systemSaturated(step: StepResult, deliveriesPerRow: number): boolean {
  return step.deliveredPerSecond < 0.9 * step.committedPerSecond * deliveriesPerRow || step.latencyMs.p99 > 1000 || step.missing > 0;
}

/** The writers (PostgreSQL) could not commit the rate asked. */
function writersSaturated(step: StepResult): boolean {
  return step.committedPerSecond < 0.9 * step.offeredRate;
}

export async function runFanout(context: ScenarioContext, options: FanoutOptions = FANOUT_DEFAULTS): Promise<Record<string, FanoutSystemResult>> {
  const tenants = tenantNames(options.hospitals);
  const specs = await subscriberSpecs(context.jwtSecret, tenants, options.perHospital, options.admins);
  const deliveriesPerRow = options.perHospital + options.admins;
  const results: Record<string, FanoutSystemResult> = {};
  for (const spec of context.systems) {
    context.log(`fanout: ${spec.name}, ${specs.length} subscribers`);
    const session = await startScenarioSession(context, spec, specs);
    try {
      await session.warmUp(tenants);
      const steps: StepResult[] = [];
      let behind = false;
      for (const rate of options.rates) {
        const step = await session.step(rate, options.stepMs, tenants, `fanout ${spec.name} ${rate ? `${rate}/s` : 'max'}`);
        steps.push(step);
        behind = systemSaturated(step, deliveriesPerRow);
        if (behind || writersSaturated(step)) break;
      }
      // As fast as the writers go only where the system kept up: otherwise it measures a queue.
      const max = behind || !options.thenMax ? undefined : await session.step(0, options.stepMs, tenants, `fanout ${spec.name} max`);
      const best = Math.max(0, ...steps.map((step) => step.deliveredPerSecond));
      const fastEnough = best >= options.drainMinShare * DRAIN_MIN_RATE * deliveriesPerRow;
      const notDrained = !spec.database
        ? 'it has no database'
        : fastEnough
          ? undefined
          : `its best step delivered ${Math.round(best)}/s, under ${options.drainMinShare * 100}% of what ${DRAIN_MIN_RATE} rows/s asks: its drain could take minutes`;
      const drain = options.drainMs > 0 && !notDrained ? await session.drain(options.drainMs, tenants, `fanout ${spec.name} drain`) : undefined;
      results[spec.name] = {
        subscribers: session.connected.opened,
        deliveriesPerRow,
        connectionsPerSecond: Math.round(session.connected.opened / session.connectSeconds),
        steps,
        ...(max ? { max } : {}),
        ...(drain ? { drain } : {}),
        ...(options.drainMs > 0 && notDrained ? { notDrained } : {}),
      };
    } finally {
      await session.close();
    }
  }
  return results;
}
