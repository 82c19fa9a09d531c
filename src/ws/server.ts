// The network edge: uWebSockets.js with /ws (token checked before the upgrade), /health and /metrics.

import type { HttpResponse, TemplatedApp, us_listen_socket, WebSocket } from 'uWebSockets.js';
import type { Logger } from 'pino';
import { refusalReason } from '../auth/token-error.ts';
import type { TokenVerifier, VerifiedToken } from '../auth/verify-token.ts';
import { extractToken } from '../auth/extract-token.ts';
import type { RelayMetrics } from '../metrics.ts';
import { CLOSE_CODES } from '../protocol/error-codes.ts';
import { errorFrame, welcomeFrame } from '../protocol/server-frames.ts';
import type { ReplayContext } from '../replay.ts';
import type { Identity, Session, SubscriberSocket, SubscriptionHub } from '../subscription-hub.ts';
import { handleClientMessage } from './handle-message.ts';
import { identityOf } from './identity.ts';
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
  readonly metrics: Pick<RelayMetrics, 'registry' | 'connectionsRejected' | 'errors'>;
  readonly maxFrameBytes: number;
  readonly maxBackpressureBytes: number;
  /** For `subscribe` with `since`. */
  readonly replay: ReplayContext;
}

export interface WsServer {
  /** Starts listening; resolves to the bound port (useful with port 0). */
  start(): Promise<number>;
  /** Stops accepting, then closes every connection with 1012; returns how many it closed. */
  stop(): number;
  /** Publishes a frame to every socket that joined `channel`; returns how many sockets that is. */
  publish(channel: string, frame: string): number;
}

interface ConnectionData {
  readonly id: number;
  readonly identity: Identity;
  readonly exp: number | null;
  session?: Session;
  closed: boolean;
  /**
   * Frames are handled one after another: while one awaits (`auth` may fetch keys, `since` reads
   * the log), later frames wait here. Otherwise a frame is handled at once, inside uWS's callback.
   */
  readonly waiting: string[];
  busy: boolean;
  /** Replays waiting for the socket's unsent data to drain. */
  readonly drainWaiters: (() => void)[];
  /** Made on first use (see connectionLogger). */
  logger?: Logger;
}

