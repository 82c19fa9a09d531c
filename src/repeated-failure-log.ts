import type { Logger } from 'pino';

/**
 * Logs a failure that is retried every few hundred milliseconds while its cause lasts (PostgreSQL
 * down or restarting, say): the first failure at once, then one line now and then with how many
 * failed since, and one when it works again. A line per retry buried every other line of the log
 * (two a second from each of the relay's retry loops) and filled disks during an outage.
 */
export interface RepeatedFailureLog {
  /** A try failed. */
  failed(error: unknown): void;
  /** A try worked: ends the current run of failures, if any. */
  succeeded(): void;
}

export interface RepeatedFailureLogOptions {
  readonly logger: Logger;
  readonly level: 'warn' | 'error';
  /** What failed and what the relay does about it, as the log line's message. */
  readonly message: string;
  /** Logged (info) when a try works after failures. */
  readonly recoveredMessage: string;
  /** A run of failures is logged at most this often after its first line. */
  readonly everyMs?: number;
  /** A monotonic clock in ms (performance.now by default): a stepped wall clock must not mute it. */
  readonly nowMs?: () => number;
}

const DEFAULT_EVERY_MS = 30_000;

export function createRepeatedFailureLog(options: RepeatedFailureLogOptions): RepeatedFailureLog {
  const { logger, level, message, recoveredMessage } = options;
  const everyMs = options.everyMs ?? DEFAULT_EVERY_MS;
  const nowMs = options.nowMs ?? (() => performance.now());
  /** The current run of failures: when it began, and when and at what count it was last logged. */
  let run: { startedMs: number; failures: number; loggedMs: number; loggedFailures: number } | undefined;

  return {
    failed(error) {
      const now = nowMs();
      if (run === undefined) {
        run = { startedMs: now, failures: 1, loggedMs: now, loggedFailures: 1 };
        logger[level]({ err: error }, message);
        return;
      }
      run.failures++;
      if (now - run.loggedMs < everyMs) return;
      const failuresSinceLogged = run.failures - run.loggedFailures;
      const failingForSeconds = Math.round((now - run.startedMs) / 1000);
      logger[level]({ err: error, failuresSinceLogged, failingForSeconds }, `${message} (still failing)`);
      run.loggedMs = now;
      run.loggedFailures = run.failures;
    },
    succeeded() {
      if (run === undefined) return;
      const failingForSeconds = Math.round((nowMs() - run.startedMs) / 1000);
      logger.info({ failures: run.failures, failingForSeconds }, recoveredMessage);
      run = undefined;
    },
  };
}
