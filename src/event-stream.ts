import type { Logger } from 'pino';
import { comparePositions, encodeCursor, type LogPosition } from './cursor.ts';
import type { EventLog, LogIdentity } from './db/event-log.ts';
import { parseNotification, type EventBody, type NotifiedEvent } from './db/notification.ts';
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
  /** How many large events one query fetches at most. */
  readonly fetchBatchSize?: number;
  /** How many events one catch-up query reads. */
  readonly catchUpPageSize?: number;
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

/** The event as subscribers see it, from a notification or a row of the log. */
export function relayEventOf(epoch: string, notified: NotifiedEvent, body: EventBody): RelayEvent {
  return {
    topic: notified.topic,
    event: notified.event,
    cursor: encodeCursor(epoch, notified),
    ts: new Date(Math.round(notified.ts * 1000)).toISOString(),
    ...body,
  };
}

/**
 * Turns notifications into events in commit order, with no gap and no duplicate:
 * - a notification too large for NOTIFY carries no body: the stream holds it, and everything
 *   after it, until one query has fetched the bodies of all such events waiting;
 * - after the listener lost its link, notifications sent meanwhile are gone: catchUp() reads them
 *   from the log first, and newer notifications that the log already gave are skipped.
 */
export function createEventStream(options: EventStreamOptions): EventStream {
  const { logger, eventLog, deliver, identity } = options;
  const fetchBatchSize = options.fetchBatchSize ?? 500;
  const catchUpPageSize = options.catchUpPageSize ?? 1000;
  const queue: NotifiedEvent[] = [];
  let last: LogPosition = { pos: 0, id: 0 };
  let started = false;
  /** False from a lost link until LISTEN is back: a catch-up must not start before it is. */
  let listening = true;
  let busy = false;
  let catchUpWanted = false;
  let stopped = false;
  let retryTimer: NodeJS.Timeout | undefined;

  function deliverOnce(notified: NotifiedEvent, body: EventBody): void {
    if (comparePositions(notified, last) <= 0) return;
    last = { pos: notified.pos, id: notified.id };
    try {
      deliver(relayEventOf(identity.epoch, notified, body), last, notified.ts);
    } catch (error) {
      // One event that breaks delivery must not stop the stream for every other subscriber.
      logger.error({ err: error, topic: notified.topic, pos: notified.pos, id: notified.id }, 'delivery failed');
    }
  }

  function drain(): void {
    while (started && listening && !busy && !stopped) {
      if (catchUpWanted) {
        runExclusively(readMissedEvents);
        return;
      }
      const head = queue[0];
      if (!head) return;
      if (head.body) {
        queue.shift();
        deliverOnce(head, head.body);
      } else {
        runExclusively(fetchWaitingBodies);
      }
    }
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

  async function fetchWaitingBodies(): Promise<void> {
    const waiting = queue.filter((event) => !event.body).slice(0, fetchBatchSize);
    const bodies = await eventLog.fetchBodies(waiting.map((event) => event.id));
    for (const event of waiting) {
      const index = queue.indexOf(event);
      const body = bodies.get(event.id);
      if (body) {
        queue[index] = { ...event, body };
      } else {
        logger.warn({ id: event.id, topic: event.topic }, 'a large event is no longer in the log; skipped');
        queue.splice(index, 1);
      }
    }
  }

  async function readMissedEvents(): Promise<void> {
    const head = await eventLog.head();
    let delivered = 0;
    for (;;) {
      const { events } = await eventLog.readPage(last, head, null, catchUpPageSize);
      for (const event of events) deliverOnce(event, event.body);
      delivered += events.length;
      if (events.length < catchUpPageSize || stopped) break;
    }
    catchUpWanted = false;
    logger.info({ events: delivered, through: last }, 'caught up from the event log');
  }

  return {
    async start() {
      last = await eventLog.head();
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
      queue.push(parsed.event);
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
      queue.length = 0;
    },
  };
}
