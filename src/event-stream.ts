import type { Logger } from 'pino';
import { comparePositions, encodeCursor, type LogPosition } from './cursor.ts';
import type { EventLog, LoggedEvent, LogIdentity } from './db/event-log.ts';
import { parseNotification } from './db/notification.ts';
import type { RelayEvent } from './events.ts';

export interface EventStreamOptions {
  readonly identity: LogIdentity;
  readonly eventLog: EventLog;
  readonly logger: Logger;
  /**
   * Called once per event, strictly in commit order, never twice for one event; `committedAt` is
   * its commit time in seconds since the epoch (PostgreSQL's clock), for the delivery lag.
   */
  readonly deliver: (event: RelayEvent, position: LogPosition, committedAt: number) => void;
  /** How many events one query reads from the log. */
  readonly pageSize?: number;
}

export interface EventStream {
  /** Sets the starting point: the end of the log now. Call once LISTEN is in place. */
  start(): Promise<void>;
  /** Takes the payload of a `relay_events` notification, in the order they arrived. */
  push(payload: string | undefined): void;
  /**
   * The link to PostgreSQL is lost: notifications sent meanwhile are gone, so nothing more is
   * delivered (newer notifications wait) until catchUp() has read the gap from the log.
   */
  suspend(): void;
  /**
   * Reads from the log everything committed after the last delivered event, before any newer
   * notification: call it once LISTEN is in place (again).
   */
  catchUp(): void;
  /** The last event delivered (everything up to it has been delivered). */
  position(): LogPosition;
  stop(): void;
}

const RETRY_MS = 500;

/** The event as subscribers see it, from a row of the log. */
export function relayEventOf(epoch: string, logged: LoggedEvent): RelayEvent {
  return {
    topic: logged.topic,
    event: logged.event,
    cursor: encodeCursor(epoch, logged),
    ts: new Date(Math.round(logged.ts * 1000)).toISOString(),
    ...logged.body,
  };
}

/**
 * Turns notifications into events in commit order, with no gap and no duplicate. A notification
 * only says that every position up to its own is committed: the stream reads them from the log,
 * one query for as many commits as are waiting (under load, many per query).
 * - Positions are drawn in commit order and each is visible before the next is drawn (see
 *   README, "How commit order is kept"), so when position N is notified, reading the log up to N
 *   leaves nothing out.
 * - After the listener lost its link, notifications sent meanwhile are gone: catchUp() reads the
 *   log up to its head, and notifications of positions already read are skipped.
 */
export function createEventStream(options: EventStreamOptions): EventStream {
  const { logger, eventLog, deliver, identity } = options;
  const pageSize = options.pageSize ?? 1000;
  let last: LogPosition = { pos: 0, id: 0 };
  /** The log has been read through this position. */
  let readThrough = 0;
  /** Whether `last` is the last event of its commit (the log's head is). */
  let lastEndsItsCommit = true;
  /** The highest position notified: the log is to be read up to it. */
  let notifiedThrough = 0;
  let started = false;
  /** False from a lost link until LISTEN is back: a catch-up must not start before it is. */
  let listening = true;
  let busy = false;
  let catchUpWanted = false;
  let stopped = false;
  let retryTimer: NodeJS.Timeout | undefined;

  function deliverOnce(logged: LoggedEvent): void {
    if (comparePositions(logged, last) <= 0) return;
    last = { pos: logged.pos, id: logged.id };
    try {
      deliver(relayEventOf(identity.epoch, logged), last, logged.ts);
    } catch (error) {
      // One event that breaks delivery must not stop the stream for every other subscriber.
      logger.error({ err: error, topic: logged.topic, pos: logged.pos, id: logged.id }, 'delivery failed');
    }
  }

  function drain(): void {
    if (!started || !listening || busy || stopped) return;
    if (catchUpWanted) runExclusively(readMissedEvents);
    else if (readThrough < notifiedThrough) runExclusively(readNotifiedEvents);
  }

  /** Runs one step that must finish before anything else is delivered; retries it on failure. */
  function runExclusively(step: () => Promise<void>): void {
    busy = true;
    step().then(
      () => {
        busy = false;
        drain();
      },
      (error: unknown) => {
        logger.warn({ err: error }, 'cannot read the event log yet; retrying');
        retryTimer = setTimeout(() => {
          busy = false;
          drain();
        }, RETRY_MS);
      },
    );
  }

  /**
   * Delivers every event after the last one delivered, up to `upTo` included, which is always the
   * last event of its commit. While the last delivered event ended its commit (nearly always),
   * whole commits are read with the cheaper query; after a page that the limit cut, possibly
   * inside a commit, the general page read finishes that commit.
   */
  async function readUpTo(upTo: LogPosition): Promise<number> {
    let delivered = 0;
    for (;;) {
      const events = lastEndsItsCommit
        ? await eventLog.readCommits(last.pos, upTo.pos, pageSize)
        : (await eventLog.readPage(last, upTo, null, pageSize)).events;
      for (const event of events) deliverOnce(event);
      delivered += events.length;
      lastEndsItsCommit = events.length < pageSize;
      if (lastEndsItsCommit || stopped) return delivered;
    }
  }

  async function readNotifiedEvents(): Promise<void> {
    const through = notifiedThrough;
    await readUpTo({ pos: through, id: Number.MAX_SAFE_INTEGER });
    readThrough = Math.max(readThrough, through);
  }

  async function readMissedEvents(): Promise<void> {
    const head = await eventLog.head();
    const delivered = await readUpTo(head);
    readThrough = Math.max(readThrough, head.pos);
    catchUpWanted = false;
    logger.info({ events: delivered, through: last }, 'caught up from the event log');
  }

  return {
    async start() {
      last = await eventLog.head();
      readThrough = last.pos;
      started = true;
      drain();
    },
    push(payload) {
      if (stopped) return;
      const parsed = parseNotification(identity.signingKey, payload);
      if (!parsed.ok) {
        logger.warn({ reason: parsed.error, bytes: payload?.length ?? 0 }, 'ignored a malformed notification');
        return;
      }
      notifiedThrough = Math.max(notifiedThrough, parsed.pos);
      drain();
    },
    suspend() {
      listening = false;
      catchUpWanted = true;
    },
    catchUp() {
      listening = true;
      catchUpWanted = true;
      drain();
    },
    position: () => last,
    stop() {
      stopped = true;
      clearTimeout(retryTimer);
    },
  };
}
