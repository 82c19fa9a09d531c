// How much of the log a replay holds at once. A replay keeps its page while it waits for a client
// that reads slowly or not at all, so a page counted in events alone would let one paused client
// hold 500 rows of any size (500 MB of 1 MB rows). Pages are cut to a byte budget instead, and the
// next read asks for about as many events as fit in it.

/** What a replay needs to know of an event to budget a page. */
export interface SizedEvent {
  /** Its JSON text's length (see LoggedEvent.textLength). */
  readonly textLength: number;
}

/**
 * How many of `events`, from the first, fit in `maxBytes`: always at least one (an event larger
 * than the budget is sent on its own), and all of them when they fit.
 */
export function eventsWithinBudget(events: readonly SizedEvent[], maxBytes: number): number {
  let bytes = 0;
  for (let index = 0; index < events.length; index++) {
    bytes += events[index]!.textLength;
    if (bytes > maxBytes) return Math.max(1, index);
  }
  return events.length;
}

/**
 * The limit of the next read after `kept`: as many events as fit in the budget at their average
 * size, between 1 and `maxEvents`; `maxEvents` when nothing was kept to measure.
 */
export function nextPageLimit(kept: readonly SizedEvent[], maxBytes: number, maxEvents: number): number {
  if (kept.length === 0) return maxEvents;
  const averageBytes = kept.reduce((sum, event) => sum + event.textLength, 0) / kept.length;
  if (averageBytes === 0) return maxEvents;
  return Math.max(1, Math.min(maxEvents, Math.floor(maxBytes / averageBytes)));
}
