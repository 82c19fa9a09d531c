// The wall clock with sub-millisecond resolution, for the commit-to-send lag: PostgreSQL stamps
// commits in microseconds, while Date.now() has whole milliseconds (its truncation alone would
// put a 2.9 ms lag in a 2 ms bucket). performance.timeOrigin + performance.now() has microseconds
// but follows the wall clock only as it was when the process started, so it is re-anchored
// whenever the two disagree by more than a Date.now() tick can explain (the clock was set).

export interface WallClock {
  /** Milliseconds since the epoch, with a fraction. */
  nowMs(): number;
}

/** How far apart the precise and the whole-millisecond reading may be before re-anchoring. */
const REANCHOR_AFTER_MS = 2;

export function createWallClock(
  coarseMs: () => number = Date.now,
  monotonicMs: () => number = () => performance.now(),
  originMs: number = performance.timeOrigin,
): WallClock {
  let offsetMs = originMs;
  return {
    nowMs() {
      const monotonic = monotonicMs();
      const coarse = coarseMs();
      let precise = offsetMs + monotonic;
      if (Math.abs(precise - coarse) > REANCHOR_AFTER_MS) {
        offsetMs = coarse - monotonic;
        precise = coarse;
      }
      return precise;
    },
  };
}
