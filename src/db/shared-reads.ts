// Reads that ask the same thing at the same moment share one query. When a relay stops, its clients
// resume on the others within a second or two, most of them from the same last event: without
// this, each replay would read (and parse) the same page of the log again.

export interface SharedReads<T> {
  /** The result of `read()`, or of the same read (same `key`) already under way. */
  run(key: string, read: () => Promise<T>): Promise<T>;
}

/** Shares reads only while they are under way: a finished read is never served again. */
export function createSharedReads<T>(): SharedReads<T> {
  const underWay = new Map<string, Promise<T>>();
  return {
    run(key, read) {
      const running = underWay.get(key);
      if (running) return running;
      const started = read().finally(() => underWay.delete(key));
      underWay.set(key, started);
      return started;
    },
  };
}
