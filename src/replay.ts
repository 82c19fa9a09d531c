// `subscribe` with `since`: every event of the topic after the cursor, from the log, in pages that
// wait for the client to read (one page of a connection at a time), then the live events held
// meanwhile, then live delivery.

import { comparePositions, type Cursor, type LogPosition } from './cursor.ts';
import type { EventLog, LoggedEvent, LogPage, ReadLimit } from './db/event-log.ts';
import { relayEventOf } from './event-stream.ts';
import type { RelayEvent } from './events.ts';
import type { RelayMetrics } from './metrics.ts';
import { nextReadLimit } from './read-budget.ts';
import type { Session, SubscriptionHub } from './subscription-hub.ts';
import { createTurns, type Turns } from './turns.ts';

export interface ReplayContext {
  readonly eventLog: EventLog;
  readonly epoch: string;
  readonly hub: SubscriptionHub;
  readonly metrics: Pick<RelayMetrics, 'replaysStarted' | 'eventsReplayed' | 'eventsDelivered' | 'replaysWaiting' | 'replayHeldBytes'>;
  readonly pageSize?: number;
  /** The JSON text a replay holds at once (its page), whatever the size of the events. */
  readonly maxPageBytes?: number;
  /**
   * Turns at the pool for replays' reads: fewer than its connections, so that however many
   * replays run, live delivery (and the grants' reloads) find a connection free, not a line.
   */
  readonly readTurns?: Turns;
}

/**
 * A replay reads one topic, and the log has no index by topic: a read goes through every commit
 * after its start until it has a page, so a topic rare in a long log (an hour of another topic's
 * commits between two of its events) made one query of seconds or minutes, holding one of the
 * pool's few connections, and a few such replays held them all: live delivery, for every client
 * of the relay, waited for them. Each read goes through at most this many positions (about 40 ms
 * on the test machine for a topic that has none of them); the replay goes on from where it ended.
 */
const REPLAY_WINDOW_POSITIONS = 10_000;

/** Where a read from `after` stops: `upTo`, or the end of the window, after every event of its last commit. */
function readThrough(after: LogPosition, upTo: LogPosition): LogPosition {
  const windowEnd = after.pos + REPLAY_WINDOW_POSITIONS;
  return windowEnd < upTo.pos ? { pos: windowEnd, id: Number.MAX_SAFE_INTEGER } : upTo;
}

/**
 * Replays that read a page together (src/db/shared-reads.ts) share its events as subscribers see
 * them: each is built once (its body parsed, its cursor and time written), not once per replay.
 */
const builtEvents = new WeakMap<LoggedEvent, RelayEvent | null>();

function builtEvent(epoch: string, logged: LoggedEvent): RelayEvent | null {
  const known = builtEvents.get(logged);
  if (known !== undefined) return known;
  const built = relayEventOf(epoch, logged);
  builtEvents.set(logged, built);
  return built;
}

/**
 * A connection's replays take turns at reading and sending a page, one at a time: a replay keeps
 * its page until the client has read it, and a client that stops reading would otherwise hold a
 * page (up to RELAY_MAX_BACKPRESSURE) for each of up to 100 subscriptions. The turn is let go
 * after each page, so a connection's replays go on page by page, in turn.
 */
const connectionTurns = new WeakMap<Session, Turns>();

function turnsOf(session: Session): Turns {
  let turns = connectionTurns.get(session);
  if (!turns) connectionTurns.set(session, (turns = createTurns(1)));
  return turns;
}

/** Only whether the cursor is in the log: no event (see relay.read_log_page). */
const CURSOR_CHECK: ReadLimit = { events: 0, bytes: 0 };

/** Why a cursor is refused (cursor_expired). */
const RETENTION_PASSED = 'the cursor is older than the retention; subscribe without `since` and reload';
/** A cursor of this log's name that names none of its events: e.g. the database was restored from an earlier backup. */
const NOT_IN_THIS_LOG =
  'the cursor names no event of this log (was the database restored from an earlier backup?); subscribe without `since` and reload';

export type ReplayStart =
  | { readonly ok: true; readonly rest: Promise<void> }
  | { readonly ok: false; readonly code: 'cursor_expired'; readonly message: string };

/**
 * Reads the first page of a replay, or only checks its cursor while another replay of the
 * connection has the turn (the hub's subscription must be catching up from `since`), and tells
 * whether the cursor is still in the log. On success `beforeFirstPage` (the `subscribed` reply)
 * is called and the pages go out in the background, in the connection's turns.
 */
