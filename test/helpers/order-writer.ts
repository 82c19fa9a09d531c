// A writer that keeps committing INSERTs into `orders` on its own connection, as an application
// would during a fault, and records exactly which rows committed, in commit order. It rides out an
// outage: a failed INSERT is retried with the same id on a new connection, and a retry that finds
// the id taken proves that the earlier attempt did commit (its acknowledgement was lost).
import pg from 'pg';

export interface OrderWriter {
  /** Ids of the committed rows, in commit order (one connection, one INSERT at a time). */
  readonly committed: readonly string[];
  /** Failed attempts (connection lost, server down), each retried. */
  failures(): number;
  /** Resolves once `count` rows in all have committed; rejects naming `what` after `timeoutMs`. */
  waitForCommitted(count: number, what: string, timeoutMs?: number): Promise<void>;
  /** Stops after the INSERT in progress; resolves once no INSERT is in flight. */
  stop(): Promise<void>;
}

export interface OrderWriterOptions {
  readonly databaseUrl: string;
  /** Prefix of the ids, so that the rows of one writer are recognisable. */
  readonly prefix: string;
  /** Pause between commits (paces the writer; nothing waits on it). */
  readonly intervalMs?: number;
  /** Pause before retrying after a failure (the server may be restarting). */
  readonly retryDelayMs?: number;
  readonly hospitalId?: string;
}

const UNIQUE_VIOLATION = '23505';

/** Starts the writer at once; call stop() before reading the log for the final comparison. */
export function startOrderWriter(options: OrderWriterOptions): OrderWriter {
  const intervalMs = options.intervalMs ?? 3;
  const retryDelayMs = options.retryDelayMs ?? 50;
  const committed: string[] = [];
  const waiters = new Set<{ count: number; resolve: () => void }>();
  let failures = 0;
  let stopping = false;
  let client: pg.Client | undefined;

  async function connection(): Promise<pg.Client> {
    if (client) return client;
    const fresh = new pg.Client({ connectionString: options.databaseUrl, application_name: 'test writer' });
    // A lost link shows up as the next query's failure; the 'error' event itself needs no action.
    fresh.on('error', () => undefined);
    await fresh.connect().catch(async (error: unknown) => {
      await fresh.end().catch(() => undefined);
      throw error;
    });
    client = fresh;
    return fresh;
  }

  async function insert(id: string): Promise<void> {
    for (let retrying = false; ; retrying = true) {
      try {
        const db = await connection();
        await db.query(`insert into orders (id, hospital_id, customer_id, status) values ($1, $2, $3, 'placed')`, [
          id,
          options.hospitalId ?? 'H1',
          `c-${id}`,
        ]);
        return;
      } catch (error) {
        if (retrying && (error as { code?: string }).code === UNIQUE_VIOLATION) return;
        failures++;
        const broken = client;
        client = undefined;
        await broken?.end().catch(() => undefined);
        await delay(retryDelayMs);
      }
    }
  }

  const loop = (async () => {
    for (let n = 1; !stopping; n++) {
      const id = `${options.prefix}-${String(n).padStart(6, '0')}`;
      await insert(id);
      committed.push(id);
      for (const waiter of [...waiters]) {
        if (committed.length >= waiter.count) {
          waiters.delete(waiter);
          waiter.resolve();
        }
      }
      if (intervalMs > 0) await delay(intervalMs);
    }
  })();

  return {
    committed,
    failures: () => failures,
    waitForCommitted(count, what, timeoutMs = 20_000) {
      if (committed.length >= count) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(waiter);
          reject(new Error(`${what}: the writer committed ${committed.length} of ${count} rows within ${timeoutMs} ms`));
        }, timeoutMs);
        const waiter = {
          count,
          resolve: () => {
            clearTimeout(timer);
            resolve();
          },
        };
        waiters.add(waiter);
      });
    },
    async stop() {
      stopping = true;
      await loop;
      await client?.end().catch(() => undefined);
      client = undefined;
    },
  };
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
