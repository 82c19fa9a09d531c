// The bench's socket.io peer: the gateway our users run today (a socket.io 4 server fed by
// pg-listen, one room per tenant), in the form a careful team would ship, so the bench compares
// pg-relay with that design at its best rather than with a strawman.
// Process contract (env, ready line, SIGTERM): bench/peers/README.md.

import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { errors, jwtVerify } from 'jose';
import pgListen from 'pg-listen';
import { Server, type DefaultEventsMap } from 'socket.io';

// pg-listen is CommonJS with `exports.default`: the ESM default import is the module object.
const createSubscriber = pgListen.default;

const CHANNEL = 'bench_orders';
const ADMIN_ROOM = 'admins';
const maxRetryIntervalMs = 2_000;
// A client that never answers the close handshake must not hold the process past the harness's patience.
const shutdownDeadlineMs = 5_000;

/** A row of bench_orders as row_to_json writes it (bigint columns as JSON numbers). */
interface OrderRow {
  readonly id: number;
  readonly hospital_id: string;
  readonly status: string;
  readonly sent_at: number;
  readonly note: string;
}

interface ServerToClientEvents {
  order: (row: OrderRow) => void;
}

interface SocketData {
  room: string;
}

/** The one error a subscriber sees when it is refused; its message is the client's whole reason. */
class Refusal extends Error {
  constructor(
    readonly code: 'unauthorized' | 'token_expired' | 'forbidden',
    readonly detail: string,
  ) {
    super(code);
  }
}

/** Verifies a handshake token and returns the one room its claims grant. */
async function roomForToken(token: unknown, secret: Uint8Array): Promise<string> {
  if (typeof token !== 'string' || token === '') throw new Refusal('unauthorized', 'no token in handshake auth');
  let claims;
  try {
    // jose checks the signature, `exp` and `nbf`; pinning the algorithm refuses `none` and RS/HS confusion.
    ({ payload: claims } = await jwtVerify(token, secret, { algorithms: ['HS256'] }));
  } catch (error) {
    if (error instanceof errors.JWTExpired) throw new Refusal('token_expired', error.message);
    throw new Refusal('unauthorized', error instanceof Error ? error.message : String(error));
  }
  // The room comes from the claims alone: nothing the client asks for widens what it receives.
  if (claims.role === 'admin') return ADMIN_ROOM;
  if (claims.role === 'hospital' && typeof claims.hospital_id === 'string' && claims.hospital_id !== '') {
    return `hospital:${claims.hospital_id}`;
  }
  throw new Refusal('forbidden', `role ${JSON.stringify(claims.role)} is not served`);
}

/** Whether a parsed notification payload can be routed (it names its hospital). */
function isOrderRow(payload: unknown): payload is OrderRow {
  return typeof payload === 'object' && payload !== null && typeof (payload as { hospital_id?: unknown }).hospital_id === 'string';
}

/** Prints one line and exits: bad configuration is reported before any port or connection opens. */
function refuseToStart(reason: string): never {
  console.error(`socket.io gateway: ${reason}`);
  process.exit(1);
}

/** Reads the environment the process contract names. */
function readConfig(): { databaseUrl: string; secret: Uint8Array; host: string; port: number } {
  const { DATABASE_URL: databaseUrl, JWT_SECRET: jwtSecret, HOST: host = '127.0.0.1', PORT: portText = '0' } = process.env;
  const port = Number(portText);
  if (!databaseUrl) refuseToStart('DATABASE_URL is not set');
  if (!jwtSecret) refuseToStart('JWT_SECRET is not set');
  if (!Number.isInteger(port) || port < 0 || port > 65_535) refuseToStart(`PORT is not a port number: ${portText}`);
  return { databaseUrl, secret: new TextEncoder().encode(jwtSecret), host, port };
}

async function main(): Promise<void> {
  const config = readConfig();

  // Its own connection, never a pooled client. retryTimeout 0: never give up reconnecting (the
  // default stops for good after 3 s of outage); the interval backs off to a cap.
  const subscriber = createSubscriber(
    { connectionString: config.databaseUrl },
    { retryTimeout: 0, retryInterval: (attempt) => Math.min(100 * 2 ** attempt, maxRetryIntervalMs) },
  );
  // Without an 'error' listener pg-listen's errors (an unparsable payload, a failed reconnect) crash the process.
  subscriber.events.on('error', (error) => console.error('socket.io gateway: listener error:', error.message));
  subscriber.events.on('reconnect', (attempt) => console.error(`socket.io gateway: reconnecting to PostgreSQL (attempt ${attempt})`));

  // No request handler of ours: socket.io answers its own path; anything else is a 404.
  const httpServer = createServer((_request, response) => response.writeHead(404).end());
  const io = new Server<DefaultEventsMap, ServerToClientEvents, DefaultEventsMap, SocketData>(httpServer, {
    transports: ['websocket'], // no long-polling: every client upgrades at once, as the bench's do
    perMessageDeflate: false, // also lets socket.io encode a broadcast frame once for every recipient
    httpCompression: false,
    serveClient: false,
  });

  io.use((socket, next) => {
    roomForToken(socket.handshake.auth.token, config.secret).then(
      (room) => {
        socket.data.room = room;
        next();
      },
      (error: unknown) => {
        const refusal = error instanceof Refusal ? error : new Refusal('unauthorized', String(error));
        // The detail goes to the log, never the token; the client gets the code in connect_error.
        console.error(`socket.io gateway: refused ${socket.id}: ${refusal.code}: ${refusal.detail}`);
        next(refusal);
      },
    );
  });
  // socket.io acknowledges CONNECT and then emits 'connection' in the same tick, so the socket is in
  // its room before any notification (a later I/O callback) can be broadcast.
  io.on('connection', (socket) => void socket.join(socket.data.room));

  subscriber.notifications.on(CHANNEL, (payload: unknown) => {
    if (!isOrderRow(payload)) {
      console.error(`socket.io gateway: a ${CHANNEL} notification without hospital_id was dropped`);
      return;
    }
    // One emit to the union of the two rooms: socket.io sends it once to a socket in both.
    io.to(`hospital:${payload.hospital_id}`).to(ADMIN_ROOM).emit('order', payload);
  });
  // pg-listen re-LISTENs after a reconnect, but what was notified meanwhile is gone for good:
  // this design has nothing to catch up from, and the bench counts those rows as lost.
  subscriber.events.on('connected', () => console.error(`socket.io gateway: listening on ${CHANNEL}`));

  // LISTEN is in place before the port opens, so no row committed after the ready line is missed.
  await subscriber.connect();
  await subscriber.listenTo(CHANNEL);
  await new Promise<void>((resolve, reject) => {
    httpServer.once('error', reject);
    httpServer.listen(config.port, config.host, resolve);
  });
  const { port } = httpServer.address() as AddressInfo;
  process.stdout.write(`${JSON.stringify({ ready: true, port })}\n`);

  let stopping = false;
  const stop = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    // io.close() closes every socket, then the HTTP server; it resolves once the last connection ends.
    const deadline = new Promise<'late'>((resolve) => setTimeout(resolve, shutdownDeadlineMs, 'late').unref());
    if ((await Promise.race([io.close(), deadline])) === 'late') {
      console.error(`socket.io gateway: sockets still open after ${shutdownDeadlineMs} ms; exiting anyway`);
    }
    await subscriber.close();
    process.exit(0);
  };
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      stop().catch((error: unknown) => {
        console.error('socket.io gateway: shutdown failed:', error);
        process.exit(1);
      });
    });
  }
}

main().catch((error: unknown) => {
  console.error('socket.io gateway: could not start:', error);
  process.exit(1);
});
