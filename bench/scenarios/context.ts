// What every scenario gets from the harness.
import type { BenchPostgres } from '../lib/postgres.ts';
import { startSession, type Session, type SessionOptions } from '../lib/session.ts';
import type { SubscriberSpec } from '../lib/subscriber-messages.ts';
import type { SystemSpec } from '../lib/systems.ts';

export interface ScenarioContext {
  readonly postgres: BenchPostgres;
  /** The systems to measure, pg-relay first. */
  readonly systems: readonly SystemSpec[];
  readonly jwtSecret: string;
  /** Progress, one line at a time, on stderr. */
  readonly log: (line: string) => void;
}

/** A session of `spec` with the scenarios' usual load: 2 subscriber processes, 4 writer connections, 100-byte notes. */
export function startScenarioSession(
  context: ScenarioContext,
  spec: SystemSpec,
  subscribers: readonly SubscriberSpec[],
  overrides: Partial<SessionOptions> = {},
): Promise<Session> {
  return startSession({
    postgres: context.postgres,
    spec,
    jwtSecret: context.jwtSecret,
    subscribers,
    loadProcesses: 2,
    writerConnections: 4,
    noteBytes: 100,
    log: context.log,
    ...overrides,
  });
}
