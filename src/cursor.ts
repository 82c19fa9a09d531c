// A cursor names one event of one event log: the log's epoch (a random name made by the
// migration), the commit position of its transaction, and its id within that transaction.
// Clients treat it as opaque; base 36 keeps it short.

export interface CursorPosition {
  readonly epoch: string;
  readonly pos: bigint;
  readonly id: bigint;
}

const CURSOR_PATTERN = /^([0-9a-f]{8})-([0-9a-z]{1,13})-([0-9a-z]{1,13})$/;

/** The opaque cursor string of an event. */
export function encodeCursor(epoch: string, pos: bigint | number, id: bigint | number): string {
  return `${epoch}-${pos.toString(36)}-${id.toString(36)}`;
}

/** Reads a cursor given by a client; null when it is not one of ours. */
export function decodeCursor(cursor: string): CursorPosition | null {
  const match = CURSOR_PATTERN.exec(cursor);
  if (!match) return null;
  const [, epoch, pos, id] = match as unknown as [string, string, string, string];
  return { epoch, pos: parseBase36(pos), id: parseBase36(id) };
}

function parseBase36(digits: string): bigint {
  let value = 0n;
  for (const digit of digits) value = value * 36n + BigInt(parseInt(digit, 36));
  return value;
}
