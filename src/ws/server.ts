// The network edge: uWebSockets.js with /ws (origin, capacity and token checked before the
// upgrade) and /health. Per connection: a message budget, a token expiry, a send budget.

import type { HttpResponse, TemplatedApp, us_listen_socket, WebSocket } from 'uWebSockets.js';
import type { Logger } from 'pino';
import { refusalReason } from '../auth/token-error.ts';
import { normalizeOrigin, type Limits } from '../config-limits.ts';
import type { TokenVerifier, VerifiedToken } from '../auth/verify-token.ts';
import { extractToken } from '../auth/extract-token.ts';
import { CLOSE_CODES } from '../protocol/error-codes.ts';
import { errorFrame, welcomeFrame } from '../protocol/server-frames.ts';
import type { ReplayContext } from '../replay.ts';
import type { Identity, Session, SubscriberSocket, SubscriptionHub } from '../subscription-hub.ts';
import { handleClientMessage } from './handle-message.ts';
import { createExpirySchedule } from './expiry-schedule.ts';
import { identityOf } from './identity.ts';
import { createMessageRateLimiter, type MessageRateLimiter } from './rate-limit.ts';
import type { loadNativeUws } from './uws.ts';


/** How often the members of channels published to are checked for a backlog past the limit. */
const CHANNEL_BACKLOG_CHECK_MS = 50;
export interface WsServerOptions {
  readonly uws: ReturnType<typeof loadNativeUws>;
  readonly host: string;
  readonly port: number;
  readonly logger: Logger;
  readonly verifier: TokenVerifier;
  readonly hub: SubscriptionHub;
  /** Whether the relay is listening to PostgreSQL (for /health). */
  readonly isListening: () => boolean;
  readonly limits: Limits;
  /** For `subscribe` with `since`. */
  readonly replay: ReplayContext;
}

export interface WsServer {
  /** Starts listening; resolves to the bound port (useful with port 0). */
  start(): Promise<number>;
  /** Stops accepting and closes every connection. */
  stop(): void;
  /** Publishes a frame to every socket that joined `channel`. */
  publish(channel: string, frame: string): void;
}

interface ConnectionData {
  readonly id: number;
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
   * the log), later frames wait here. Otherwise a frame is handled at once, inside uWS's callback.
   */
  readonly waiting: string[];
  busy: boolean;
  /** Replays waiting for the socket's unsent data to drain. */
  readonly drainWaiters: (() => void)[];
}

type Socket = WebSocket<ConnectionData>;

/** Expiries are checked this often: a connection ends within this long after its token's `exp`. */
const EXPIRY_TICK_MS = 1000;

