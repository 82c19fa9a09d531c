// A private PostgreSQL cluster that a test can stop and start again ON THE SAME PORT, as an
// operator restarting the server would: src/db/embedded.ts's cluster, paused and resumed.
import { startEmbeddedPostgres } from '../../src/db/embedded.ts';

export interface RestartablePostgres {
  /** Connection string of the cluster's `postgres` database (its port never changes). */
  readonly url: string;
  readonly port: number;
  /** Fast shutdown (SIGINT: sessions are terminated, then a checkpoint); the data stays. */
  stop(): Promise<void>;
  /** Starts the stopped cluster again on the same port. */
  start(): Promise<void>;
  /** Stops the cluster if it runs and deletes its folder. Idempotent. */
  destroy(): Promise<void>;
  /** The server's recent log, for failure messages. */
  log(): string;
}

/** Creates and starts a cluster in `dir` (an empty folder of the test's own). */
export async function startRestartablePostgres(dir: string): Promise<RestartablePostgres> {
  const cluster = await startEmbeddedPostgres({ dir, temporary: true });
  return {
    url: cluster.url,
    port: cluster.port,
    stop: () => cluster.pause(),
    start: () => cluster.resume(),
    destroy: () => cluster.stop(),
    log: () => cluster.log(),
  };
}
