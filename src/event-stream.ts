import type { Logger } from 'pino';
import { encodeCursor } from './cursor.ts';
import type { EventLog, LogIdentity } from './db/event-log.ts';
import { parseNotification, type EventBody, type NotifiedEvent } from './db/notification.ts';
import type { RelayEvent } from './events.ts';

export interface EventStreamOptions {
  readonly identity: LogIdentity;
  readonly eventLog: EventLog;
  readonly logger: Logger;
  /** Called once per event, strictly in commit order. */
  readonly deliver: (event: RelayEvent) => void;
  /** How many large events one query fetches at most. */
  readonly fetchBatchSize?: number;
}

export interface EventStream {
  /** Takes the payload of a `relay_events` notification, in the order they arrived. */
  push(payload: string | undefined): void;
  /** Events received and not yet delivered (waiting for a body from the log). */
  pending(): number;
  stop(): void;
}

const RETRY_FETCH_MS = 500;

/**
 * Turns notifications into events in commit order. A notification too large for NOTIFY carries no
 * body: the stream holds it, and everything after it, until one query has fetched the bodies of
 * all such events waiting, so order is kept and the log is read once per batch, not per event.
 */
export function createEventStream(options: EventStreamOptions): EventStream {
  const { logger, eventLog, deliver } = options;
  const fetchBatchSize = options.fetchBatchSize ?? 500;
  const queue: NotifiedEvent[] = [];
  let fetching = false;
  let stopped = false;
  let retryTimer: NodeJS.Timeout | undefined;

  function toRelayEvent(notified: NotifiedEvent, body: EventBody): RelayEvent {
    return {
      topic: notified.topic,
      event: notified.event,
      cursor: encodeCursor(options.identity.epoch, notified.pos, notified.id),
      ts: new Date(Math.round(notified.ts * 1000)).toISOString(),
      ...body,
    };
  }

  function deliverSafely(event: RelayEvent): void {
    try {
      deliver(event);
    } catch (error) {
      // One event that breaks delivery must not stop the stream for every other subscriber.
      logger.error({ err: error, topic: event.topic, cursor: event.cursor }, 'delivery failed for an event');
    }
  }

  function drain(): void {
    while (!fetching && !stopped && queue.length > 0) {
      const head = queue[0]!;
      if (head.body) {
        queue.shift();
        deliverSafely(toRelayEvent(head, head.body));
        continue;
      }
      void fetchWaitingBodies();
    }
  }

  async function fetchWaitingBodies(): Promise<void> {
    fetching = true;
    const waiting = queue.filter((event) => !event.body).slice(0, fetchBatchSize);
    try {
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
      fetching = false;
      drain();
    } catch (error) {
      logger.warn({ err: error }, 'cannot read large events from the log yet; retrying');
      retryTimer = setTimeout(() => {
        fetching = false;
        drain();
      }, RETRY_FETCH_MS);
    }
  }

  return {
    push(payload) {
      if (stopped) return;
      const parsed = parseNotification(options.identity.signingKey, payload);
      if (!parsed.ok) {
        logger.warn({ reason: parsed.error, bytes: payload?.length ?? 0 }, 'ignored a malformed notification');
        return;
      }
      queue.push(parsed.event);
      drain();
    },
    pending: () => queue.length,
    stop() {
      stopped = true;
      clearTimeout(retryTimer);
      queue.length = 0;
    },
  };
}
