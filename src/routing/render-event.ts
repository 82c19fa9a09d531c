// The exact text frame one access class receives for one event. Frames depend only on the column
// mask and on whether an update's previous values may be shown, so each distinct pair is
// serialized once per event and shared through a per-event cache.

import type { RelayEvent } from '../events.ts';
import { jsonTextWithin, overlaid } from '../exact-json.ts';
import { matchesFilter } from '../filters/match-filter.ts';
import type { Access } from './access.ts';

/** The mask meaning "all columns" in cache keys. */
const ALL_COLUMNS = '*';

/** Cached for a mask that leaves an update with no changed column: nothing is sent. */
const NOT_SENT = '';

/** Ends the cache keys of update frames sent without old and changed (no mask's key ends so). */
const DATA_ALONE = 'data';

/** Starts the cache keys of `left` frames (no mask's key starts so). */
const LEFT = 'left';

/**
 * The frame this access must receive for the event, or null. `cache` belongs to one event: it maps
 * a column mask to its frame so that classes with the same mask get the same string.
 */
export function renderEvent(access: Access, event: RelayEvent, cache: Map<string, string>): string | null {
  if (event.topic !== access.topic) return null;
  const { clientFilter } = access;
  if (clientFilter === 'match-nothing') return null;
  const mask = clientFilter !== null && !matchesFilter(clientFilter, event.data) ? undefined : matchingColumns(access, event.data);
  if (mask === undefined) return access.leaves ? renderLeft(access, event, cache) : null;
  const withPrevious = event.old === undefined || previousRowVisible(access, event, mask);
  const cacheKey = withPrevious ? maskKey(mask) : `${maskKey(mask)}|${DATA_ALONE}`;
  let frame = cache.get(cacheKey);
  if (frame === undefined) {
    frame = serializeFrame(event, mask, withPrevious);
    cache.set(cacheKey, frame);
  }
  return frame === NOT_SENT ? null : frame;
}

/**
 * The `left` frame of a subscription that asked for leaves, for an update that took a row out of
 * its view (its grants or its filter matched the previous row, and match the new one no more), or
 * null: the previous row as the subscriber was allowed to see it, and nothing of the new one.
 */
function renderLeft(access: Access, event: RelayEvent, cache: Map<string, string>): string | null {
  if (event.event !== 'update' || event.old === undefined) return null;
  // Most updates change no column a filter reads: the previous row did not match either.
  if (!mayHaveMoved(access, event, true)) return null;
  const previous = previousRow(event);
  const { clientFilter } = access;
  if (clientFilter !== null && (clientFilter === 'match-nothing' || !matchesFilter(clientFilter, previous))) return null;
  const mask = matchingColumns(access, previous);
  if (mask === undefined) return null;
  const cacheKey = `${LEFT}|${maskKey(mask)}`;
  let frame = cache.get(cacheKey);
  if (frame === undefined) {
    frame =
      `{"type":"left","topic":${JSON.stringify(event.topic)},"cursor":${JSON.stringify(event.cursor)}` +
      `,"ts":${JSON.stringify(event.ts)},"data":${objectText(previous, visibleIn(mask))}}`;
    cache.set(cacheKey, frame);
  }
  return frame;
}

/**
 * Whether an update may have changed a column that one of the access's filters reads: a grant's,
 * and with `client` the client filter's too. If not, its previous row matched them as its new row
 * does. The columns that may differ are those of `old`, and of `changed` (the same in every event
 * the triggers write; relay.append_event takes any). Runs for every class an update reaches:
 * nothing is allocated.
 */
function mayHaveMoved(access: Access, event: RelayEvent, client: boolean): boolean {
  const { old, changed } = event;
  for (const column in old) if (Object.hasOwn(old, column) && filterReads(access, column, client)) return true;
  if (changed !== undefined) for (const column of changed) if (filterReads(access, column, client)) return true;
  return false;
}

function filterReads(access: Access, column: string, client: boolean): boolean {
  if (client && access.clientFilterColumns.has(column)) return true;
  for (const alternative of access.alternatives) if (alternative.filterColumns.has(column)) return true;
  return false;
}

/** Each update's previous row, built once however many classes need it. */
const previousRows = new WeakMap<RelayEvent, Readonly<Record<string, unknown>>>();

/**
 * An update's previous row: the unchanged columns are as in `data`. A column named in `changed`
 * but missing from `old` (only an event appended by hand, relay.append_event, can have one) is
 * left out: its value in `data` is the new row's.
 */
