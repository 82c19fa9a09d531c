// The exact text frame one access class receives for one event. Frames depend only on the column
// mask, so each distinct mask is serialized once per event and shared through a per-event cache.

import type { RelayEvent } from '../events.ts';
import { jsonTextWithin } from '../exact-json.ts';
import { matchesFilter } from '../filters/match-filter.ts';
import type { Access } from './access.ts';

/** The mask meaning "all columns" in cache keys. */
const ALL_COLUMNS = '*';

/** Cached for a mask that leaves an update with no changed column: nothing is sent. */
const NOT_SENT = '';

/**
 * The frame this access must receive for the event, or null. `cache` belongs to one event: it maps
 * a column mask to its frame so that classes with the same mask get the same string.
 */
export function renderEvent(access: Access, event: RelayEvent, cache: Map<string, string>): string | null {
  if (event.topic !== access.topic) return null;
  const { clientFilter } = access;
  if (clientFilter === 'match-nothing') return null;
  if (clientFilter !== null && !matchesFilter(clientFilter, event.data)) return null;

  const mask = matchingColumns(access, event);
  if (mask === undefined) return null;
  const cacheKey = mask === null ? ALL_COLUMNS : JSON.stringify([...mask].sort());
  let frame = cache.get(cacheKey);
  if (frame === undefined) {
    frame = serializeFrame(event, mask);
    cache.set(cacheKey, frame);
  }
  return frame === NOT_SENT ? null : frame;
}

/** Union of the columns of the alternatives matching the event: null = all, undefined = none match. */
function matchingColumns(access: Access, event: RelayEvent): ReadonlySet<string> | null | undefined {
  let union: Set<string> | undefined;
  for (const alternative of access.alternatives) {
    if (!matchesFilter(alternative.filter, event.data)) continue;
    if (alternative.columns === null) return null;
    union ??= new Set<string>();
    for (const column of alternative.columns) union.add(column);
  }
  return union;
}

/**
 * Builds the JSON text by hand from own keys, so a column named `__proto__` is copied as a plain
 * key and never touches a prototype, and the event is not mutated.
 */
function serializeFrame(event: RelayEvent, mask: ReadonlySet<string> | null): string {
  const visible = mask === null ? null : (column: string): boolean => mask.has(column);
  let changedText = '';
  if (event.changed !== undefined) {
    const changed = visible === null ? event.changed : event.changed.filter(visible);
    // An update none of whose visible columns changed tells this subscriber nothing.
    if (changed.length === 0) return NOT_SENT;
    changedText = `,"changed":${JSON.stringify(changed)}`;
  }
  const oldText = event.old === undefined ? '' : `,"old":${objectText(event.old, visible)}`;
  return (
    `{"type":"event","topic":${JSON.stringify(event.topic)},"event":${JSON.stringify(event.event)}` +
    `,"cursor":${JSON.stringify(event.cursor)},"ts":${JSON.stringify(event.ts)}` +
    `,"data":${objectText(event.data, visible)}${oldText}${changedText}}`
  );
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
