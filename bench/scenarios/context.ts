// What every scenario gets from the harness.
import type { BenchPostgres } from '../lib/postgres.ts';
import type { SystemSpec } from '../lib/systems.ts';

export interface ScenarioContext {
  readonly postgres: BenchPostgres;
  /** The systems to measure, pg-relay first. */
  readonly systems: readonly SystemSpec[];
  readonly jwtSecret: string;
  /** Progress, one line at a time, on stderr. */
  readonly log: (line: string) => void;
}
