// What the database notifies, collected on a dedicated connection so that tests await it instead
// of sleeping. Notifications reach a listener in commit order, which is what makes the sentinel
// technique work: to prove a statement notified nothing, commit a marker after it and check that
// the marker is the very next thing heard.

import { randomBytes } from 'node:crypto';
import pg from 'pg';

/** One `relay_events` payload, as relay.stamp_commit writes it. */
export interface EventNotification {
  readonly pos: number;
  readonly id: number;
  /** Commit time, seconds since the epoch. */
  readonly ts: number;
  readonly topic: string;
  readonly event: string;
  /** Absent when `large` is set: the event is then read from relay.events. */
  readonly data?: Record<string, unknown>;
  readonly old?: Record<string, unknown> | null;
  readonly changed?: string[] | null;
  readonly large?: true;
}

export interface Listener<T> {
  /** The next notification, in arrival order; rejects if none comes within `timeoutMs`. */
  next(timeoutMs?: number): Promise<T>;
  /** The next `n` notifications. */
  take(n: number, timeoutMs?: number): Promise<T[]>;
  /** The raw payload size of every notification received so far, in arrival order. */
  readonly payloadBytes: readonly number[];
  close(): Promise<void>;
}

/** Something that runs a query: a pool or a client that is not inside a transaction. */
interface Queryable {
  query(text: string, values?: unknown[]): Promise<unknown>;
}

// Only a guard so that a missing notification fails with a message instead of the tap timeout;
// the tests never wait for it to pass.
const DEFAULT_TIMEOUT_MS = 10_000;

/** LISTEN on `channel` with its own connection; each payload goes through `parse`. */
export async function listenOn<T>(url: string, channel: string, parse: (payload: string) => T): Promise<Listener<T>> {
  const client = new pg.Client({ connectionString: url });
  const received: T[] = [];
  const payloadBytes: number[] = [];
  const waiting: Array<{ resolve: (value: T) => void; reject: (error: Error) => void }> = [];
  let failure: Error | undefined;

  const fail = (error: Error): void => {
    failure ??= error;
    for (const waiter of waiting.splice(0)) waiter.reject(failure);
  };
  client.on('notification', (message) => {
    if (message.channel !== channel) return;
    const payload = message.payload ?? '';
    payloadBytes.push(Buffer.byteLength(payload));
    let value: T;
    try {
      value = parse(payload);
    } catch (error) {
      fail(new Error(`unparsable ${channel} payload: ${payload.slice(0, 200)}`, { cause: error }));
      return;
    }
    const waiter = waiting.shift();
    if (waiter) waiter.resolve(value);
    else received.push(value);
  });
  client.on('error', (error) => fail(new Error(`${channel} listener lost its connection`, { cause: error })));

  await client.connect();
  await client.query(`listen ${pg.escapeIdentifier(channel)}`);

  const next = (timeoutMs = DEFAULT_TIMEOUT_MS): Promise<T> => {
    const ready = received.shift();
    if (ready !== undefined) return Promise.resolve(ready);
    if (failure) return Promise.reject(failure);
    return new Promise<T>((resolve, reject) => {
      const waiter = {
        resolve: (value: T) => {
          clearTimeout(timer);
          resolve(value);
        },
        reject: (error: Error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
      const timer = setTimeout(() => {
        const index = waiting.indexOf(waiter);
        if (index >= 0) waiting.splice(index, 1);
        reject(new Error(`no ${channel} notification within ${timeoutMs} ms`));
      }, timeoutMs);
      waiting.push(waiter);
    });
  };

  let closed = false;
  return {
    next,
    async take(n, timeoutMs) {
      const values: T[] = [];
      for (let i = 0; i < n; i++) values.push(await next(timeoutMs));
      return values;
    },
    payloadBytes,
    async close() {
      if (closed) return;
      closed = true;
      fail(new Error(`${channel} listener closed`));
      await client.end();
    },
  };
}

/** Hex digits of the signature before each `relay_events` JSON (see relay.sign). */
export const SIGNATURE_LENGTH = 32;

/** Collects `relay_events` (their JSON, without the signature; the relay's tests check signatures). */
export function listenForEvents(url: string): Promise<Listener<EventNotification>> {
  return listenOn(url, 'relay_events', (payload) => JSON.parse(payload.slice(SIGNATURE_LENGTH)) as EventNotification);
}

/**
 * Commits a marker event through `db` and returns everything heard before it, in order. An empty
 * list proves that nothing committed before the marker was notified (`db` must not be inside a
 * transaction, or the marker would wait for its commit).
 */
export async function eventsBeforeSentinel(
  listener: Listener<EventNotification>,
  db: Queryable,
): Promise<EventNotification[]> {
  const mark = `sentinel-${randomBytes(6).toString('hex')}`;
  await db.query(`select relay.publish('sentinel', $1, '{}')`, [mark]);
  const before: EventNotification[] = [];
  for (;;) {
    const notification = await listener.next();
    if (notification.topic === 'sentinel' && notification.event === mark) return before;
    before.push(notification);
  }
}
