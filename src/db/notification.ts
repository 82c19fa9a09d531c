// The payload of a `relay_events` notification, as sent by relay.stamp_commit (migrations/relay):
// `<signature>{"pos":N}`, meaning the transaction at commit position N is committed, so every
// position up to N can be read from the log. It never carries an event: the relay delivers only
// what it read from the log.

import { verifySignedPayload } from './notification-signature.ts';

export type ParsedNotification =
  | { readonly ok: true; readonly pos: number }
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
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { ok: false, error: 'payload is not a JSON object' };
  }
  const { pos } = value as Record<string, unknown>;
  if (typeof pos !== 'number' || !Number.isSafeInteger(pos) || pos <= 0) return { ok: false, error: 'pos missing' };
  return { ok: true, pos };
}
