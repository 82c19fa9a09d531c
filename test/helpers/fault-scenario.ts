// The shared shape of the fault tests (contract section 3, `since`; section 4, /health): a LIVE
// subscriber connected throughout and a RESUMING one that leaves during the fault and comes back
// with `since` = its last cursor; at the end a sentinel proves each has read everything, and what
// each received is compared with the event log itself.
import type pg from 'pg';
import type { Test } from 'tap';
import { changeCatalog } from './catalog.ts';
import { collectFrames, type FrameCollector } from './event-collector.ts';
import type { OrderWriter } from './order-writer.ts';
import type { TestRelay } from './relay.ts';
import type { Frame, TestClient } from './ws-client.ts';

export const SENTINEL_TOPIC = 'sentinel';
const ADMIN = { role: 'admin', sub: 'fault-test' } as const;

/** Grants the sentinel topic to admin and waits until the relay knows it. */
export async function grantSentinel(relay: TestRelay): Promise<void> {
  await changeCatalog(relay, `select relay.allow('${SENTINEL_TOPIC}', 'admin')`);
}

/** The newest commit position in the log now (every later commit is "after the start"). */
export async function logHeadPosition(pool: pg.Pool): Promise<number> {
  const { rows } = await pool.query<{ pos: string }>(`select coalesce(max(pos), 0) as pos from relay.commits`);
  return Number(rows[0]!.pos);
}

/** One `orders` event of the log, in commit order. */
export interface LoggedOrderEvent {
  readonly pos: number;
  readonly id: number;
  readonly event: string;
  readonly orderId: string;
}

/** The `orders` events committed after position `after`, in commit order, as the log holds them. */
export async function loggedOrderEvents(pool: pg.Pool, after: number): Promise<LoggedOrderEvent[]> {
  const { rows } = await pool.query<{ pos: string; id: string; event: string; order_id: string }>(
    `select c.pos, e.id, e.event, e.data->>'id' as order_id
       from relay.commits c join relay.events e on e.xid = c.xid
      where e.topic = 'orders' and c.pos > $1
      order by c.pos, e.id`,
    [after],
  );
  return rows.map((row) => ({ pos: Number(row.pos), id: Number(row.id), event: row.event, orderId: row.order_id }));
}

/** Publishes the sentinel event in its own transaction, after every write of the test. */
export async function publishSentinel(pool: pg.Pool): Promise<void> {
  await pool.query(`select relay.publish('${SENTINEL_TOPIC}', 'end', '{}')`);
}

/** A subscriber to `orders` and the sentinel, over one or more connections (sessions). */
export interface FaultSubscriber {
  readonly name: string;
  /** Every session's collector, oldest first. */
  readonly sessions: readonly FrameCollector[];
  current(): FrameCollector;
  /** Closes the current connection (as a client that lost its network would, then reconnects). */
  disconnect(): Promise<string>;
  /** A new connection that subscribes with `since` = the last cursor received. */
  resume(): Promise<void>;
  /** Every `orders` event received, over all sessions, in arrival order. */
  orderEvents(): Frame[];
}

/** Connects an admin client and subscribes it to the sentinel and to `orders` (live, no `since`). */
export async function openSubscriber(relay: TestRelay, name: string): Promise<FaultSubscriber> {
  const sessions: FrameCollector[] = [];
  let client: TestClient | undefined;
  let lastCursor: string | undefined;

  async function open(since?: string): Promise<void> {
    client = await relay.connect(ADMIN);
    const collector = collectFrames(client);
    sessions.push(collector);
    client.send({ type: 'subscribe', topic: SENTINEL_TOPIC, ref: 'sentinel' });
    client.send({ type: 'subscribe', topic: 'orders', ref: 'orders', ...(since ? { since } : {}) });
    for (const ref of ['sentinel', 'orders']) {
      const reply = await collector.waitFor((frame) => frame.ref === ref, `${name}: the reply to subscribe (${ref})`);
      if (reply.type !== 'subscribed') throw new Error(`${name}: subscribe ${ref} was refused: ${JSON.stringify(reply)}`);
    }
  }

  await open();
  const subscriber: FaultSubscriber = {
    name,
    sessions,
    current: () => sessions.at(-1)!,
    async disconnect() {
      await client?.close();
      await subscriber.current().ended;
      lastCursor = subscriber.current().lastCursor('orders') ?? lastCursor;
      if (!lastCursor) throw new Error(`${name}: disconnected before receiving any event, so it has no cursor to resume from`);
      return lastCursor;
    },
    async resume() {
      if (!lastCursor) throw new Error(`${name}: nothing to resume from`);
      await open(lastCursor);
    },
    orderEvents: () => sessions.flatMap((session) => session.events('orders')),
  };
  return subscriber;
}

/** Waits until `subscriber`'s current session has received the `orders` insert of row `orderId`. */
export function receivedOrder(subscriber: FaultSubscriber, orderId: string, what: string, timeoutMs = 15_000): Promise<Frame> {
  return subscriber
    .current()
    .waitFor(
      (frame) => frame.type === 'event' && frame.topic === 'orders' && (frame.data as { id?: unknown } | undefined)?.id === orderId,
      `${subscriber.name}: ${what} (order ${orderId})`,
      { timeoutMs },
    );
}

/** Waits for the sentinel event on `subscriber`'s current session. */
export function receivedSentinel(subscriber: FaultSubscriber, timeoutMs = 15_000): Promise<Frame> {
  return subscriber
    .current()
    .waitFor((frame) => frame.type === 'event' && frame.topic === SENTINEL_TOPIC, `${subscriber.name}: the sentinel event`, {
      timeoutMs,
    });
}

