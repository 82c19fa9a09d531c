// The payload of a `relay_events` notification, as sent by relay.stamp_commit (migrations/relay).

import { verifySignedPayload } from './notification-signature.ts';

/** One event as notified: whole, or (`large`) without its body, which the log still holds. */
export interface NotifiedEvent {
  readonly pos: number;
  readonly id: number;
  /** Commit time, seconds since the epoch. */
  readonly ts: number;
  readonly topic: string;
  readonly event: string;
  readonly body: EventBody | null;
}

export interface EventBody {
  readonly data: Record<string, unknown>;
  readonly old?: Record<string, unknown>;
  readonly changed?: string[];
}

export type ParsedNotification =
  | { readonly ok: true; readonly event: NotifiedEvent }
  | { readonly ok: false; readonly error: string };

/** Checks the signature and the shape of a payload; anything forged or malformed is an error, never a throw. */
export function parseNotification(signingKey: string, payload: string | undefined): ParsedNotification {
  const json = verifySignedPayload(signingKey, payload ?? '');
  if (json === null) return { ok: false, error: 'payload is not signed with this log\'s key' };
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    return { ok: false, error: 'payload is not JSON' };
  }
  if (!isObject(value)) return { ok: false, error: 'payload is not a JSON object' };
  const { pos, id, ts, topic, event } = value;
  if (!isPositiveInteger(pos) || !isPositiveInteger(id)) return { ok: false, error: 'pos or id missing' };
  if (typeof ts !== 'number' || typeof topic !== 'string' || typeof event !== 'string') {
    return { ok: false, error: 'ts, topic or event missing' };
  }
  if (value.large === true) return { ok: true, event: { pos, id, ts, topic, event, body: null } };
  const body = parseEventBody(value.data, value.old, value.changed);
  if (!body) return { ok: false, error: 'data, old or changed malformed' };
  return { ok: true, event: { pos, id, ts, topic, event, body } };
}

/** Checks the body columns of an event (from a notification or a row of relay.events). */
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

function isPositiveInteger(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value > 0;
}
