// Awaiting WebSocket frames with a guard, so that a frame the relay never sends fails the test
// with a sentence instead of tap's timeout, and proving that nothing else was sent without sleeping.
import { randomBytes } from 'node:crypto';
import type { Frame, TestClient } from './ws-client.ts';

const FRAME_GUARD_MS = 10_000;

/** The next frame (matching `accept`, if given); rejects naming `what` if none comes in time. */
export function nextFrame(
  client: TestClient,
  what: string,
  accept?: (frame: Frame) => boolean,
  timeoutMs = FRAME_GUARD_MS,
): Promise<Frame> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no such frame within ${timeoutMs} ms`)), timeoutMs);
  });
  return Promise.race([client.next(accept), timeout]).finally(() => clearTimeout(timer));
}

/** Sends a subscribe and resolves with the relay's reply (subscribed or an error). */
export async function subscribe(
  client: TestClient,
  topic: string,
  extra: Record<string, unknown> = {},
): Promise<Frame> {
  client.send({ type: 'subscribe', topic, ...extra });
  return nextFrame(client, `the reply to subscribe ${topic}`);
}

/**
 * Sends a ping and returns every frame that arrives before its pong. The relay answers frames in
 * order on one TCP stream, so anything it had already sent to this client comes first: an empty
 * list proves that nothing was pending. Use it after another client (or this one) has received a
 * later event, so that the event this client must not get would already have been sent.
 */
export async function framesBeforePong(client: TestClient): Promise<Frame[]> {
  const ref = `probe-${randomBytes(4).toString('hex')}`;
  client.send({ type: 'ping', ref });
  const before: Frame[] = [];
  for (;;) {
    const frame = await nextFrame(client, `the pong to ping ${ref}`);
    if (frame.type === 'pong' && frame.ref === ref) return before;
    before.push(frame);
  }
}

/** A frame without its varying fields (cursor, ts), for exact comparisons. */
export function stable(frame: Frame): Record<string, unknown> {
  const { cursor: _cursor, ts: _ts, ...rest } = frame;
  return rest;
}
