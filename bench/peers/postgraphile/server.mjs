// The bench's PostGraphile v5 peer: a PostGraphile server whose only feature is one GraphQL
// subscription over LISTEN/NOTIFY, built the way PostGraphile's docs show ("GraphQL Subscriptions":
// extendSchema + the grafast listen() step on the pgSubscriber the pg adaptor puts in the context;
// a trigger announces each row's id on a topic; the field fetches the row by id through
// PostGraphile's own plan), with the JWT checked in `preset.grafast.context` as the docs advise
// ("handle JWTs yourself in the preset.grafast.context function").
//
// Plain JavaScript ESM on purpose: the repo's tsc checks bench/**/*.ts against the main package,
// which does not depend on PostGraphile; this directory installs its own dependencies
// (`npm ci --prefix bench/peers/postgraphile`).
//
// Process contract (env, ready line, SIGTERM): bench/peers/README.md. Start with
//   node --import ./bench/peers/postgraphile/polyfill.mjs bench/peers/postgraphile/server.mjs
// (PostGraphile 5.1.5 wants Node >= 22; on Node 20 it needs Promise.withResolvers, see polyfill.mjs).
//
// Client protocol (graphql-ws, bench/peers/postgraphile/dialect.ts): WebSocket upgrade on
// /graphql WITH `Sec-WebSocket-Protocol: graphql-transport-ws` (graphql-ws closes the socket with
// 4406 "Subprotocol not acceptable" without it), then
//   {"type":"connection_init","payload":{"token":"<JWT>"}}
// and, once {"type":"connection_ack"} has arrived (a subscribe read before the ack closes the socket
// with 4401 "Unauthorized"),
//   {"id":"1","type":"subscribe","payload":{"query":"subscription { benchOrders { order { rowId sentAt } } }"}}
// Events: {"id":"1","type":"next","payload":{"data":{"benchOrders":{"order":{"rowId":"42","sentAt":"…"}}}}}
// (BigInt columns as strings). The token is checked when the subscribe is read (every operation
// runs preset.grafast.context): a refused one gets
//   {"id":"1","type":"error","payload":[{"message":"unauthorized: invalid token","extensions":{…}}]}

import { createServer } from 'node:http';
import { errors as joseErrors, jwtVerify } from 'jose';
import { postgraphile } from 'postgraphile';
import { makePgService } from 'postgraphile/adaptors/pg';
import { context, isSafeError, listen, SafeError } from 'postgraphile/grafast';
import { jsonParse } from 'postgraphile/@dataplan/json';
import { grafserv } from 'postgraphile/grafserv/node';
import { PostGraphileAmberPreset } from 'postgraphile/presets/amber';
import { extendSchema, gql } from 'postgraphile/utils';

// Topics of setup.sql's trigger (channel names: at most 63 bytes).
const TOPIC_ALL = 'graphql:bench_orders:all';
const TOPIC_HOSPITAL_PREFIX = 'graphql:bench_orders:hospital:';
const MAX_CHANNEL_BYTES = 63;
// A client that never answers the close handshake must not hold the process past the harness's patience.
const shutdownDeadlineMs = 5_000;

/** Prints one line and exits: bad configuration is reported before any port or connection opens. */
function refuseToStart(reason) {
  console.error(`postgraphile peer: ${reason}`);
  process.exit(1);
}

/** Reads the environment the process contract names. */
function readConfig() {
  const { DATABASE_URL: databaseUrl, JWT_SECRET: jwtSecret, HOST: host = '127.0.0.1', PORT: portText = '0' } = process.env;
  const port = Number(portText);
  if (!databaseUrl) refuseToStart('DATABASE_URL is not set');
  if (!jwtSecret) refuseToStart('JWT_SECRET is not set');
  if (!Number.isInteger(port) || port < 0 || port > 65_535) refuseToStart(`PORT is not a port number: ${portText}`);
  return { databaseUrl, secret: new TextEncoder().encode(jwtSecret), host, port };
}

/**
 * Why a request is refused. A SafeError reaches the client as it is (grafserv masks any other
 * error as "An error occurred (logged with hash …)"); its message is all the client learns.
 */
function refusal(code, detail) {
  return new SafeError(detail ? `${code}: ${detail}` : code, { code });
}

/** The bearer token of a request: the graphql-ws connection_init payload, or an HTTP Authorization header. */
function tokenOf(requestContext) {
  const ws = requestContext.ws;
  if (ws) {
    const params = ws.connectionParams;
    if (params && typeof params === 'object' && typeof params.token === 'string') return params.token;
    // `{"Authorization":"Bearer …"}` in the payload, the other usual graphql-ws convention.
    return bearer(ws.normalizedConnectionParams?.authorization);
  }
  return bearer(requestContext.node?.req?.headers?.authorization);
}

function bearer(header) {
  if (typeof header !== 'string') return undefined;
  const match = /^Bearer\s+(\S+)$/i.exec(header);
  return match ? match[1] : undefined;
}

