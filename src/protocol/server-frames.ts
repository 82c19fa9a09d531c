// The JSON text of the server's replies (contract section 3). Event frames are built elsewhere.
// JSON.stringify drops keys whose value is undefined: a reply carries `ref` (and an error `topic`)
// only when there is one, never as `null`.
import { isExactNumber } from '../exact-json.ts';
import type { MessageRef } from './client-messages.ts';
import type { ErrorCode } from './error-codes.ts';

/** Who the connection is, as sent on open. */
export interface WelcomeIdentity {
  readonly role: string;
  readonly sub: string | null;
  /** Token expiry in seconds since the epoch, or null when it never expires. */
  readonly exp: number | null;
}

/** What an error frame says. */
export interface ErrorFrameFields {
  readonly code: ErrorCode;
  readonly message: string;
  readonly topic?: string;
  readonly ref?: MessageRef;
}

/** `{"type":"welcome","role":R,"sub":S,"exp":N}`, sent once the connection opens. */
export function welcomeFrame({ role, sub, exp }: WelcomeIdentity): string {
  return JSON.stringify({ type: 'welcome', role, sub, exp });
}

/** `{"type":"subscribed","topic":T}`, the reply to subscribe. */
export function subscribedFrame(topic: string, ref?: MessageRef): string {
  return withRef({ type: 'subscribed', topic }, ref);
}

/** `{"type":"unsubscribed","topic":T}`, the reply to unsubscribe. */
export function unsubscribedFrame(topic: string, ref?: MessageRef): string {
  return withRef({ type: 'unsubscribed', topic }, ref);
}

/** `{"type":"authed","exp":N}`, the reply to auth; `exp` null when the new token never expires. */
export function authedFrame(exp: number | null, ref?: MessageRef): string {
  return withRef({ type: 'authed', exp }, ref);
}

/** `{"type":"pong"}`, the reply to ping. */
export function pongFrame(ref?: MessageRef): string {
  return withRef({ type: 'pong' }, ref);
}

/** `{"type":"error","code":K,"message":M,"topic":T?,"ref":R?}`. */
export function errorFrame({ code, message, topic, ref }: ErrorFrameFields): string {
  return withRef({ type: 'error', code, message, topic }, ref);
}


/** `fields` with `ref` last, when there is one; a number kept as its text is written as it came. */
function withRef(fields: Record<string, unknown>, ref: MessageRef | undefined): string {
  if (!isExactNumber(ref)) return JSON.stringify({ ...fields, ref });
  // Made from a number token of the client's JSON (by lossless-json, or by topLevelRef's number grammar): JSON number text.
  return `${JSON.stringify(fields).slice(0, -1)},"ref":${ref.value}}`;
}
