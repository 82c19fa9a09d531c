// A cursor names one event of one event log: the log's epoch (a random name made by the
// migration), the commit position of its transaction, and its id. Clients treat it as opaque;
// base 36 keeps it short.

/** Where an event stands in the log: ordered by commit position, then id. */
export interface LogPosition {
  readonly pos: number;
  readonly id: number;
}

export interface Cursor extends LogPosition {
  readonly epoch: string;
}

const CURSOR_PATTERN = /^([0-9a-f]{8})-([0-9a-z]{1,11})-([0-9a-z]{1,11})$/;

/** The opaque cursor string of an event. */
export function encodeCursor(epoch: string, position: LogPosition): string {
  return `${epoch}-${position.pos.toString(36)}-${position.id.toString(36)}`;
}

/** Reads a cursor given by a client; null when it is not one of ours. */
export function decodeCursor(cursor: string): Cursor | null {
  const match = CURSOR_PATTERN.exec(cursor);
  if (!match) return null;
  const pos = parseInt(match[2]!, 36);
  const id = parseInt(match[3]!, 36);
  if (!Number.isSafeInteger(pos) || !Number.isSafeInteger(id)) return null;
  return { epoch: match[1]!, pos, id };
}

/** Orders two positions: negative, zero or positive, as for Array.prototype.sort. */
export function comparePositions(a: LogPosition, b: LogPosition): number {
  return a.pos - b.pos || a.id - b.id;
}