export async function startReplay(
  context: ReplayContext,
  session: Session,
  topic: string,
  since: Cursor,
  beforeFirstPage: () => void,
): Promise<ReplayStart> {
  const { eventLog, hub, metrics } = context;
  // A replay keeps its page while it waits for a client that reads slowly or not at all: pages are
  // cut to a byte budget too, or one paused client could hold 500 rows of any size.
  const maxLimit: ReadLimit = { events: context.pageSize ?? 500, bytes: context.maxPageBytes ?? 4 * 1024 * 1024 };
  const token = hub.catchUpToken(session, topic);
  if (!token) throw new Error(`startReplay: the subscription to ${topic} is not catching up`);
  const current = (): boolean => hub.catchUpToken(session, topic) === token;
  // A cursor from a relay further along: nothing to replay before the live stream reaches it (a
  // read through a position below the cursor would return the rest of the cursor's own commit,
  // which the live stream delivers after it).
  const live = hub.position();
  const upTo = comparePositions(live, since) < 0 ? since : live;
  let through = readThrough(since, upTo);
  const turns = turnsOf(session);
  // With the connection's turn, the first read is the first page. Without it (another replay of
  // the connection is sending), the reply must not wait for that replay's client, and the page
  // must not be held meanwhile: the first read only checks the cursor, and the page is read in turn.
  let turn = turns.tryTake();
  let first: LogPage;
  try {
    first = await eventLog.readPage(since, through, topic, turn ? maxLimit : CURSOR_CHECK, context.readTurns);
  } catch (error) {
    turn?.release();
    throw error;
  }
  // A cursor at or below the pruned position may have lost the rest of its transaction; one above
  // it must name an event of this log (else it is from a restored or cloned database's log).
  const expiredBecause = since.pos <= first.prunedThrough ? RETENTION_PASSED : first.afterInLog ? null : NOT_IN_THIS_LOG;
  // Ended meanwhile (connection closed, grant revoked and reported): nothing more to say.
  if (!current() || expiredBecause) turn?.release();
  if (!current()) return { ok: true, rest: Promise.resolve() };
  if (expiredBecause) {
    hub.unsubscribe(session, topic);
    return { ok: false, code: 'cursor_expired', message: expiredBecause };
  }
  beforeFirstPage();
  metrics.replaysStarted.inc();

  // Handed over and let go: a page the closure captured would be held whole while the replay runs.
  const handOver: { firstPage: LogPage | null } = { firstPage: turn ? first : null };
  const rest = (async () => {
    let after: LogPosition = since;
    let limit = maxLimit;
    let page: LogPage | null = handOver.firstPage;
    handOver.firstPage = null;
    try {
      for (;;) {
        if (!turn) {
          turn = await waitingFor('turn', turns.take());
          if (!current()) return;
        }
        page ??= await eventLog.readPage(after, through, topic, limit, context.readTurns);
        // Retention overtook a slow replay: what follows would have a hole. After a window's end
        // (every event of its position read), retention through that very position took nothing.
        const readWhole = after.id === Number.MAX_SAFE_INTEGER;
        if (readWhole ? after.pos < page.prunedThrough : after.pos <= page.prunedThrough) return endSubscription();
        const sent = await sendPage(page.events);
        // Counted per page: a replay sends thousands of frames a second.
        metrics.eventsReplayed.inc(sent);
        metrics.eventsDelivered.inc(sent);
        if (!current()) return;
        const last = page.events.at(-1);
        // Cut: on after its last event; else on after its window, unless that reached upTo.
        if (page.cut && last) after = last;
        else if (through !== upTo) after = through;
        else break;
        limit = nextReadLimit(maxLimit, page);
        page = null;
        // The next replay of the connection sends its page while this one waits for the client.
        turn.release();
        turn = null;
        await waitingFor('client', session.socket.whenWritable());
        if (!current()) return;
        through = readThrough(after, upTo);
      }
      metrics.eventsDelivered.inc(hub.finishCatchUp(session, topic, token));
    } finally {
      turn?.release();
    }
  })().catch((error: unknown) => {
    // The client resumes from the last cursor it received, on a new connection.
    session.socket.logger().warn({ err: error, topic }, 'replay failed; closing the connection');
    if (current()) session.socket.end(1011, 'replay failed');
  });
  return { ok: true, rest };

  /** Counts the replay among those waiting `for` its turn or its client, while it waits. */
  async function waitingFor<T>(what: 'turn' | 'client', wait: Promise<T>): Promise<T> {
    metrics.replaysWaiting.inc({ for: what });
    try {
      return await wait;
    } finally {
      metrics.replaysWaiting.dec({ for: what });
    }
  }

  /**
   * Sends a page's frames, waiting for the client whenever it has most of the send budget unread: a
   * page may hold as much as RELAY_MAX_BACKPRESSURE (more, for one event larger than that), and a
   * client that reads must not be closed as too slow because a whole page went out at once. What the client can take
   * goes out gathered: a frame sent alone costs a system call, and a replay sends thousands a
   * second. Returns how many it sent.
   */
  async function sendPage(events: readonly LoggedEvent[]): Promise<number> {
    const heldBytes = events.reduce((sum, event) => sum + event.textLength, 0);
    metrics.replayHeldBytes.inc(heldBytes);
    try {
      return await sendHeldPage(events);
    } finally {
      metrics.replayHeldBytes.dec(heldBytes);
    }
  }

  async function sendHeldPage(events: readonly LoggedEvent[]): Promise<number> {
    let sent = 0;
    let next = 0;
    while (next < events.length && current()) {
      if (!session.socket.writable()) {
        await waitingFor('client', session.socket.whenWritable());
        continue;
      }
      session.socket.gathered(() => {
        for (; next < events.length && session.socket.writable(); next++) {
          const relayEvent = builtEvent(context.epoch, events[next]!);
          // A malformed row (the triggers never write one) is passed over, as live delivery does.
          const frame = relayEvent === null ? null : hub.render(session, topic, relayEvent);
          if (frame === null) continue;
          session.socket.send(frame);
          sent++;
        }
      });
    }
    return sent;
  }

  function endSubscription(): void {
    if (!current()) return;
    hub.unsubscribe(session, topic);
    session.socket.sendError({ code: 'cursor_expired', message: RETENTION_PASSED, topic });
  }
}

