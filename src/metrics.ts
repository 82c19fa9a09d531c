// The relay's Prometheus instruments (contract section 4, plus the listener and replays), on a
// registry of its own: two relays in one process (the tests) or a host application's own metrics
// never mix, and nothing is registered at import time.
//
// Hot-path cost: counters move once per event or per batch (a replay page, the frames held for a
// resuming client), never once per recipient; gauges are read only when /metrics is scraped.

import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { ERROR_CODES, type ErrorCode } from './protocol/error-codes.ts';

/** Read when /metrics is scraped, so that keeping them costs nothing meanwhile. */
export interface MetricSources {
  connections(): number;
  subscriptions(): number;
  /** Whether the listener is listening to PostgreSQL right now. */
  listening(): boolean;
  /** Whether the relay serves clients: its live stream has started. */
  started(): boolean;
  /** Seconds live delivery has been held back by a missing commit position (0: by none; see held-back-clock.ts). */
  heldBackSeconds(): number;
}

/** The named instruments; the composition root hands each part the ones it moves. */
export interface RelayMetrics {
  readonly registry: Registry;
  /** Events taken from PostgreSQL (notifications and catch-ups after a lost link), once each. */
  readonly eventsReceived: Counter;
  /** Event frames sent to clients: one per client reached (live, held during a replay, or replayed). */
  readonly eventsDelivered: Counter;
  /** Upgrades refused, by HTTP `status`: 401 (token), 403 (origin), 503 (connection limit, starting). */
  readonly connectionsRejected: Counter<'status'>;
  /** Error frames sent to clients, by their `code`. */
  readonly errors: Counter<'code'>;
  /** Commit to send of live events (not replays, whose age is the client's choice). */
  readonly deliveryLag: Histogram;
  /** Times the listener was listening again after losing its link. */
  readonly listenerReconnects: Counter;
  readonly replaysStarted: Counter;
  /** Events a replay read from the log and sent. */
  readonly eventsReplayed: Counter;
  /** Replays waiting: `for` their client to read, or for their `turn` (another replay of the connection is sending). */
  readonly replaysWaiting: Gauge<'for'>;
  /** JSON text of the pages replays hold: read from the log, not all sent yet. */
  readonly replayHeldBytes: Gauge;
}

/**
 * Commit-to-send delays worth telling apart, in seconds: a quarter of a millisecond (a notification
 * and one read of the log on an idle host) up to a lost link's minute, finest where live delivery
 * usually is. Bounds are only ever added, so that dashboards reading a bucket keep working.
 */
const LAG_BUCKETS_SECONDS = [
  0.00025, 0.0005, 0.00075, 0.001, 0.0015, 0.002, 0.0025, 0.003, 0.004, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25,
  0.5, 1, 2.5, 5, 10, 30, 60,
];

/** The statuses an upgrade is refused with, exported at 0 from the start like the error codes. */
const REFUSAL_STATUSES = ['401', '403', '429', '503'] as const;

/** A registry with the relay's instruments and Node's default process metrics. */
export function createMetrics(sources: MetricSources): RelayMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const registers = [registry];

  new Gauge({
    name: 'relay_connections',
    help: 'Open WebSocket connections.',
    registers,
    collect() {
      this.set(sources.connections());
    },
  });
  new Gauge({
    name: 'relay_subscriptions',
    help: 'Subscriptions of all connections (live or resuming).',
    registers,
    collect() {
      this.set(sources.subscriptions());
    },
  });
  new Gauge({
    name: 'relay_listening',
    help: '1 while the relay is listening to PostgreSQL, else 0 (GET /health answers 503).',
    registers,
    collect() {
      this.set(sources.listening() ? 1 : 0);
    },
  });

  new Gauge({
    name: 'relay_started',
    help: '1 once the relay serves clients; 0 while it starts (it waits for transactions that drew a commit position to end).',
    registers,
    collect() {
      this.set(sources.started() ? 1 : 0);
    },
  });

  // Alerting on it finds a transaction that drew its commit position early and stays open: every
  // later event waits for it, on every relay, and only the log said so until now.
  new Gauge({
    name: 'relay_live_delivery_held_back_seconds',
    help: 'How long the commit position that live delivery waits for has been drawn without becoming visible (at least), or the start has waited for such positions: milliseconds for a commit on its way; seconds for a transaction that drew its position early and stays open (it holds ROW EXCLUSIVE on relay.commits). 0 when none is missing.',
    registers,
    collect() {
      this.set(sources.heldBackSeconds());
    },
  });

  const errors = new Counter({
    name: 'relay_errors_total',
    help: 'Error frames sent to clients, by code.',
    labelNames: ['code'] as const,
    registers,
  });
  // Every code is exported from the start, so a rate() over one that never happened is 0, not absent.
  for (const code of Object.keys(ERROR_CODES) as ErrorCode[]) errors.inc({ code }, 0);

  // By status, so that an alert tells a flood of bad tokens (401) from a full relay (503).
  const connectionsRejected = new Counter({
    name: 'relay_connections_rejected_total',
    help: 'WebSocket upgrades refused, by HTTP status: 401 (missing or invalid token), 403 (origin not allowed), 429 (a token subject already at RELAY_MAX_CONNECTIONS_PER_SUBJECT connections), 503 (relay unavailable: too many connections, or starting).',
    labelNames: ['status'] as const,
    registers,
  });
  for (const status of REFUSAL_STATUSES) connectionsRejected.inc({ status }, 0);
  const replaysWaiting = new Gauge({
    name: 'relay_replays_waiting',
    help: 'Replays waiting: for their client to read (for="client"), or for another replay of the same connection to send its page (for="turn").',
    labelNames: ['for'] as const,
    registers,
  });
  for (const what of ['client', 'turn']) replaysWaiting.set({ for: what }, 0);

  return {
    registry,
    eventsReceived: new Counter({
      name: 'relay_events_received_total',
      help: 'Events received from PostgreSQL (notified, or read from the log after a lost link).',
      registers,
    }),
    eventsDelivered: new Counter({
      name: 'relay_events_delivered_total',
      help: 'Event frames (and left frames) sent to clients, one per client reached (live, held during a replay, or replayed).',
      registers,
    }),
    connectionsRejected,
    errors,
    deliveryLag: new Histogram({
      name: 'relay_delivery_lag_seconds',
      help: "Time from an event's commit to its send to subscribers (live events; commit time from PostgreSQL's clock).",
      buckets: LAG_BUCKETS_SECONDS,
      registers,
    }),
    listenerReconnects: new Counter({
      name: 'relay_listener_reconnects_total',
      help: 'Times the listener was listening to PostgreSQL again after losing its link.',
      registers,
    }),
    replaysStarted: new Counter({
      name: 'relay_replays_started_total',
      help: 'Subscriptions with `since` whose replay from the event log started.',
      registers,
    }),
    eventsReplayed: new Counter({
      name: 'relay_replay_events_total',
      help: 'Events (and left frames) sent by replays, read from the event log.',
      registers,
    }),
    replaysWaiting,
    replayHeldBytes: new Gauge({
      name: 'relay_replay_held_bytes',
      help: "JSON text of the event pages replays hold, read from the log and not all sent yet (a page shared by replays counts once for each).",
      registers,
    }),
  };
}