/** Verifies a token and returns the one topic its claims grant: nothing the client asks widens it. */
async function topicForToken(token, secret) {
  if (!token) throw refusal('unauthorized', 'no token (send {"token":"…"} in connection_init)');
  let claims;
  try {
    // jose checks the signature, `exp` and `nbf`; pinning the algorithm refuses `none` and RS/HS confusion.
    ({ payload: claims } = await jwtVerify(token, secret, { algorithms: ['HS256'] }));
  } catch (error) {
    if (error instanceof joseErrors.JWTExpired) throw refusal('token_expired');
    throw refusal('unauthorized', 'invalid token');
  }
  if (claims.role === 'admin') return TOPIC_ALL;
  if (claims.role === 'hospital' && typeof claims.hospital_id === 'string' && claims.hospital_id !== '') {
    const topic = TOPIC_HOSPITAL_PREFIX + claims.hospital_id;
    if (Buffer.byteLength(topic) > MAX_CHANNEL_BYTES) throw refusal('forbidden', 'hospital_id too long for a channel name');
    return topic;
  }
  throw refusal('forbidden', `role ${JSON.stringify(claims.role)} is not served`);
}

/**
 * The subscription, as in PostGraphile's docs: subscribePlan() listens on the pgSubscriber for the
 * topic the verified claims grant (read from the GraphQL context, not from arguments: the field has
 * none), plan() passes each parsed notification on, and the payload type fetches the row by id
 * with the table's own resource (one `select … where id = $1` per event and subscriber).
 */
const BenchOrdersSubscriptionPlugin = extendSchema((build) => {
  const benchOrders = build.input.pgRegistry.pgResources.bench_orders;
  if (!benchOrders) throw new Error('table public.bench_orders not found: apply bench/sql/bench-schema.sql first');
  return {
    typeDefs: gql`
      extend type Subscription {
        """
        Every row of bench_orders the caller's token grants (its hospital's rows, or every row for
        an admin), as it is inserted or updated.
        """
        benchOrders: BenchOrderSubscriptionPayload
      }
      type BenchOrderSubscriptionPayload {
        "insert or update"
        event: String
        "The row, fetched by id when the event arrives (null if it is gone by then)."
        order: BenchOrder
      }
    `,
    objects: {
      Subscription: {
        plans: {
          benchOrders: {
            subscribePlan() {
              const $topic = context().get('benchTopic');
              const $pgSubscriber = context().get('pgSubscriber');
              return listen($pgSubscriber, $topic, jsonParse);
            },
            plan($event) {
              return $event;
            },
          },
        },
      },
      BenchOrderSubscriptionPayload: {
        plans: {
          event($event) {
            return $event.get('event');
          },
          order($event) {
            return benchOrders.get({ id: $event.get('id') });
          },
        },
      },
    },
  };
});

async function main() {
  const config = readConfig();

  /** @type {GraphileConfig.Preset} */
  const preset = {
    extends: [PostGraphileAmberPreset],
    plugins: [BenchOrdersSubscriptionPlugin],
    pgServices: [makePgService({ connectionString: config.databaseUrl, schemas: ['public'], pubsub: true })],
    schema: {
      // Only the subscription is served: no list, connection, single-row or node lookup of
      // bench_orders and no mutations, so a hospital token cannot read other hospitals' rows
      // through a query. The BenchOrder type stays (the subscription returns it).
      defaultBehavior: '-list -connection -single -insert -update -delete -node',
    },
    grafast: {
      async context(requestContext) {
        // Runs for every operation (each graphql-ws `subscribe`, each HTTP request): an operation
        // without a valid token fails here, before any plan runs.
        try {
          return { benchTopic: await topicForToken(tokenOf(requestContext), config.secret) };
        } catch (error) {
          if (isSafeError(error)) {
            console.error(`postgraphile peer: refused an operation: ${error.message}`);
            throw error;
          }
          console.error('postgraphile peer: token check failed:', error);
          throw refusal('unauthorized');
        }
      },
    },
    grafserv: {
      host: config.host,
      port: config.port,
      graphqlPath: '/graphql',
      websockets: true,
      graphiql: false,
    },
  };

  const pgl = postgraphile(preset);
  // Build the schema (introspection) before the port opens, so the first client does not wait for it.
  await pgl.getSchemaResult();
  const serv = pgl.createServ(grafserv);
  const httpServer = createServer();
  httpServer.on('error', (error) => refuseToStart(`HTTP server error: ${error.message}`));
  // Every TCP connection, upgraded ones included (Node stops tracking those for closeAllConnections).
  const sockets = new Set();
  httpServer.on('connection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await serv.addTo(httpServer);
  await new Promise((resolve, reject) => {
    httpServer.once('error', reject);
    httpServer.listen(config.port, config.host, resolve);
  });
  const { port } = httpServer.address();
  process.stdout.write(`${JSON.stringify({ ready: true, port })}\n`);

  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    const deadline = new Promise((resolve) => setTimeout(resolve, shutdownDeadlineMs, 'late').unref());
    const closed = new Promise((resolve) => httpServer.close(() => resolve('closed')));
    // pgl.release() releases grafserv (its WebSocket server, the subscriptions) and the pools; ws
    // leaves open sockets open, so they end here.
    await pgl.release();
    for (const socket of sockets) socket.destroy();
    if ((await Promise.race([closed, deadline])) === 'late') {
      console.error(`postgraphile peer: connections still open after ${shutdownDeadlineMs} ms; exiting anyway`);
    }
    process.exit(0);
  };
  for (const signal of ['SIGTERM', 'SIGINT']) {
    process.once(signal, () => {
      stop().catch((error) => {
        console.error('postgraphile peer: shutdown failed:', error);
        process.exit(1);
      });
    });
  }
}

main().catch((error) => {
  console.error('postgraphile peer: could not start:', error);
  process.exit(1);
});