function previousRow(event: RelayEvent): Readonly<Record<string, unknown>> {
  let row = previousRows.get(event);
  if (row !== undefined) return row;
  const old = event.old ?? {};
  const built = overlaid(event.data, old);
  for (const column of event.changed ?? []) if (!Object.hasOwn(old, column)) delete built[column];
  previousRows.set(event, (row = built));
  return row;
}

function maskKey(mask: ReadonlySet<string> | null): string {
  return mask === null ? ALL_COLUMNS : JSON.stringify([...mask].sort());
}

/** Union of the columns of the alternatives matching the row: null = all, undefined = none match. */
function matchingColumns(access: Access, row: Readonly<Record<string, unknown>>): ReadonlySet<string> | null | undefined {
  let union: Set<string> | undefined;
  for (const alternative of access.alternatives) {
    if (!matchesFilter(alternative.filter, row)) continue;
    if (alternative.columns === null) return null;
    union ??= new Set<string>();
    for (const column of alternative.columns) union.add(column);
  }
  return union;
}

/**
 * Whether an update may carry `old` and `changed` to this access: only when the grants matching the
 * previous row showed every column the subscriber sees of the new one (`mask`). An update can move
 * a row into a subscriber's grant, an order transferred to its hospital, say: its previous values
 * are those of a row that subscriber was not allowed to see. And where the previous row was
 * visible under narrower grants, a column hidden then would show in `old` if it changed, and
 * `changed` would tell, by leaving it out, that its hidden value was the one it has now.
 */
function previousRowVisible(access: Access, event: RelayEvent, mask: ReadonlySet<string> | null): boolean {
  // Most updates change no column a grant's filter reads: the previous row matched the same grants.
  if (!mayHaveMoved(access, event, false)) return true;
  const previousMask = matchingColumns(access, previousRow(event));
  if (previousMask === undefined) return false;
  if (previousMask === null) return true;
  return everyVisibleColumnIn(event.data, mask, previousMask) && everyVisibleColumnIn(event.old ?? {}, mask, previousMask);
}

function everyVisibleColumnIn(row: Readonly<Record<string, unknown>>, mask: ReadonlySet<string> | null, previousMask: ReadonlySet<string>): boolean {
  for (const column in row) if (Object.hasOwn(row, column) && (mask === null || mask.has(column)) && !previousMask.has(column)) return false;
  return true;
}

/**
 * Builds the JSON text by hand from own keys, so a column named `__proto__` is copied as a plain
 * key and never touches a prototype, and the event is not mutated.
 */
function serializeFrame(event: RelayEvent, mask: ReadonlySet<string> | null, withPrevious: boolean): string {
  const visible = visibleIn(mask);
  let changedText = '';
  if (event.changed !== undefined) {
    const changed = visible === null ? event.changed : event.changed.filter(visible);
    // An update none of whose visible columns changed tells this subscriber nothing, unless the
    // row came into its view (its grants now match it, through a column they do not show, say),
    // or into view with more columns.
    if (changed.length === 0 && withPrevious) return NOT_SENT;
    // Where the subscriber could not see the whole previous row, what changed would tell of it
    // too (a column not listed had the same value): the row arrives with its data alone.
    if (withPrevious) changedText = `,"changed":${JSON.stringify(changed)}`;
  }
  const oldText = event.old === undefined || !withPrevious ? '' : `,"old":${objectText(event.old, visible)}`;
  return (
    `{"type":"event","topic":${JSON.stringify(event.topic)},"event":${JSON.stringify(event.event)}` +
    `,"cursor":${JSON.stringify(event.cursor)},"ts":${JSON.stringify(event.ts)}` +
    `,"data":${objectText(event.data, visible)}${oldText}${changedText}}`
  );
}

function visibleIn(mask: ReadonlySet<string> | null): ((column: string) => boolean) | null {
  return mask === null ? null : (column) => mask.has(column);
}

/** JSON text of the object's own keys that pass `visible`, in their original order. */
function objectText(object: Readonly<Record<string, unknown>>, visible: ((column: string) => boolean) | null): string {
  // Every column: JSON.stringify writes own keys only (a parsed `__proto__` key included, as a
  // plain key), in order, in one native pass: most frames take this path. Numbers kept as text
  // (src/exact-json.ts) are written as they came.
  if (visible === null) return jsonTextWithin(object, object) as string;
  const members: string[] = [];
  for (const column of Object.keys(object)) {
    if (!visible(column)) continue;
    // Like JSON.stringify, skip what JSON cannot hold (undefined, functions).
    const valueText = jsonTextWithin(object, object[column]);
    if (valueText !== undefined) members.push(`${JSON.stringify(column)}:${valueText}`);
  }
  return `{${members.join(',')}}`;
}