/** Creates the server; nothing is bound until start(). */
export function createWsServer(options: WsServerOptions): WsServer {
  const { uws, logger, verifier, hub, metrics } = options;
  const app: TemplatedApp = uws.App();
  let listenSocket: us_listen_socket | undefined;
  const openSockets = new Set<WebSocket<ConnectionData>>();
  let nextConnectionId = 1;
  const decoder = new TextDecoder('utf-8', { fatal: true });
  // A replay sends its next page once the client has read most of the previous ones.
  const replayLowWaterBytes = Math.floor(options.maxBackpressureBytes / 4);
  const { replay } = options;

  app.ws<ConnectionData>('/ws', {
    // uWS drops a connection whose frame passes maxPayloadLength without a close frame (the client
    // sees 1006). To answer 1009, frames are accepted up to a hard cap and measured here; only a
    // frame over the cap (as large as one connection's send budget) is dropped the hard way.
    maxPayloadLength: Math.max(options.maxFrameBytes, options.maxBackpressureBytes),
    maxBackpressure: options.maxBackpressureBytes,
    // Without this, uWS silently skips messages to a socket over its backpressure limit: a gap
    // nobody would see. Closing lets the client reconnect and resume from its last cursor.
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
      const refuseFor = (reason: string): void => {
        metrics.connectionsRejected.inc();
        logger.info({ reason, url }, 'upgrade refused');
        reject(res, reason);
      };
      if (!token) {
        refuseFor('missing token');
        return;
      }
      const upgradeWith = (verified: VerifiedToken): void => {
        const data: ConnectionData = {
          id: nextConnectionId++,
          identity: identityOf(verified),
          exp: verified.exp,
          closed: false,
          waiting: [],
          busy: false,
          drainWaiters: [],
        };
        res.upgrade(data, key, protocol, extensions, context);
      };
      const refuse = (error: unknown): void => refuseFor(refusalReason(error));
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
      verifier.verify(token).then(
        // Not corked, for the reason above: uWS prints a warning for each such upgrade.
        (fetched) => aborted || upgradeWith(fetched),
        (error: unknown) => aborted || res.cork(() => refuse(error)),
      );
    },

    open(ws) {
      const data = ws.getUserData();
      openSockets.add(ws);
      data.session = hub.open(socketOf(ws), data.identity);
      // Guarded: a connection's child logger is made only when a line is written (see connectionLogger).
      if (logger.isLevelEnabled('debug')) connectionLogger(data).debug({ role: data.identity.role, sub: data.identity.sub }, 'connection opened');
      ws.send(welcomeFrame({ role: data.identity.role, sub: data.identity.sub, exp: data.exp }), false);
    },

    message(ws, message, isBinary) {
      const data = ws.getUserData();
      const session = data.session;
      if (!session) return;
      if (message.byteLength > options.maxFrameBytes) {
        connectionLogger(data).info({ bytes: message.byteLength, limit: options.maxFrameBytes }, 'frame over the limit; closing with 1009');
        ws.end(CLOSE_CODES.frameTooLarge.code, `frame over ${options.maxFrameBytes} bytes`);
        return;
      }
      let text: string;
      try {
        if (isBinary) throw new Error('binary');
        text = decoder.decode(message);
      } catch {
        // A binary frame or invalid UTF-8 is a bad request, not a reason to drop the connection.
        session.socket.logger().debug({ binary: isBinary, bytes: message.byteLength }, 'bad request: not a UTF-8 text frame');
        session.socket.sendError({ code: 'bad_request', message: 'expected a UTF-8 text frame holding a JSON object' });
        return;
      }
      if (data.busy) data.waiting.push(text);
      else handleInOrder(data, session, text);
    },

    drain(ws) {
      const data = ws.getUserData();
      if (ws.getBufferedAmount() < replayLowWaterBytes) for (const resolve of data.drainWaiters.splice(0)) resolve();
    },

    close(ws, code) {
      const data = ws.getUserData();
      data.closed = true;
      openSockets.delete(ws);
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
  function handleInOrder(data: ConnectionData, session: Session, text: string): void {
    data.busy = true;
    handleClientMessage({ hub, verifier, replay }, session, text)
      .catch((error: unknown) => connectionLogger(data).error({ err: error }, 'message handling failed'))
      .finally(() => {
        data.busy = false;
        const next = data.waiting.shift();
        if (next !== undefined && !data.closed) handleInOrder(data, session, next);
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

  function socketOf(ws: WebSocket<ConnectionData>): SubscriberSocket {
    const data = ws.getUserData();
    const send = (frame: string): void => void (data.closed || ws.send(frame, false));
    // After `close`, uWS forbids touching the socket; the hub may still tidy up through it.
    return {
      send,
      sendError(fields) {
        metrics.errors.inc({ code: fields.code });
        send(errorFrame(fields));
      },
      logger: () => connectionLogger(data),
      joinChannel: (channel) => void (data.closed || ws.subscribe(channel)),
      leaveChannel: (channel) => void (data.closed || ws.unsubscribe(channel)),
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
          resolve(uws.us_socket_local_port(socket));
        });
      });
    },
    stop() {
      // The listen socket first: from here on a new connection is refused, never half-served.
      if (listenSocket) uws.us_listen_socket_close(listenSocket);
      listenSocket = undefined;
      const open = [...openSockets];
      // 1012 (service restart): the client reconnects, to another relay, and resumes from its cursor.
      for (const ws of open) ws.end(CLOSE_CODES.serviceRestart.code, 'relay shutting down');
      // Missing from the type definitions; closes every socket so the process can exit at once.
      (app as TemplatedApp & { close?: () => void }).close?.();
      return open.length;
    },
    publish(channel, frame) {
      // Counted before publishing: a socket that the publish pushes over its limit is closed by it.
      const subscribers = app.numSubscribers(channel);
      app.publish(channel, frame, false);
      return subscribers;
    },
  };
}

function reject(res: HttpResponse, reason: string): void {
  res.writeStatus('401 Unauthorized').writeHeader('content-type', 'application/json');
  res.end(JSON.stringify({ error: 'unauthorized', reason }));
}
