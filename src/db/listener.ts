import pgListen from 'pg-listen';
import type { Logger } from 'pino';

const createSubscriber = pgListen.default;

export interface ListenerHandlers {
  onNotification(channel: string, payload: string | undefined): void;
  /**
   * LISTEN is in place again. After a first connection `reconnected` is false; after any loss it
   * is true, and notifications sent meanwhile are lost: the caller must catch up from the log.
   */
  onListening(reconnected: boolean): void;
  /** The link is gone (health turns unhealthy); reconnection is already under way. */
  onLost(): void;
}

export interface ListenerOptions {
  readonly databaseUrl: string;
  readonly channels: readonly string[];
  readonly logger: Logger;
  readonly handlers: ListenerHandlers;
  /** How often a trivial query proves the link is alive (a half-open TCP link sends nothing). */
  readonly heartbeatIntervalMs?: number;
  /** How long that query may take before the link counts as dead. */
  readonly heartbeatTimeoutMs?: number;
}

export interface Listener {
  start(): Promise<void>;
  stop(): Promise<void>;
  isListening(): boolean;
}

const MAX_RETRY_DELAY_MS = 5_000;

/** Backoff for reconnecting: doubles from 100 ms up to 5 s, with jitter so relays do not stampede. */
export function retryDelayMs(attempt: number): number {
  const ceiling = Math.min(MAX_RETRY_DELAY_MS, 100 * 2 ** Math.min(attempt, 10));
  return Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
}

/**
 * LISTEN on its own connection (never a pooled client), which never gives up: pg-listen retries
 * without a time limit, and when it still reports a fatal error the whole subscriber is rebuilt.
 */
export function createListener(options: ListenerOptions): Listener {
  const { logger, handlers } = options;
  let subscriber: ReturnType<typeof createSubscriber> | undefined;
  let listening = false;
  let everListened = false;
  let stopped = false;
  let rebuildTimer: NodeJS.Timeout | undefined;

  const markLost = (): void => {
    if (!listening) return;
    listening = false;
    handlers.onLost();
  };

  const markListening = (): void => {
    listening = true;
    const reconnected = everListened;
    everListened = true;
    handlers.onListening(reconnected);
  };

  async function connect(attempt: number): Promise<void> {
    if (stopped) return;
    const current = createSubscriber(
      {
        connectionString: options.databaseUrl,
        keepAlive: true,
        query_timeout: options.heartbeatTimeoutMs ?? 5_000,
        application_name: 'pg-relay listener',
      },
      {
        paranoidChecking: options.heartbeatIntervalMs ?? 2_000,
        retryInterval: retryDelayMs,
        retryLimit: Infinity,
        retryTimeout: 0,
        // Payloads are parsed by the relay, where a malformed one is counted, not thrown.
        parse: (payload: string) => payload,
      },
    );
    subscriber = current;
    current.events.on('notification', ({ channel, payload }) => handlers.onNotification(channel, payload));
    current.events.on('reconnect', (reconnectAttempt) => {
      markLost();
      logger.warn({ attempt: reconnectAttempt }, 'listener: connection to PostgreSQL lost, reconnecting');
    });
    current.events.on('connected', () => {
      // The first `connected` comes before our LISTENs; pg-listen repeats them after a reconnect.
      if (current.getSubscribedChannels().length > 0) markListening();
    });
    current.events.on('error', (error) => {
      markLost();
      logger.error({ err: error }, 'listener: PostgreSQL link failed, rebuilding it');
      rebuild(current, 1);
    });
    try {
      await current.connect();
      for (const channel of options.channels) await current.listenTo(channel);
      markListening();
      if (attempt > 0) logger.info('listener: connected to PostgreSQL');
    } catch (error) {
      logger.warn({ err: error, attempt }, 'listener: cannot reach PostgreSQL yet');
      rebuild(current, attempt + 1);
    }
  }

  function rebuild(failed: ReturnType<typeof createSubscriber>, attempt: number): void {
    if (stopped || subscriber !== failed) return;
    subscriber = undefined;
    detach(failed);
    // Closing a broken client can itself fail; the new subscriber does not depend on it.
    failed.close().catch((error: unknown) => logger.debug({ err: error }, 'listener: closing a failed client'));
    rebuildTimer = setTimeout(() => void connect(attempt), retryDelayMs(attempt));
  }

  function detach(old: ReturnType<typeof createSubscriber>): void {
    for (const event of ['notification', 'reconnect', 'connected', 'error'] as const) {
      old.events.removeAllListeners(event);
    }
    // An 'error' event with no listener would crash the process; an abandoned client may still emit one.
    old.events.on('error', (error) => logger.debug({ err: error }, 'listener: abandoned client failed'));
  }

  return {
    async start() {
      await connect(0);
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      clearTimeout(rebuildTimer);
      listening = false;
      const current = subscriber;
      subscriber = undefined;
      if (current) {
        detach(current);
        await current.close().catch((error: unknown) => logger.debug({ err: error }, 'listener: close failed'));
      }
    },
    isListening: () => listening,
  };
}
