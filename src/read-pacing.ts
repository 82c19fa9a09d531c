// How long a busy event stream waits before its next read of the log. While commits keep coming,
// the wake-up bell is not armed (so writers send no NOTIFY) and the stream reads on a timer. Each
// read costs the relay and PostgreSQL a round trip whatever it carries; under a heavy stream,
// reading less often carries more events per read and leaves the cores to the writers, at a few
// milliseconds of latency where queueing already costs more.

/** The wait at up to LIGHT_EVENTS_PER_SECOND. */
export const LIGHT_RECHECK_MS = 3;
/** The wait from HEAVY_EVENTS_PER_SECOND on. */
export const HEAVY_RECHECK_MS = 10;
export const LIGHT_EVENTS_PER_SECOND = 2_000;
export const HEAVY_EVENTS_PER_SECOND = 8_000;

/** The wait before the next read, in whole ms (timers' unit), for a stream delivering `eventsPerSecond`: linear in between. */
export function busyRecheckMs(eventsPerSecond: number): number {
  if (!(eventsPerSecond > LIGHT_EVENTS_PER_SECOND)) return LIGHT_RECHECK_MS;
  if (eventsPerSecond >= HEAVY_EVENTS_PER_SECOND) return HEAVY_RECHECK_MS;
  const share = (eventsPerSecond - LIGHT_EVENTS_PER_SECOND) / (HEAVY_EVENTS_PER_SECOND - LIGHT_EVENTS_PER_SECOND);
  return Math.round(LIGHT_RECHECK_MS + share * (HEAVY_RECHECK_MS - LIGHT_RECHECK_MS));
}
