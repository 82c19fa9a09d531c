// Turns at a shared resource, first come first served: at most `max` holders at once, the others
// wait in line. Replays' reads of the log take turns at the pool, so that live delivery always
// finds a connection free; a connection's replays take turns at sending a page, so that a client
// that stops reading holds one page, not one per subscription. Pure: no I/O, no timers.

/** One turn, held until released; releasing it again does nothing. */
export interface Turn {
  release(): void;
}

/** A line of waiters for at most `max` turns at once. */
export interface Turns {
  /** Resolves once a turn is free; the caller must release it. */
  take(): Promise<Turn>;
  /** A turn if one is free and nobody waits for it, else null (nothing is queued). */
  tryTake(): Turn | null;
  /** Runs `work` in a turn of its own, released when it settles. */
  run<T>(work: () => Promise<T>): Promise<T>;
  /** Turns held and waiters in line, for tests and metrics. */
  stats(): { held: number; waiting: number };
}

/** At most `max` turns at once (1 or more). */
export function createTurns(max: number): Turns {
  let held = 0;
  const line: ((turn: Turn) => void)[] = [];
  const grant = (): Turn => {
    held++;
    let released = false;
    return {
      release() {
        if (released) return;
        released = true;
        held--;
        const next = line.shift();
        if (next) next(grant());
      },
    };
  };
  const take = (): Promise<Turn> => (held < max ? Promise.resolve(grant()) : new Promise((resolve) => line.push(resolve)));
  return {
    take,
    tryTake: () => (held < max ? grant() : null),
    async run(work) {
      const turn = await take();
      try {
        return await work();
      } finally {
        turn.release();
      }
    },
    stats: () => ({ held, waiting: line.length }),
  };
}