/** Creates the server; nothing is bound until start(). */
export function createWsServer(options: WsServerOptions): WsServer {
  const { uws, logger, verifier, hub, limits } = options;
  const app: TemplatedApp = uws.App();
  let listenSocket: us_listen_socket | undefined;
  const openSockets = new Set<Socket>();
  /** Upgrades waiting for a JWKS fetch: they count against maxConnections too. */
  let pendingUpgrades = 0;
  let nextConnectionId = 1;
  const decoder = new TextDecoder('utf-8', { fatal: true });
  // A replay sends its next page once the client has read most of the previous ones.
  const replayLowWaterBytes = Math.floor(limits.maxBackpressureBytes / 4);
  const { replay } = options;
  const expiries = createExpirySchedule<Socket>(nowSeconds());
  let expiryTimer: NodeJS.Timeout | undefined;
  const channelMembers = new Map<string, Set<Socket>>();
  const backlog = createBacklogCheck();

  app.ws<ConnectionData>('/ws', {
    // uWS drops a connection whose frame passes maxPayloadLength without a close frame (the client
    // sees 1006). To answer 1009, frames are accepted up to a hard cap and measured here; only a
    // frame over the cap (as large as one connection's send budget) is dropped the hard way.
    maxPayloadLength: Math.max(limits.maxFrameBytes, limits.maxBackpressureBytes),
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
      const token = extractToken({ query: req.getQuery() ?? '', authorization: req.getHeader('authorization') });
      const key = req.getHeader('sec-websocket-key');
      const protocol = req.getHeader('sec-websocket-protocol');
      const extensions = req.getHeader('sec-websocket-extensions');
      const origin = req.getHeader('origin');
      // Browsers always send Origin on a WebSocket upgrade and let any page open one: without this
      // check, a page on any site could use a token it got hold of. Other clients send none.
      if (limits.allowedOrigins && origin !== '' && !limits.allowedOrigins.includes(normalizeOrigin(origin) ?? '')) {
        logger.info({ origin: origin.slice(0, 200) }, 'upgrade refused: origin not allowed');
        refuseWith(res, '403 Forbidden', { error: 'forbidden', reason: 'origin not allowed' });
        return;
      }
      if (openSockets.size + pendingUpgrades >= limits.maxConnections) {
        logger.warn({ maxConnections: limits.maxConnections }, 'upgrade refused: connection limit reached');
        refuseWith(res, '503 Service Unavailable', { error: 'unavailable', reason: 'too many connections' });
        return;
      }
      if (!token) {
        reject(res, 'missing token');
        return;
      }
      const upgradeWith = (verified: VerifiedToken): void => {
        const data: ConnectionData = {
          id: nextConnectionId++,
          identity: identityOf(verified),
          exp: verified.exp,
          closed: false,
          rateLimiter: createMessageRateLimiter(limits.maxMessagesPerSecond, Date.now()),
          channels: new Set(),
          waiting: [],
          busy: false,
          drainWaiters: [],
        };
        res.upgrade(data, key, protocol, extensions, context);
      };
      const refuse = (error: unknown): void => {
        const reason = refusalReason(error);
        logger.info({ reason }, 'upgrade refused');
        reject(res, reason);
      };
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
          // Not corked, for the reason above: uWS prints a warning for each such upgrade.
          (fetched) => aborted || upgradeWith(fetched),
          (error: unknown) => aborted || res.cork(() => refuse(error)),
        )
        .finally(() => pendingUpgrades--);
    },

    open(ws) {
      const data = ws.getUserData();
      openSockets.add(ws);
      expiries.set(ws, data.exp);
      data.session = hub.open(socketOf(ws), data.identity);
      logger.debug({ connection: data.id, role: data.identity.role }, 'connection opened');
      ws.send(welcomeFrame({ role: data.identity.role, sub: data.identity.sub, exp: data.exp }), false);
    },

    message(ws, message, isBinary) {
      const data = ws.getUserData();
      const session = data.session;
      if (!session) return;
      if (message.byteLength > limits.maxFrameBytes) {
        ws.end(CLOSE_CODES.frameTooLarge.code, `frame over ${limits.maxFrameBytes} bytes`);
        return;
      }
      // Counted before any parsing: a flood of garbage costs as much as a flood of requests.
      const decision = data.rateLimiter.take(Date.now());
      if (decision === 'disconnect') {
        logger.info({ connection: data.id }, 'a client kept sending past its rate limit; closing it');
        ws.end(CLOSE_CODES.rateLimited.code, 'rate limit exceeded');
        return;
      }
      if (decision === 'refuse') {
        const limit = `${limits.maxMessagesPerSecond} messages per second`;
        ws.send(errorFrame({ code: 'rate_limited', message: `over ${limit}; this message was dropped` }), false);
        return;
      }
      let text: string;
      try {
        if (isBinary) throw new Error('binary');
        text = decoder.decode(message);
      } catch {
        // A binary frame or invalid UTF-8 is a bad request, not a reason to drop the connection.
        ws.send(errorFrame({ code: 'bad_request', message: 'expected a UTF-8 text frame holding a JSON object' }));
        return;
      }
      if (data.busy) data.waiting.push(text);
      else handleInOrder(ws, data, session, text);
    },

    drain(ws) {
      const data = ws.getUserData();
      if (ws.getBufferedAmount() < replayLowWaterBytes) for (const resolve of data.drainWaiters.splice(0)) resolve();
    },

    close(ws, code) {
      const data = ws.getUserData();
      data.closed = true;
      openSockets.delete(ws);
      expiries.delete(ws);
      for (const channel of data.channels) leave(ws, channel);
      if (data.session) hub.close(data.session);
      for (const resolve of data.drainWaiters.splice(0)) resolve();
      logger.debug({ connection: data.id, code }, 'connection closed');
    },
  });

  app.get('/health', (res) => {
    const listening = options.isListening();
    const body = JSON.stringify({ status: listening ? 'ok' : 'unavailable', listening, ...hub.stats() });
    res.cork(() => {
      res.writeStatus(listening ? '200 OK' : '503 Service Unavailable');
      res.writeHeader('content-type', 'application/json').end(body);
    });
  });

  app.any('/*', (res) => {
    res.cork(() => {
      res.writeStatus('404 Not Found').writeHeader('content-type', 'application/json');
      res.end(JSON.stringify({ error: 'not_found' }));
    });
  });

  /** Handles `text`, then whatever frames arrived while it was awaiting something. */
  function handleInOrder(socket: Socket, data: ConnectionData, session: Session, text: string): void {
    data.busy = true;
    const onAuthed = (exp: number | null): void => {
      data.exp = exp;
      expiries.set(socket, exp);
    };
    handleClientMessage({ hub, verifier, logger, connectionId: data.id, replay, onAuthed }, session, text)
      .catch((error: unknown) => logger.error({ err: error, connection: data.id }, 'message handling failed'))
      .finally(() => {
        data.busy = false;
        const next = data.waiting.shift();
        if (next !== undefined && !data.closed) handleInOrder(socket, data, session, next);
      });
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
   * batch of work is done (closing inside a send would end a session while the hub is still walking
   * it); channels' members at most every CHANNEL_BACKLOG_CHECK_MS, so the cost is one
   * getBufferedAmount() per subscriber per interval, not per event.
   */
  function createBacklogCheck() {
    const sockets = new Set<Socket>();
    const channels = new Set<string>();
    let socketsScheduled = false;
    let channelsScheduled = false;
    const check = (ws: Socket): void => {
      if (ws.getUserData().closed || ws.getBufferedAmount() <= limits.maxBackpressureBytes) return;
      logger.info({ connection: ws.getUserData().id, unsentBytes: ws.getBufferedAmount() }, 'a client fell too far behind; closing it');
      ws.end(CLOSE_CODES.slowConsumer.code, 'too far behind: reconnect and resume with since');
    };
    const checkSockets = (): void => {
      socketsScheduled = false;
      for (const ws of sockets) check(ws);
      sockets.clear();
    };
    const checkChannels = (): void => {
      channelsScheduled = false;
      for (const channel of channels) for (const ws of channelMembers.get(channel) ?? []) check(ws);
      channels.clear();
    };
    return {
      afterSend(ws: Socket): void {
        sockets.add(ws);
        if (socketsScheduled) return;
        socketsScheduled = true;
        queueMicrotask(checkSockets);
      },
      // A channel's members are walked at most every CHANNEL_BACKLOG_CHECK_MS: at a thousand
      // events a second to a channel of thousands, a walk per event would cost more than the sends.
      afterPublish(channel: string): void {
        channels.add(channel);
        if (channelsScheduled) return;
        channelsScheduled = true;
        setTimeout(checkChannels, CHANNEL_BACKLOG_CHECK_MS);
      },
    };
  }

  /** Ends connections whose token reached its `exp` without an `auth` refresh. */
  function expireTokens(): void {
    for (const ws of expiries.takeDue(nowSeconds())) {
      const data = ws.getUserData();
      if (data.closed) continue;
      logger.info({ connection: data.id }, 'token expired; closing the connection');
      ws.cork(() => {
        ws.send(errorFrame({ code: 'token_expired', message: 'the token expired; reconnect with a fresh one' }), false);
        ws.end(CLOSE_CODES.tokenExpired.code, 'token expired');
      });
    }
  }

  function socketOf(ws: Socket): SubscriberSocket {
    const data = ws.getUserData();
    // After `close`, uWS forbids touching the socket; the hub may still tidy up through it.
    return {
      send: (frame) => {
        if (data.closed) return;
        ws.send(frame, false);
        backlog.afterSend(ws);
      },
      joinChannel: (channel) => void (data.closed || join(ws, channel)),
      leaveChannel: (channel) => {
        if (data.closed) return;
        ws.unsubscribe(channel);
        leave(ws, channel);
      },
      end: (code, reason) => void (data.closed || ws.end(code, reason)),
      whenWritable: () =>
        data.closed || ws.getBufferedAmount() < replayLowWaterBytes
          ? Promise.resolve()
          : new Promise((resolve) => data.drainWaiters.push(resolve)),
    };
  }

  return {
    start() {
      return new Promise((resolve, reject) => {
        app.listen(options.host, options.port, (socket) => {
          if (!socket) {
            reject(new Error(`cannot listen on ${options.host}:${options.port}`));
            return;
          }
          listenSocket = socket;
          expiryTimer = setInterval(expireTokens, EXPIRY_TICK_MS);
          expiryTimer.unref();
          resolve(uws.us_socket_local_port(socket));
        });
      });
    },
    stop() {
      if (listenSocket) uws.us_listen_socket_close(listenSocket);
      listenSocket = undefined;
      clearInterval(expiryTimer);
      // 1012 (service restart): the client reconnects, to another relay, and resumes from its cursor.
      for (const ws of [...openSockets]) ws.end(CLOSE_CODES.serviceRestart.code, 'relay shutting down');
      // Missing from the type definitions; closes every socket so the process can exit at once.
      (app as TemplatedApp & { close?: () => void }).close?.();
    },
    publish(channel, frame) {
      app.publish(channel, frame, false);
      backlog.afterPublish(channel);
    },
  };
}

function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

function reject(res: HttpResponse, reason: string): void {
  refuseWith(res, '401 Unauthorized', { error: 'unauthorized', reason });
}

function refuseWith(res: HttpResponse, status: string, body: Record<string, string>): void {
  res.writeStatus(status).writeHeader('content-type', 'application/json');
  res.end(JSON.stringify(body));
}
