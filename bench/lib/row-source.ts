// Where a run's rows come from: the writer process inserting into PostgreSQL, or (for the no-database
// limit) the system itself. Both report a step the same way.
import { forkChild } from './child.ts';
import type { SystemProcess } from './system-process.ts';
import type { WriterCommand, WriterReport } from './writer-messages.ts';

/** What one step wrote. */
export type WrittenStep = Extract<WriterReport, { type: 'written' }>;

/** A source of rows. */
export interface RowSource {
  /** The writer's pid, when it is a process of its own. */
  readonly pid?: number;
  write(rate: number, durationMs: number, tenants: readonly string[]): Promise<WrittenStep>;
  close(): Promise<void>;
}

/** A writer process with `connections` PostgreSQL connections. */
export async function startWriter(databaseUrl: string, connections: number, noteBytes: number): Promise<RowSource> {
  const writer = forkChild<WriterCommand, WriterReport>(new URL('./writer-process.js', import.meta.url));
  const failed = writer.next('failed').then((report) => {
    throw new Error(`writer failed: ${report.message}`);
  });
  failed.catch(() => undefined);
  const connected = writer.next('connected');
  writer.send({ type: 'connect', databaseUrl, connections, noteBytes, synchronousCommit: false });
  await Promise.race([connected, failed]);
  return {
    pid: writer.process.pid,
    async write(rate, durationMs, tenants) {
      const written = writer.next('written');
      writer.send({ type: 'write', rate, durationMs, tenants });
      return Promise.race([written, failed]);
    },
    async close() {
      const closed = writer.next('closed').catch(() => undefined);
      writer.send({ type: 'close' });
      await closed;
      await writer.exited();
    },
  };
}

/** The system itself makes the rows (bench/peers/uws-raw). */
export function systemAsSource(system: SystemProcess): RowSource {
  return {
    write: (rate, durationMs, tenants) => system.request<WrittenStep>({ rate, durationMs, tenants }),
    close: async () => undefined,
  };
}