/** What went wrong between the log and what a subscriber received, in words a user would use. */
export interface DeliveryReport {
  readonly received: number;
  readonly expected: number;
  /** Order ids delivered more than once (with how many times). */
  readonly duplicated: readonly string[];
  /** Committed order ids never delivered. */
  readonly missing: readonly string[];
  /** Delivered ids that the log does not hold (after the start). */
  readonly unexpected: readonly string[];
  /** The first place where the delivered sequence leaves commit order, if any. */
  readonly firstOutOfOrder: string | null;
  /** Cursors given to two different events, or to one event twice. */
  readonly repeatedCursors: number;
}

/** Compares the `orders` events received with the log's, id by id and position by position. */
export function compareWithLog(received: readonly Frame[], logged: readonly LoggedOrderEvent[]): DeliveryReport {
  const expectedIds = logged.map((event) => `${event.event}:${event.orderId}`);
  const receivedIds = received.map((frame) => `${String(frame.event)}:${String((frame.data as { id?: unknown }).id)}`);
  const counts = new Map<string, number>();
  for (const id of receivedIds) counts.set(id, (counts.get(id) ?? 0) + 1);
  const expectedSet = new Set(expectedIds);
  const duplicated = [...counts].filter(([, n]) => n > 1).map(([id, n]) => `${id} x${n}`);
  const missing = logged
    .filter((event) => !counts.has(`${event.event}:${event.orderId}`))
    .map((event) => `${event.event}:${event.orderId} (log position ${event.pos}/${event.id})`);
  const unexpected = [...counts.keys()].filter((id) => !expectedSet.has(id));
  let firstOutOfOrder: string | null = null;
  for (let index = 0; index < Math.max(expectedIds.length, receivedIds.length); index++) {
    if (expectedIds[index] !== receivedIds[index]) {
      firstOutOfOrder = `at #${index}: expected ${expectedIds[index] ?? '(nothing)'}, received ${receivedIds[index] ?? '(nothing)'}`;
      break;
    }
  }
  const cursors = new Set(received.map((frame) => String(frame.cursor)));
  return {
    received: receivedIds.length,
    expected: expectedIds.length,
    duplicated: duplicated.slice(0, 20),
    missing: missing.slice(0, 20),
    unexpected: unexpected.slice(0, 20),
    firstOutOfOrder,
    repeatedCursors: received.length - cursors.size,
  };
}

/** The report of a perfect delivery of `expected` events. */
export function perfectDelivery(expected: number): DeliveryReport {
  return { received: expected, expected, duplicated: [], missing: [], unexpected: [], firstOutOfOrder: null, repeatedCursors: 0 };
}

/** Polls /health until its status is `status`; returns how long that took. Rejects after `timeoutMs`. */
export async function waitForHealth(httpUrl: string, status: 200 | 503, timeoutMs: number, pollMs = 50): Promise<number> {
  const started = Date.now();
  let last = 'no answer';
  for (;;) {
    try {
      const response = await fetch(`${httpUrl}/health`, { signal: AbortSignal.timeout(1_000) });
      last = `${response.status} ${await response.text()}`;
      if (response.status === status) return Date.now() - started;
    } catch (error) {
      last = `request failed: ${(error as Error).message}`;
    }
    if (Date.now() - started > timeoutMs) {
      throw new Error(`/health did not answer ${status} within ${timeoutMs} ms (last: ${last})`);
    }
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
}

/** Waits for the next order the writer commits, then for `subscribers` to receive it. */
export async function nextOrderReaches(writer: OrderWriter, subscribers: readonly FaultSubscriber[], what: string): Promise<void> {
  const index = writer.committed.length;
  await writer.waitForCommitted(index + 1, what);
  const orderId = writer.committed[index]!;
  await Promise.all(subscribers.map((subscriber) => receivedOrder(subscriber, orderId, what)));
}

/**
 * Stops the writer, publishes the sentinel, waits for it at every subscriber, then checks that the
 * log holds exactly what the writer committed and that each subscriber received exactly that.
 * The first subscriber is the live one: it must still be on its first connection.
 */
export async function finishAndCompare(
  t: Test,
  pool: pg.Pool,
  writer: OrderWriter,
  start: number,
  subscribers: readonly FaultSubscriber[],
): Promise<void> {
  await writer.stop();
  await publishSentinel(pool);
  await Promise.all(subscribers.map((subscriber) => receivedSentinel(subscriber)));
  const logged = await loggedOrderEvents(pool, start);
  t.same(
    logged.map((event) => event.orderId),
    writer.committed,
    `the log holds exactly the ${writer.committed.length} rows the writer committed, in its order`,
  );
  for (const subscriber of subscribers) {
    t.same(
      compareWithLog(subscriber.orderEvents(), logged),
      perfectDelivery(logged.length),
      `${subscriber.name} received each of the ${logged.length} committed events exactly once, in commit order`,
    );
  }
  t.equal(subscribers[0]?.sessions.length, 1, `${subscribers[0]?.name} kept its one connection throughout`);
}

/** Commits one `orders` row with id `id` (one statement, its own transaction). */
export async function insertOrder(pool: pg.Pool, id: string): Promise<void> {
  await pool.query(`insert into orders (id, hospital_id, customer_id, status) values ($1, 'H1', $2, 'placed')`, [id, `c-${id}`]);
}

/** `promise`, or a rejection naming `what` after `timeoutMs`. */
export function within<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: did not happen within ${timeoutMs} ms`)), timeoutMs);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
