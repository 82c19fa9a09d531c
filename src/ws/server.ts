// The network edge: uWebSockets.js with /ws (origin, capacity and token checked before the
// upgrade), /health and /metrics. Per connection: a message budget, a token expiry, a send budget.

import type { HttpResponse, TemplatedApp, us_listen_socket, WebSocket } from 'uWebSockets.js';
import type { Logger } from 'pino';
import { refusalCause, refusalReason } from '../auth/token-error.ts';
import { normalizeOrigin, type Limits } from '../config-limits.ts';
import type { TokenVerifier, VerifiedToken } from '../auth/verify-token.ts';
import { extractToken } from '../auth/extract-token.ts';
import type { RelayMetrics } from '../metrics.ts';
import { parseClientMessage, refOfFrame } from '../protocol/client-messages.ts';
import { frameShapeLimits } from '../protocol/frame-shape.ts';
import { CLOSE_CODES } from '../protocol/error-codes.ts';
import { errorFrame, welcomeFrame } from '../protocol/server-frames.ts';
import type { ReplayContext } from '../replay.ts';
import type { Identity, Session, SubscriberSocket, SubscriptionHub } from '../subscription-hub.ts';
import { handleClientMessage } from './handle-message.ts';
import { createExpirySchedule } from './expiry-schedule.ts';
import { identityOf } from './identity.ts';
import { createMessageRateLimiter, type MessageRateLimiter, type RateDecision } from './rate-limit.ts';
import { createSubjectConnections } from './subject-connections.ts';
import type { loadNativeUws } from './uws.ts';

export interface WsServerOptions {
  readonly uws: ReturnType<typeof loadNativeUws>;
  readonly host: string;
  readonly port: number;
  readonly logger: Logger;
  readonly verifier: TokenVerifier;
  readonly hub: SubscriptionHub;
  /** Whether the relay is listening to PostgreSQL (for /health). */
  readonly isListening: () => boolean;
  /**
   * Why the relay does not serve clients yet (undefined once it does): meanwhile /health answers
   * 503 "starting" and every upgrade 503, so that no client reaches the hub before it can serve.
   */
  readonly startingReason: () => string | undefined;
  readonly limits: Limits;
  readonly metrics: Pick<RelayMetrics, 'registry' | 'connectionsRejected' | 'errors'>;
  /** For `subscribe` with `since`. */
  readonly replay: ReplayContext;
}

export interface WsServer {
  /** Starts listening; resolves to the bound port (useful with port 0). */
  start(): Promise<number>;
  /** Stops accepting, then closes every connection with 1012; returns how many it closed. */
  stop(): number;
  /** Closes every connection with `code` (the relay goes on serving); returns how many it closed. */
  endAll(code: number, reason: string): number;
  /** Publishes a frame to every socket that joined `channel`; returns how many sockets that is. */
  publish(channel: string, frame: string): number;
}

interface ConnectionData {
  readonly id: number;
  /**
   * The claims the connection opened with. An `auth` replaces the hub's copy, not this one: its
   * `sub` is the subject the connection counts for (see subject-connections.ts) for its whole life.
   */
  readonly identity: Identity;
  /** The current token's expiry (seconds since the epoch); an `auth` refresh replaces it. */
  exp: number | null;
  session?: Session;
  closed: boolean;
  readonly rateLimiter: MessageRateLimiter;
  /** Channels joined, so that a close leaves them and a publish finds who fell behind. */
  readonly channels: Set<string>;
  /**
   * Frames are handled one after another: while one awaits (`auth` may fetch keys, `since` reads
   * the log), later frames wait here, and so do the replies to frames refused before parsing, so
   * that every reply comes in the order of its frame. Otherwise a frame is handled at once,
   * inside uWS's callback. Each is held with the size of its frame, counted in `waitingBytes`.
   */
  readonly waiting: Array<{ readonly bytes: number; readonly next: string | (() => void); readonly receivedAtMs: number }>;
  waitingBytes: number;
  busy: boolean;
  /** The frame being handled (while busy), and when it came. */
  inFlight: { readonly text: string; readonly receivedAtMs: number } | undefined;
  /** The token expired while an `auth` sent before `exp` waited: the frames sent before `exp` go first (see expireTokens). */
  expiryDeferred: boolean;
  /** Replays waiting for the socket's unsent data to drain. */
  readonly drainWaiters: (() => void)[];
  /** Made on first use (see connectionLogger). */
  logger?: Logger;
}

