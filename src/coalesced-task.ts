// A task that many callers ask for and one run answers: the catalog reload, which every grant
// change asks for, and so does anyone who may connect (NOTIFY needs no privilege).

export interface CoalescedTask {
  /** Runs the task now; or, when a run is under way or one started less than `spacingMs` ago, once after it. */
  request(): void;
  /** No run starts from here on (a run under way finishes). */
  stop(): void;
}

export interface CoalescedTaskOptions {
  /** The least time between the starts of two runs: what a flood of requests can cost. */
  readonly spacingMs: number;
  readonly onError: (error: unknown) => void;
}

export function createCoalescedTask(task: () => Promise<void>, options: CoalescedTaskOptions): CoalescedTask {
  let running = false;
  let requested = false;
  let stopped = false;
  let lastStart = Number.NEGATIVE_INFINITY;
  let spacingTimer: NodeJS.Timeout | undefined;

  const start = (): void => {
    spacingTimer = undefined;
    if (stopped || running || !requested) return;
    const wait = lastStart + options.spacingMs - performance.now();
    if (wait > 0) {
      spacingTimer = setTimeout(start, wait);
      return;
    }
    requested = false;
    running = true;
    lastStart = performance.now();
    task()
      .catch(options.onError)
      .finally(() => {
        running = false;
        // Requested meanwhile: what changed after this run read may not be in what it read.
        if (requested) start();
      });
  };

  return {
    request() {
      requested = true;
      if (!spacingTimer) start();
    },
    stop() {
      stopped = true;
      clearTimeout(spacingTimer);
      spacingTimer = undefined;
    },
  };
}
