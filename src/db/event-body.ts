// The body of a logged event: the columns data, old and changed of relay.events.

import { parseJsonExactly } from '../exact-json.ts';
import { changeFromWholeRow } from './row-change.ts';

export interface EventBody {
  readonly data: Record<string, unknown>;
  readonly old?: Record<string, unknown>;
  readonly changed?: string[];
}

/**
 * Checks the body columns of a row of relay.events; null when they are malformed. An `old` without
 * `changed` is an update's whole previous row: the body then holds what the update changed, as the
 * trigger logs it for a larger row.
 */
function parseEventBody(data: unknown, old: unknown, changed: unknown): EventBody | null {
  if (!isObject(data)) return null;
  if (old !== null && old !== undefined && !isObject(old)) return null;
  if (changed !== null && changed !== undefined) {
    if (!Array.isArray(changed) || !changed.every((name) => typeof name === 'string')) return null;
  } else if (isObject(old)) {
    return { data, ...changeFromWholeRow(data, old) };
  }
  return {
    data,
    ...(isObject(old) ? { old } : {}),
    ...(Array.isArray(changed) ? { changed: changed as string[] } : {}),
  };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * The body from the columns as the log's reads return them: data and old as JSON text (parsed here,
 * keeping long numbers exact), changed as an array. Null when they are malformed; never throws.
 */
export function parseEventBodyText(data: string | null, old: string | null, changed: unknown): EventBody | null {
  if (data === null) return null;
  try {
    return parseEventBody(parseJsonExactly(data), old === null ? null : parseJsonExactly(old), changed);
  } catch {
    return null;
  }
}
