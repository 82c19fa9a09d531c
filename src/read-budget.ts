// How many events a read of the log asks for. PostgreSQL cuts a read to its byte budget only after
// measuring every event its count allows (the JSON text of each is made to be measured): a read
// asking for 1,000 events of 1 MB makes a gigabyte of text to return four, and a burst of large
// rows read that way cost PostgreSQL the square of its length. So a read asks for about as many
// events as fit, at the size of those just read. Pure.

import type { ReadLimit } from './db/event-log.ts';

/** What the next limit is made from: the length of each event's JSON text (LoggedEvent.textLength). */
export interface MeasuredRead {
  readonly events: readonly { readonly textLength: number }[];
}

/**
 * The limit of the read after `read`, within `max`: as many events as fit in its bytes at the
 * average size of `read`'s events, at least one; `max` when `read` had none to measure.
 */
export function nextReadLimit(max: ReadLimit, read: MeasuredRead): ReadLimit {
  const bytes = read.events.reduce((sum, event) => sum + event.textLength, 0);
  if (bytes === 0) return max;
  const fitting = Math.floor((max.bytes * read.events.length) / bytes);
  return { events: Math.max(1, Math.min(max.events, fitting)), bytes: max.bytes };
}
