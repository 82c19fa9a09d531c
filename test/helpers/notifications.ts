// What the database publishes, collected on dedicated connections so that tests await it instead
// of sleeping. listenForEvents reads committed events in commit order, woken by `relay_events`
// notifications as the relay is, which is what makes the sentinel technique work: to prove a
// statement published nothing, commit a marker after it and check that the marker is the very
// next event read.

import { randomBytes } from 'node:crypto';
import pg from 'pg';

/** One event of a notified commit, as the log holds it. */
export interface EventNotification {
  readonly pos: number;
  readonly id: number;
  /** Commit time, seconds since the epoch. */
  readonly ts: number;
  readonly topic: string;
  readonly event: string;
  readonly data: Record<string, unknown>;
  readonly old: Record<string, unknown> | null;
  readonly changed: string[] | null;
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

/** The next `n` values of `next`, in order. */
async function takeFrom<T>(next: (timeoutMs?: number) => Promise<T>, n: number, timeoutMs?: number): Promise<T[]> {
  const values: T[] = [];
  for (let i = 0; i < n; i++) values.push(await next(timeoutMs));
  return values;
}

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
    take: (n, timeoutMs) => takeFrom(next, n, timeoutMs),
    payloadBytes,
    async close() {
      if (closed) return;
      closed = true;
      fail(new Error(`${channel} listener closed`));
      await client.end();
    },
  };
}

/**
 * Collects committed events in commit order, as the relay does: each read of the log arms the
 * wake-up bell (relay.read_commits), and a `relay_events` notification says that something
 * committed since. A position drawn but not yet visible is waited for (relay.wait_for_committers);
 * if it is still missing after that, its transaction rolled back.
 */
export async function listenForEvents(url: string): Promise<Listener<EventNotification>> {
  const bell = await listenOn(url, 'relay_events', (payload) => payload);
  const log = new pg.Client({ connectionString: url });
  await log.connect();
  const read = async (after: number): Promise<{ events: EventNotification[]; drawn: number }> => {
    const { rows } = await log.query<EventNotification & { drawn_through: string; pos: number | null }>(
      `select drawn_through, pos::float8 as pos, id::float8 as id, ts, topic, event, data, old, changed
         from relay.read_commits($1, 1000)`,
      [after],
    );
    return { events: rows.filter((row) => row.pos !== null), drawn: Number(rows[0]?.drawn_through ?? 0) };
  };
  // Events from now on: every position drawn before has ended once the committers are waited for.
  let { drawn: after } = await read(0);
  await log.query('select relay.wait_for_committers()');
  const ready: EventNotification[] = [];
  const hasGap = (events: readonly EventNotification[]): boolean =>
    events.some((event, i) => event.pos > (i === 0 ? after : events[i - 1]!.pos) + 1);
  const next = async (timeoutMs?: number): Promise<EventNotification> => {
    while (ready.length === 0) {
      let { events, drawn } = await read(after);
      if (hasGap(events) || (events.length === 0 && drawn > after)) {
        // Every position drawn so far has ended after this: a missing one was rolled back.
        await log.query('select relay.wait_for_committers()');
        ({ events } = await read(after));
        if (events.length === 0) after = drawn;
      }
      if (events.length > 0) {
        ready.push(...events);
        after = events.at(-1)!.pos;
        continue;
      }
      await bell.next(timeoutMs);
    }
    return ready.shift()!;
  };
  return {
    next,
    take: (n, timeoutMs) => takeFrom(next, n, timeoutMs),
    payloadBytes: bell.payloadBytes,
    async close() {
      await bell.close();
      await log.end().catch(() => undefined);
    },
  };
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
