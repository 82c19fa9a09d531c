import type { Histogram } from './histogram.ts';

// What the harness and the writer process say to each other over the fork's IPC channel.

/** Harness → writer. */
export type WriterCommand =
  | {
      readonly type: 'connect';
      readonly databaseUrl: string;
      readonly connections: number;
      readonly noteBytes: number;
      /** false: the writers' commits do not wait for the WAL to reach the disk. */
      readonly synchronousCommit: boolean;
    }
  /** Writes one row per transaction for `durationMs`, `rate` rows/s in all (0: as fast as it can). */
  | { readonly type: 'write'; readonly rate: number; readonly durationMs: number; readonly tenants: readonly string[] }
  | { readonly type: 'close' };

/** Writer → harness. */
export type WriterReport =
  | { readonly type: 'connected' }
  | {
      readonly type: 'written';
      /** The step's rows are exactly the ids low..high (nobody else writes meanwhile). */
      readonly low: number;
      readonly high: number;
      readonly rows: number;
      readonly rowsByTenant: Record<string, number>;
      readonly elapsedMs: number;
      /** How long each INSERT took to commit, as its writer saw it; absent where nothing commits. */
      readonly commitHistogram?: Histogram;
    }
  | { readonly type: 'failed'; readonly message: string }
  | { readonly type: 'closed' };
