// The bench's writer: a few PostgreSQL connections inserting bench_orders rows, one per
// transaction, at a set rate spread evenly over the tenants, each row stamped with the clock
// just before it is sent. Forked by the harness so its CPU is apart from the system under test's.

import pg from 'pg';
import { nowUs } from './clock.ts';
import { createHistogram, recordLatency } from './histogram.ts';
import type { WriterCommand, WriterReport } from './writer-messages.ts';

const INSERT = {
  name: 'bench-insert',
  text: `insert into public.bench_orders (hospital_id, status, sent_at, note) values ($1, 'placed', $2, $3) returning id`,
};

let clients: pg.Client[] = [];
let note = '';

function send(report: WriterReport): void {
  process.send?.(report);
}

async function connect(command: Extract<WriterCommand, { type: 'connect' }>): Promise<void> {
  clients = Array.from({ length: command.connections }, () => new pg.Client({ connectionString: command.databaseUrl, application_name: 'bench writer' }));
  await Promise.all(clients.map((client) => client.connect()));
  // The stamp is taken before the INSERT; without the disk's fsync in the commit, stamp-to-client
  // is commit-to-client (give or take the server's own work), which is what the bench measures.
  if (!command.synchronousCommit) await Promise.all(clients.map((client) => client.query('set synchronous_commit = off')));
  note = 'x'.repeat(command.noteBytes);
  send({ type: 'connected' });
}

async function write(command: Extract<WriterCommand, { type: 'write' }>): Promise<void> {
  const started = performance.now();
  const deadline = started + command.durationMs;
  const intervalMs = command.rate > 0 ? 1000 / command.rate : 0;
  const rowsByTenant: Record<string, number> = {};
  let next = 0;
  let low = Number.POSITIVE_INFINITY;
  let high = 0;
  const commitHistogram = createHistogram();
  const loop = async (client: pg.Client): Promise<void> => {
    for (;;) {
      const index = next++;
      const due = started + index * intervalMs;
      if (due >= deadline || (intervalMs === 0 && performance.now() >= deadline)) return;
      const wait = due - performance.now();
      if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait));
      const tenant = command.tenants[index % command.tenants.length]!;
      const sentAt = nowUs();
      const { rows } = await client.query<{ id: string }>({ ...INSERT, values: [tenant, sentAt, note] });
      recordLatency(commitHistogram, nowUs() - sentAt);
      const id = Number(rows[0]!.id);
      if (id < low) low = id;
      if (id > high) high = id;
      rowsByTenant[tenant] = (rowsByTenant[tenant] ?? 0) + 1;
    }
  };
  await Promise.all(clients.map(loop));
  const rows = Object.values(rowsByTenant).reduce((sum, count) => sum + count, 0);
  send({ type: 'written', low: rows ? low : 0, high, rows, rowsByTenant, elapsedMs: performance.now() - started, commitHistogram });
}

process.on('message', (command: WriterCommand) => {
  const run = async (): Promise<void> => {
    switch (command.type) {
      case 'connect':
        return connect(command);
      case 'write':
        return write(command);
      case 'close':
        await Promise.all(clients.map((client) => client.end()));
        send({ type: 'closed' });
        process.disconnect?.();
    }
  };
  run().catch((error: unknown) => send({ type: 'failed', message: String(error) }));
});
