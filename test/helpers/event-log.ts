// The event log read back from the database, as the oracle of what `since` must replay: every
// committed event in commit order (relay.commits.pos, then relay.events.id). Tests compare what a
// client received with it, event for event.

import type { Frame, TestClient } from './ws-client.ts';
import { nextFrame } from './frames.ts';

/** Something that runs a query (a pool, or a client outside a transaction). */
interface Queryable {
  query<R extends Record<string, unknown>>(text: string, values?: unknown[]): Promise<{ rows: R[] }>;
}

/** One committed event of the log, with the cursor a client receives for it. */
export interface LoggedEvent {
  readonly pos: number;
  readonly id: number;
  readonly cursor: string;
  readonly topic: string;
  readonly event: string;
  readonly data: Record<string, unknown>;
  readonly old?: Record<string, unknown>;
  readonly changed?: string[];
}

/**
 * The cursor the relay gives the event at (pos, id) of the log named `epoch`. Cursors are opaque to
 * clients; this mirrors src/cursor.ts on purpose, only to tie each received cursor to its log row.
 */
export function cursorAt(epoch: string, pos: number, id: number): string {
  return `${epoch}-${pos.toString(36)}-${id.toString(36)}`;
}

/** The (pos, id) a cursor names: the inverse of cursorAt, for tests that check the log by position. */
export function positionAt(cursor: string): { pos: number; id: number } {
  const [, pos, id] = cursor.split('-');
  return { pos: parseInt(pos ?? '', 36), id: parseInt(id ?? '', 36) };
}

/** The log's epoch (the first part of every cursor). */
export async function logEpoch(db: Queryable): Promise<string> {
  const { rows } = await db.query<{ epoch: string }>('select epoch from relay.log_identity');
  return rows[0]!.epoch;
}

/** Every committed event of `topic` (or of all topics), in commit order. */
export async function readLog(db: Queryable, topic?: string): Promise<LoggedEvent[]> {
  const epoch = await logEpoch(db);
  const { rows } = await db.query<{
    pos: string;
    id: string;
    topic: string;
    event: string;
    data: Record<string, unknown>;
    old: Record<string, unknown> | null;
    changed: string[] | null;
  }>(
    `select c.pos, e.id, e.topic, e.event, e.data, u.old, u.changed
       from relay.commits c join relay.events e on e.xid = c.xid
       -- A small row's update is logged with its whole previous row: what it changed, in SQL.
       left join lateral relay.update_change(e.data, e.old, e.changed) u on true
      where $1::text is null or e.topic = $1::text
      order by c.pos, e.id`,
    [topic ?? null],
  );
  return rows.map((row) => ({
    pos: Number(row.pos),
    id: Number(row.id),
    cursor: cursorAt(epoch, Number(row.pos), Number(row.id)),
    topic: row.topic,
    event: row.event,
    data: row.data,
    ...(row.old !== null ? { old: row.old } : {}),
    ...(row.changed !== null ? { changed: row.changed } : {}),
  }));
}

/** What a subscriber with every column sees of a logged event: the frame without `ts`. */
export function asFrame(event: LoggedEvent): Record<string, unknown> {
  return {
    type: 'event',
    topic: event.topic,
    event: event.event,
    cursor: event.cursor,
    data: event.data,
    ...(event.old ? { old: event.old } : {}),
    ...(event.changed ? { changed: event.changed } : {}),
  };
}

/** A received event frame without `ts` (the commit time, checked elsewhere). */
export function withoutTs(frame: Frame): Record<string, unknown> {
  const { ts: _ts, ...rest } = frame;
  return rest;
}

/**
 * Reads event frames of `topic` until one satisfies `last` (included); any other frame (an error,
 * a close) fails with `what`. Returns the events in arrival order.
 */
export async function eventsUntil(
  client: TestClient,
  topic: string,
  last: (frame: Frame) => boolean,
  what: string,
  timeoutMs?: number,
): Promise<Frame[]> {
  const received: Frame[] = [];
  for (;;) {
    const frame = await nextFrame(client, `${what} (after ${received.length} events)`, undefined, timeoutMs);
    if (frame.type !== 'event' || frame.topic !== topic) {
      throw new Error(`${what}: expected only events of ${topic}, got ${JSON.stringify(frame)} after ${received.length} events`);
    }
    received.push(frame);
    if (last(frame)) return received;
  }
}

/** Index of the first position where two sequences of cursors differ, or -1 when equal. */
export function firstDifference(actual: readonly unknown[], expected: readonly unknown[]): number {
  const length = Math.max(actual.length, expected.length);
  for (let index = 0; index < length; index++) if (actual[index] !== expected[index]) return index;
  return -1;
}

/** A short description of where a received cursor sequence departs from the expected one. */
export function describeDifference(actual: readonly string[], expected: readonly string[]): string {
  const at = firstDifference(actual, expected);
  if (at < 0) return 'identical';
  const seenBefore = actual.indexOf(expected[at] as string);
  const duplicate = actual.indexOf(actual[at] as string) < at;
  const kind =
    at >= actual.length
      ? `missing ${expected.length - actual.length} events at the end (first missing ${expected[at]})`
      : at >= expected.length
        ? `${actual.length - expected.length} extra events at the end (first extra ${actual[at]})`
        : duplicate
          ? `${actual[at]} delivered a second time`
          : seenBefore > at
            ? `${expected[at]} delivered out of order (at index ${seenBefore})`
            : expected.includes(actual[at] as string)
              ? `${expected[at]} missing (got ${actual[at]} instead)`
              : `${actual[at]} is not in the log`;
  return `first difference at index ${at} of ${expected.length}: ${kind}`;
}
