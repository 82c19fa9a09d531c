// Awaiting the relay's own log lines instead of sleeping. `startTestRelay` collects parsed pino lines
// into an array by calling its `push`; watching that array's pushes tells us at once when a line
// arrives, without changing the helper that owns it.

/** One parsed pino line. */
export type LogLine = Record<string, unknown>;

export interface LogWatch {
  /** Position of the next line to be written: lines from here on are "after" this moment. */
  mark(): number;
  /**
   * The first line at or after `after` (default: from the start) that satisfies `accept`, now or
   * when it is written; rejects with `what` in the message if none comes within `timeoutMs`.
   */
  waitFor(accept: (line: LogLine) => boolean, options?: { after?: number; timeoutMs?: number; what?: string }): Promise<LogLine>;
}

interface Waiter {
  readonly accept: (line: LogLine) => boolean;
  readonly after: number;
  readonly resolve: (line: LogLine) => void;
}

const watches = new WeakMap<LogLine[], LogWatch>();

/** Watches `lines` (e.g. `relay.logLines`); one watch per array, shared by every caller. */
export function watchLogLines(lines: LogLine[]): LogWatch {
  const existing = watches.get(lines);
  if (existing) return existing;
  const waiters = new Set<Waiter>();
  const arrayPush = Array.prototype.push;
  // An own property shadows Array.prototype.push for this one array only.
  Object.defineProperty(lines, 'push', {
    configurable: true,
    writable: true,
    value(this: LogLine[], ...items: LogLine[]): number {
      const start = this.length;
      const length = arrayPush.apply(this, items);
      for (const waiter of [...waiters]) {
        for (let index = Math.max(start, waiter.after); index < length; index++) {
          const line = this[index]!;
          if (waiter.accept(line)) {
            waiters.delete(waiter);
            waiter.resolve(line);
            break;
          }
        }
      }
      return length;
    },
  });

  const watch: LogWatch = {
    mark: () => lines.length,
    waitFor(accept, options = {}) {
      const after = options.after ?? 0;
      const timeoutMs = options.timeoutMs ?? 10_000;
      const found = lines.slice(after).find(accept);
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(waiter);
          reject(new Error(`${options.what ?? 'the expected log line'}: not logged within ${timeoutMs} ms`));
        }, timeoutMs);
        const waiter: Waiter = {
          accept,
          after,
          resolve: (line) => {
            clearTimeout(timer);
            resolve(line);
          },
        };
        waiters.add(waiter);
      });
    },
  };
  watches.set(lines, watch);
  return watch;
}
