// The limit of fan-out on this machine: uWebSockets.js publishing to the same clients with no
// database and no per-event work beyond one JSON string. The bench's writer cannot reach it, so it
// makes its own rows when the harness asks (a JSON line on stdin: rate, duration, tenants) and
// answers with what it "wrote", in the writer's own report shape (bench/lib/writer-messages.ts).
import { createInterface } from 'node:readline';
import uWS from 'uWebSockets.js';
import { nowUs } from '../../lib/clock.ts';

interface WriteRequest {
  readonly rate: number;
  readonly durationMs: number;
  readonly tenants: readonly string[];
}

interface Topics {
  readonly topic: string;
}

const note = 'x'.repeat(Number(process.env.NOTE_BYTES ?? 100));
let nextId = 1;

/** The role of an unverified token: a limit needs no security, only the same rooms. */
function topicOf(token: string): string | null {
  try {
    const claims = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString()) as Record<string, unknown>;
    if (claims.role === 'admin') return 'admins';
    if (claims.role === 'hospital' && typeof claims.hospital_id === 'string') return `hospital:${claims.hospital_id}`;
  } catch {
    // Not a token: refused below.
  }
  return null;
}

const app = uWS.App().ws<Topics>('/*', {
  maxPayloadLength: 64 * 1024,
  maxBackpressure: 64 * 1024 * 1024,
  idleTimeout: 0,
  upgrade(res, req, context) {
    const topic = topicOf(new URLSearchParams(req.getQuery() ?? '').get('token') ?? '');
    if (!topic) {
      res.writeStatus('401 Unauthorized').end();
      return;
    }
    res.upgrade<Topics>(
      { topic },
      req.getHeader('sec-websocket-key'),
      req.getHeader('sec-websocket-protocol'),
      req.getHeader('sec-websocket-extensions'),
      context,
    );
  },
  open(ws) {
    ws.subscribe(ws.getUserData().topic);
    ws.send('{"type":"subscribed"}');
  },
});

function publishRow(tenant: string): void {
  const id = nextId++;
  const row = `{"id":${id},"hospital_id":"${tenant}","status":"placed","sent_at":${nowUs()},"note":"${note}"}`;
  app.publish(`hospital:${tenant}`, row);
  app.publish('admins', row);
}

/** Publishes `rate` rows/s (0: as fast as the loop allows) for the duration, paced per millisecond. */
async function write(request: WriteRequest): Promise<void> {
  const low = nextId;
  const rowsByTenant: Record<string, number> = {};
  const started = performance.now();
  // As the writer does: row i is due at i / rate seconds, the first at once, none at the end.
  const total = request.rate > 0 ? Math.ceil((request.rate * request.durationMs) / 1000) : Number.POSITIVE_INFINITY;
  let index = 0;
  for (;;) {
    const elapsed = performance.now() - started;
    if (elapsed >= request.durationMs || index >= total) break;
    const due = request.rate > 0 ? Math.min(total, Math.floor((elapsed * request.rate) / 1000) + 1) : index + 200;
    for (; index < due; index++) {
      const tenant = request.tenants[index % request.tenants.length]!;
      publishRow(tenant);
      rowsByTenant[tenant] = (rowsByTenant[tenant] ?? 0) + 1;
    }
    await new Promise((resolve) => (request.rate > 0 ? setTimeout(resolve, 1) : setImmediate(resolve)));
  }
  const written = {
    type: 'written',
    low,
    high: nextId - 1,
    rows: nextId - low,
    rowsByTenant,
    elapsedMs: performance.now() - started,
  };
  process.stdout.write(`${JSON.stringify(written)}\n`);
}

app.listen(process.env.HOST ?? '127.0.0.1', Number(process.env.PORT ?? 0), (listenSocket) => {
  if (!listenSocket) {
    process.stderr.write('could not listen\n');
    process.exit(1);
  }
  process.stdout.write(`${JSON.stringify({ ready: true, port: uWS.us_socket_local_port(listenSocket) })}\n`);
});
createInterface({ input: process.stdin }).on('line', (line) => void write(JSON.parse(line) as WriteRequest));
process.on('SIGTERM', () => process.exit(0));
