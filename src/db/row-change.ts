// What an update changed, from the whole previous row. The trigger logs a small row's previous
// values whole and leaves the comparison to the reader, as it costs the writer a query per row
// (migrations/relay/1765000000000_whole-old-rows.sql); the relay compares here, once per event
// read, as the trigger compares a larger row and as relay.update_change does in SQL: jsonb's
// `is distinct from`, column by column.

import { membersOf, sameJsonValue } from '../exact-json.ts';

export interface RowChange {
  /** The previous values of the changed columns. */
  readonly old: Record<string, unknown>;
  /**
   * The changed columns, sorted as the trigger sorts them, in byte order (UTF-16 code units here:
   * the same order, but for names that mix characters past U+FFFF with ones from U+E000).
   */
  readonly changed: string[];
}

/** The columns of `previous` whose value `data` does not hold, and their previous values. */
export function changeFromWholeRow(data: Readonly<Record<string, unknown>>, previous: Readonly<Record<string, unknown>>): RowChange {
  const changed = Object.keys(previous)
    .filter((column) => !Object.hasOwn(data, column) || !sameJsonValue(data[column], previous[column]))
    .sort();
  return { old: membersOf(previous, changed), changed };
}
