// The body of a logged event: the columns data, old and changed of relay.events.

export interface EventBody {
  readonly data: Record<string, unknown>;
  readonly old?: Record<string, unknown>;
  readonly changed?: string[];
}

/** Checks the body columns of a row of relay.events; null when they are malformed. */
export function parseEventBody(data: unknown, old: unknown, changed: unknown): EventBody | null {
  if (!isObject(data)) return null;
  if (old !== null && old !== undefined && !isObject(old)) return null;
  if (changed !== null && changed !== undefined) {
    if (!Array.isArray(changed) || !changed.every((name) => typeof name === 'string')) return null;
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
