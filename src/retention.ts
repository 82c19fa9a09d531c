import type { Logger } from 'pino';
import type { EventLog } from './db/event-log.ts';

export interface RetentionOptions {
  readonly eventLog: EventLog;
  readonly retentionMs: number;
  readonly logger: Logger;
  /** How often to prune; by default a quarter of the retention, between 1 s and 60 s. */
  readonly intervalMs?: number;
  /** Commits deleted per statement: small enough that no statement holds locks for long. */
  readonly batchSize?: number;
}

/**
 * Deletes events older than the retention, in small batches, on a timer. Every relay runs one;
 * relay.prune lets one of them work at a time (the others skip their turn).
 */
export function createRetention(options: RetentionOptions): { start(): void; stop(): Promise<void> } {
  const { eventLog, retentionMs, logger } = options;
  const intervalMs = options.intervalMs ?? Math.min(60_000, Math.max(1_000, Math.floor(retentionMs / 4)));
  const batchSize = options.batchSize ?? 5_000;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let stopped = false;

  async function pruneAll(): Promise<void> {
    let total = 0;
    for (;;) {
      const pruned = await eventLog.prune(retentionMs, batchSize);
      total += pruned;
      if (pruned < batchSize || stopped) break;
    }
    if (total > 0) logger.info({ commits: total }, 'retention: pruned old events');
  }

  function tick(): void {
    running = pruneAll()
      .catch((error: unknown) => logger.warn({ err: error }, 'retention: pruning failed; trying again later'))
      .finally(() => {
        running = undefined;
        if (!stopped) timer = setTimeout(tick, intervalMs);
      });
  }

  return {
    start() {
      timer = setTimeout(tick, intervalMs);
    },
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}