type Socket = WebSocket<ConnectionData>;

/** Expiries are checked this often: a connection ends within this long after its token's `exp`. */
const EXPIRY_TICK_MS = 1000;
/** How long past `exp` a connection may wait for a refresh it sent before `exp` (see expireTokens). */
const EXPIRY_GRACE_SECONDS = 5;

/** Creates the server; nothing is bound until start(). */
export function createWsServer(options: WsServerOptions): WsServer {
  const { uws, logger, verifier, hub, limits, metrics } = options;
  const app: TemplatedApp = uws.App();
  let listenSocket: us_listen_socket | undefined;
  const openSockets = new Set<Socket>();
  /** Upgrades waiting for a JWKS fetch: they count against maxConnections too. */
  let pendingUpgrades = 0;
  // Checked right before res.upgrade, which calls open() at once: no upgrade is between the two.
  const subjectConnections = createSubjectConnections(limits.maxConnectionsPerSubject);
  let nextConnectionId = 1;
  const decoder = new TextDecoder('utf-8', { fatal: true });
  // A replay sends its next page once the client has read most of the previous ones.
  const replayLowWaterBytes = Math.floor(limits.maxBackpressureBytes / 4);
  const { replay } = options;
  const expiries = createExpirySchedule<Socket>(nowSeconds());
  let expiryTimer: NodeJS.Timeout | undefined;
  const channelMembers = new Map<string, Set<Socket>>();
  const backlog = createBacklogCheck();
  const frameShape = frameShapeLimits(limits);

  app.ws<ConnectionData>('/ws', {
    // uWS drops a connection whose frame passes maxPayloadLength without a close frame (the client
    // sees 1006). To answer 1009, frames are accepted up to a hard cap of twice the limit and
    // measured here; a frame over the cap is dropped the hard way. uWS holds a frame until its last
    // byte comes, however slowly it comes (data keeps a connection from its idle timeout): the cap
    // is what a connection that never finishes a frame holds. It was the send budget (4 MiB), 64
    // times the default frame limit, and 40 such connections held 160 MB.
    maxPayloadLength: 2 * limits.maxFrameBytes,
    // The relay closes a client over maxBackpressureBytes itself, with 4008 (see createBacklogCheck).
    // uWS's own limit, twice as high, is only the backstop: without closeOnBackpressureLimit uWS
    // would silently skip messages to a socket over it, a gap nobody would see; with it, such a
    // socket is dropped (1006) and its client resumes from its last cursor.
    maxBackpressure: 2 * limits.maxBackpressureBytes,
    closeOnBackpressureLimit: 1,
    idleTimeout: 120,
    sendPingsAutomatically: true,

    upgrade(res, req, context) {
      // Everything needed from `req` is copied now: it is invalid once this callback returns.
      const query = req.getQuery() ?? '';
      const token = extractToken({ query, authorization: req.getHeader('authorization') });
      const key = req.getHeader('sec-websocket-key');
      const protocol = req.getHeader('sec-websocket-protocol');
      const extensions = req.getHeader('sec-websocket-extensions');
      // For the log only; the logger's url serializer blanks the access_token parameter.
      const url = query === '' ? req.getUrl() : `${req.getUrl()}?${query}`;
      // `cause`, the details behind a token's refusal, is for the log only (see refusalCause).
      const refuseWithStatus = (status: string, body: Record<string, string>, cause?: string): void => {
        // '401 Unauthorized' counts as status="401".
        metrics.connectionsRejected.inc({ status: status.slice(0, 3) });
        logger.info({ reason: body.reason, cause, url }, 'upgrade refused');
        refuseWith(res, status, body);
      };
      const refuseFor = (reason: string, cause?: string): void => refuseWithStatus('401 Unauthorized', { error: 'unauthorized', reason }, cause);
      const origin = req.getHeader('origin');
      // Browsers always send Origin on a WebSocket upgrade and let any page open one: without this
      // check, a page on any site could use a token it got hold of. Other clients send none.
      if (limits.allowedOrigins && origin !== '' && !limits.allowedOrigins.includes(normalizeOrigin(origin) ?? '')) {
        refuseWithStatus('403 Forbidden', { error: 'forbidden', reason: 'origin not allowed' });
        return;
      }
      // Before the token is read: a client sent here while the relay starts goes elsewhere at once.
      const startingReason = options.startingReason();
      if (startingReason !== undefined) {
        refuseWithStatus('503 Service Unavailable', { error: 'unavailable', reason: startingReason });
        return;
      }
      if (openSockets.size + pendingUpgrades >= limits.maxConnections) {
        logger.warn({ maxConnections: limits.maxConnections }, 'connection limit reached');
        refuseWithStatus('503 Service Unavailable', { error: 'unavailable', reason: 'too many connections' });
        return;
      }
      if (!token) {
        refuseFor('missing token');
        return;
      }
      const upgradeWith = (verified: VerifiedToken): void => {
        if (!subjectConnections.admits(verified.sub)) {
          refuseWithStatus(
            '429 Too Many Requests',
            { error: 'too_many_connections', reason: `this token's subject already has ${limits.maxConnectionsPerSubject} connections open` },
            // For the log: which subject (never the token) an operator may want to look at.
            `sub ${JSON.stringify(verified.sub)}`,
          );
          return;
        }
        const data: ConnectionData = {
          id: nextConnectionId++,
          identity: identityOf(verified),
          exp: verified.exp,
          closed: false,
          rateLimiter: createMessageRateLimiter(limits.maxMessagesPerSecond, performance.now()),
          channels: new Set(),
          waiting: [],
          waitingBytes: 0,
          busy: false,
          inFlight: undefined,
          expiryDeferred: false,
          drainWaiters: [],
        };
        res.upgrade(data, key, protocol, extensions, context);
      };
      const refuse = (error: unknown): void => refuseFor(refusalReason(error), refusalCause(error));
      // Verified synchronously and upgraded inside this callback, whenever the key is at hand.
      // This uWebSockets.js build mishandles res.cork(() => res.upgrade()) after an await: now
      // and then (when the socket is reallocated at the same address) it closes the new
      // WebSocket at once. Only a JWKS key not fetched yet takes the asynchronous path.
      let verified: VerifiedToken | null;
      try {
        verified = verifier.verifyNow(token);
      } catch (error) {
        refuse(error);
        return;
      }
      if (verified) {
        upgradeWith(verified);
        return;
      }
      let aborted = false;
      res.onAborted(() => {
        aborted = true;
      });
      pendingUpgrades++;
      verifier
        .verify(token)
        .then(
          // Not corked, for the reason above: uWS prints a warning for each such upgrade (and
          // each refusal past the subject's limit, written here too).
          (fetched) => aborted || upgradeWith(fetched),
          (error: unknown) => aborted || res.cork(() => refuse(error)),
        )
        .finally(() => pendingUpgrades--);
    },

    open(ws) {
      const data = ws.getUserData();
      openSockets.add(ws);
      subjectConnections.opened(data.identity.sub);
      expiries.set(ws, data.exp);
      data.session = hub.open(socketOf(ws), data.identity);
      // Guarded: a connection's child logger is made only when a line is written (see connectionLogger).
      if (logger.isLevelEnabled('debug')) connectionLogger(data).debug({ role: data.identity.role, sub: data.identity.sub }, 'connection opened');
      ws.send(welcomeFrame({ role: data.identity.role, sub: data.identity.sub, exp: data.exp }), false);
    },

    message(ws, message, isBinary) {
      const data = ws.getUserData();
      const session = data.session;
      if (!session) return;
      if (message.byteLength > limits.maxFrameBytes) {
        connectionLogger(data).info({ bytes: message.byteLength, limit: limits.maxFrameBytes }, 'frame over the limit; closing with 1009');
        ws.end(CLOSE_CODES.frameTooLarge.code, `frame over ${limits.maxFrameBytes} bytes`);
        return;
      }
      // Counted before any parsing: a flood of garbage costs as much as a flood of requests.
      // On the monotonic clock: a wall clock stepped back would refill no bucket for as long.
      const decision = data.rateLimiter.take(performance.now());
      if (decision === 'disconnect') return closeAsFlooding(ws, data);
      let text: string | undefined;
      try {
        if (!isBinary) text = decoder.decode(message);
      } catch {
        text = undefined;
      }
      if (decision === 'refuse') {
        // Parsed for its `ref` only: the refusal budget bounds this work as the rate bounds the rest.
        const ref = text === undefined ? undefined : refOfFrame(text, frameShape);
        const reason = `over ${limits.maxMessagesPerSecond} messages per second; this message was dropped`;
        replyInOrder(ws, data, message.byteLength, () =>
          session.socket.sendError({ code: 'rate_limited', message: reason, ...(ref !== undefined && { ref }) }),
        );
        return;
      }
      if (text === undefined) {
        // A binary frame or invalid UTF-8 is a bad request, not a reason to drop the connection.
        session.socket.logger().debug({ binary: isBinary, bytes: message.byteLength }, 'bad request: not a UTF-8 text frame');
        replyInOrder(ws, data, message.byteLength, () =>
          session.socket.sendError({ code: 'bad_request', message: 'expected a UTF-8 text frame holding a JSON object' }),
        );
        return;
      }
      if (data.busy) wait(ws, data, message.byteLength, text);
      else handleInOrder(ws, data, session, text, Date.now());
    },

    drain(ws) {
      const data = ws.getUserData();
      if (ws.getBufferedAmount() < replayLowWaterBytes) for (const resolve of data.drainWaiters.splice(0)) resolve();
    },

    close(ws, code) {
      const data = ws.getUserData();
      data.closed = true;
      openSockets.delete(ws);
      subjectConnections.closed(data.identity.sub);
      expiries.delete(ws);
      for (const channel of data.channels) leave(ws, channel);
      if (data.session) hub.close(data.session);
      for (const resolve of data.drainWaiters.splice(0)) resolve();
      if (logger.isLevelEnabled('debug')) connectionLogger(data).debug({ code }, 'connection closed');
    },
  });

  app.get('/metrics', (res) => {
    let aborted = false;
    res.onAborted(() => (aborted = true));
    metrics.registry.metrics().then(
      (text) => aborted || res.cork(() => res.writeHeader('content-type', metrics.registry.contentType).end(text)),
      (error: unknown) => {
        logger.error({ err: error }, 'cannot collect the metrics');
        if (!aborted) res.cork(() => res.writeStatus('500 Internal Server Error').end());
      },
    );
  });

  app.get('/health', (res) => {
    const listening = options.isListening();
    const reason = options.startingReason();
    const status = reason !== undefined ? 'starting' : listening ? 'ok' : 'unavailable';
    const body = JSON.stringify({ status, listening, ...(reason !== undefined && { reason }), ...hub.stats() });
    res.cork(() => {
      res.writeStatus(status === 'ok' ? '200 OK' : '503 Service Unavailable');
      res.writeHeader('content-type', 'application/json').end(body);
    });
  });

  // uWebSockets.js passes a GET of /ws that asks for no upgrade on to the next route; without this
  // one, a browser or curl pointed at the relay's URL got 404, as if the path were wrong.
  app.get('/ws', (res) => {
    res.cork(() => {
      res.writeStatus('426 Upgrade Required').writeHeader('upgrade', 'websocket').writeHeader('content-type', 'application/json');
      res.end(JSON.stringify({ error: 'upgrade_required', message: '/ws is a WebSocket endpoint: connect to it with a WebSocket client' }));
    });
  });

  app.any('/*', (res) => {
    res.cork(() => {
      res.writeStatus('404 Not Found').writeHeader('content-type', 'application/json');
      res.end(JSON.stringify({ error: 'not_found' }));
    });
  });

  /** Past the refusals' budget too: closed with 1008. */
  function closeAsFlooding(ws: Socket, data: ConnectionData): void {
    if (data.closed) return;
    connectionLogger(data).info('a client kept sending past its rate limit; closing it');
    ws.end(CLOSE_CODES.rateLimited.code, 'rate limit exceeded');
  }

  /** Handles `text`, then whatever frames arrived while it was awaiting something. */
  function handleInOrder(socket: Socket, data: ConnectionData, session: Session, text: string, receivedAtMs: number): void {
    data.busy = true;
    data.inFlight = { text, receivedAtMs };
    const onAuthed = (exp: number | null): void => {
      // A refresh whose keys arrived after the close: a closed socket must not be scheduled again.
      if (data.closed) return;
      data.exp = exp;
      expiries.set(socket, exp);
    };
    const takeMore = (count: number): RateDecision => {
      const decision = data.rateLimiter.takeMore(performance.now(), count);
      if (decision === 'disconnect') closeAsFlooding(socket, data);
      return decision;
    };
    handleClientMessage({ hub, verifier, replay, onAuthed, takeMore, frameShape }, session, text)
      .catch((error: unknown) => connectionLogger(data).error({ err: error }, 'message handling failed'))
      .finally(() => {
        data.busy = false;
        data.inFlight = undefined;
        while (!data.busy && !data.closed) {
          if (data.expiryDeferred && expiresBefore(data, data.waiting[0])) {
            endExpired(socket, data);
            return;
          }
          const waiting = data.waiting.shift();
          if (waiting === undefined) return;
          data.waitingBytes -= waiting.bytes;
          if (typeof waiting.next === 'string') handleInOrder(socket, data, session, waiting.next, waiting.receivedAtMs);
          else waiting.next();
        }
      });
  }

  /** Sends a reply to a frame of `bytes` now, or after the replies to the frames still waiting to be handled. */
  function replyInOrder(ws: Socket, data: ConnectionData, bytes: number, reply: () => void): void {
    if (data.busy) wait(ws, data, bytes, reply);
    else reply();
  }

  /**
   * Holds a frame of `bytes` (or the reply to one) until the frame being handled is done. What a
   * connection may hold this way is bounded like its unsent data: a frame can wait for as long as
   * PostgreSQL takes to answer a read (without end, if it stops answering) or the JWKS endpoint a
   * fetch, and the rate limit alone would let a client pile up 6 MB a second meanwhile.
   */
  function wait(ws: Socket, data: ConnectionData, bytes: number, next: string | (() => void)): void {
    data.waitingBytes += bytes;
    if (data.waitingBytes > limits.maxBackpressureBytes) {
      connectionLogger(data).info({ waitingBytes: data.waitingBytes }, 'a client sent more than the relay could hold while answering it; closing it');
      ws.end(CLOSE_CODES.rateLimited.code, 'too many messages waiting for an answer');
      return;
    }
    data.waiting.push({ bytes, next, receivedAtMs: Date.now() });
  }

  function join(ws: Socket, channel: string): void {
    ws.subscribe(channel);
    ws.getUserData().channels.add(channel);
    const members = channelMembers.get(channel);
    if (members) members.add(ws);
    else channelMembers.set(channel, new Set([ws]));
  }

  function leave(ws: Socket, channel: string): void {
    ws.getUserData().channels.delete(channel);
    const members = channelMembers.get(channel);
    members?.delete(ws);
    if (members?.size === 0) channelMembers.delete(channel);
  }

  /**
   * Closes, with 4008, every connection whose unsent data passed maxBackpressureBytes. After a send,
   * the socket (or the channel published to) is marked, and all marks are checked once the current
   * batch of work is done: one getBufferedAmount() (a native read, well under a microsecond) per
   * marked subscriber per batch, not per event.
   *
   * A batch can be large (one read of the log carries up to a thousand events), so the marks are
   * also checked within it, before a quarter of the limit more is queued: no socket can gain more
   * than that between two checks. Without that, a paused client could pass uWS's backstop (twice
   * the limit) inside one batch, and uWS then drops the close frame as well: the client would see a
   * bare 1006, not 4008. uWS holds up to 32 small published messages per socket before writing
   * them, so a socket is closed with at most limit + a quarter + 32 frames unsent.
   *
   * Closing within a batch ends sessions while the hub delivers: it routes each event from a list
   * made before publishing, walks a copy of its catching-up subscriptions, and a closed socket's
   * methods do nothing, so a session that ends midway is only skipped.
   */
  function createBacklogCheck() {
    const sockets = new Set<Socket>();
    const channels = new Set<string>();
    let scheduled = false;
    const checkEveryBytes = Math.floor(limits.maxBackpressureBytes / 4);
    let queuedSinceCheck = 0;
    const check = (ws: Socket): void => {
      if (ws.getUserData().closed || ws.getBufferedAmount() <= limits.maxBackpressureBytes) return;
      connectionLogger(ws.getUserData()).info({ unsentBytes: ws.getBufferedAmount() }, 'a client fell too far behind; closing it');
      ws.end(CLOSE_CODES.slowConsumer.code, 'too far behind: reconnect and resume with since');
    };
    const run = (): void => {
      scheduled = false;
      queuedSinceCheck = 0;
      for (const channel of channels) for (const ws of channelMembers.get(channel) ?? []) check(ws);
      for (const ws of sockets) check(ws);
      channels.clear();
      sockets.clear();
    };
    const schedule = (): void => {
      if (scheduled) return;
      scheduled = true;
      queueMicrotask(run);
    };
    return {
      /** Before queueing a frame: checks the marks first if it would pass the budget since the last check. */
      beforeQueue(frame: string): void {
        const bytes = Buffer.byteLength(frame);
        if (queuedSinceCheck > 0 && queuedSinceCheck + bytes > checkEveryBytes) run();
        queuedSinceCheck += bytes;
      },
      afterSend(ws: Socket): void {
        sockets.add(ws);
        schedule();
      },
      afterPublish(channel: string): void {
        channels.add(channel);
        schedule();
      },
    };
  }

  /**
   * Ends connections whose token reached its `exp` without an `auth` refresh. The refresh may have
   * come before `exp` and wait behind a frame the relay is still answering (a `since` read waits
   * its turn, an `auth` the JWKS): then the connection ends only once the frames it received
   * before `exp` are handled and none refreshed the token, and the frames it received after `exp`
   * are not handled; at the latest EXPIRY_GRACE_SECONDS later, whatever it waits for.
   */
  function expireTokens(): void {
    for (const ws of expiries.takeDue(nowSeconds())) {
      const data = ws.getUserData();
      if (data.closed) continue;
      if (!data.expiryDeferred && data.busy && refreshSentInTime(data)) {
        data.expiryDeferred = true;
        expiries.set(ws, nowSeconds() + EXPIRY_GRACE_SECONDS);
        if (logger.isLevelEnabled('debug')) connectionLogger(data).debug('token expired while a refresh sent before it waits; deciding after it');
        continue;
      }
      endExpired(ws, data);
    }
  }

  /** Whether an `auth` received before the token's `exp` is being handled, or waits to be. */
  function refreshSentInTime(data: ConnectionData): boolean {
    const expMs = (data.exp ?? Number.POSITIVE_INFINITY) * 1000;
    const frames = data.inFlight ? [{ next: data.inFlight.text, receivedAtMs: data.inFlight.receivedAtMs }, ...data.waiting] : data.waiting;
    return frames.some((frame) => frame.receivedAtMs < expMs && typeof frame.next === 'string' && isAuthFrame(frame.next));
  }

  function isAuthFrame(text: string): boolean {
    // Read only if it may be one: every other frame is passed over at the cost of a search.
    if (!text.includes('auth')) return false;
    const parsed = parseClientMessage(text, frameShape);
    return parsed.ok && parsed.message.type === 'auth';
  }

  /** With its expiry deferred: whether the token is still expired, and `next` (a waiting frame, if any) came after it. */
  function expiresBefore(data: ConnectionData, next: { readonly receivedAtMs: number } | undefined): boolean {
    if (data.exp === null || data.exp > nowSeconds()) {
      // Refreshed meanwhile (an `auth` rescheduled its expiry).
      data.expiryDeferred = false;
      return false;
    }
    return next === undefined || next.receivedAtMs >= data.exp * 1000;
  }

  function endExpired(ws: Socket, data: ConnectionData): void {
    connectionLogger(data).info('token expired; closing the connection');
    ws.cork(() => {
      metrics.errors.inc({ code: 'token_expired' });
      ws.send(errorFrame({ code: 'token_expired', message: 'the token expired; reconnect with a fresh one' }), false);
      ws.end(CLOSE_CODES.tokenExpired.code, 'token expired');
    });
  }

  /**
   * The connection's logger, a child carrying its id, made on first use: a pino child costs about
   * 250 bytes and 2 µs (measured with pino 10), which 50,000 idle connections that never log need
   * not pay. Debug lines check the level first for the same reason.
   */
  function connectionLogger(data: ConnectionData): Logger {
    return (data.logger ??= logger.child({ connection: data.id }));
  }

  function socketOf(ws: Socket): SubscriberSocket {
    const data = ws.getUserData();
    const send = (frame: string): void => {
      if (data.closed) return;
      backlog.beforeQueue(frame);
      // The check may have closed this very socket.
      if (data.closed) return;
      ws.send(frame, false);
      backlog.afterSend(ws);
    };
    const writable = (): boolean => data.closed || ws.getBufferedAmount() < replayLowWaterBytes;
    // After `close`, uWS forbids touching the socket; the hub may still tidy up through it.
    return {
      send,
      // Closed, every send is a no-op, and uWS forbids touching the socket.
      gathered: (sends) => (data.closed ? sends() : void ws.cork(sends)),
      sendError(fields) {
        metrics.errors.inc({ code: fields.code });
        send(errorFrame(fields));
      },
      logger: () => connectionLogger(data),
      joinChannel: (channel) => void (data.closed || join(ws, channel)),
      leaveChannel: (channel) => {
        if (data.closed) return;
        ws.unsubscribe(channel);
        leave(ws, channel);
      },
      end: (code, reason) => void (data.closed || ws.end(code, reason)),
      writable,
      unsentBytes: () => (data.closed ? 0 : ws.getBufferedAmount()),
      whenWritable: () => (writable() ? Promise.resolve() : new Promise((resolve) => data.drainWaiters.push(resolve))),
    };
  }

  return {
    start() {
      return new Promise((resolve, reject) => {
        listenExclusively(app, options.host, options.port, (socket) => {
          if (!socket) {
            reject(new Error(`cannot listen on ${options.host}:${options.port} (is PORT ${options.port} in use, or HOST ${options.host} not an address of this machine?)`));
            return;
          }
          listenSocket = socket;
          expiryTimer = setInterval(expireTokens, EXPIRY_TICK_MS);
          expiryTimer.unref();
          resolve(uws.us_socket_local_port(socket));
        });
      });
    },
    endAll(code, reason) {
      const open = [...openSockets];
      for (const ws of open) ws.end(code, reason);
      return open.length;
    },
    stop() {
      // The listen socket first: from here on a new connection is refused, never half-served.
      if (listenSocket) uws.us_listen_socket_close(listenSocket);
      listenSocket = undefined;
      clearInterval(expiryTimer);
      const open = [...openSockets];
      // 1012 (service restart): the client reconnects, to another relay, and resumes from its cursor.
      for (const ws of open) ws.end(CLOSE_CODES.serviceRestart.code, 'relay shutting down');
      // Missing from the type definitions; closes every socket so the process can exit at once.
      (app as TemplatedApp & { close?: () => void }).close?.();
      return open.length;
    },
    publish(channel, frame) {
      // Counted before publishing: a socket that the publish pushes over its limit is closed by it.
      backlog.beforeQueue(frame);
      const subscribers = app.numSubscribers(channel);
      app.publish(channel, frame, false);
      backlog.afterPublish(channel);
      return subscribers;
    },
  };
}

function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

function refuseWith(res: HttpResponse, status: string, body: Record<string, string>): void {
  res.writeStatus(status).writeHeader('content-type', 'application/json');
  res.end(JSON.stringify(body));
}

/** uWebSockets.js's ListenOptions.LIBUS_LISTEN_EXCLUSIVE_PORT (its types declare the option only for a port without a host). */
const LISTEN_EXCLUSIVE_PORT = 1;

/**
 * Listens without SO_REUSEPORT, uWebSockets.js's default on Linux: with it, a second relay started
 * on a port another one holds listens beside it, silently, and the kernel splits the connections
 * between them. Now that second relay fails to start.
 */
function listenExclusively(app: TemplatedApp, host: string, port: number, onListen: (socket: us_listen_socket | false) => void): void {
  const listen = app.listen as unknown as (host: string, port: number, options: number, cb: (socket: us_listen_socket | false) => void) => TemplatedApp;
  listen.call(app, host, port, LISTEN_EXCLUSIVE_PORT, onListen);
}
