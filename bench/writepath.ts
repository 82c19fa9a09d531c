// Write-path cost of watching a table: pgbench, a plain UPDATE against the same UPDATE on a
// watched table, in one run on one server, with a listener draining the notifications.
// Usage: npm run bench:writepath [-- seconds clients]   (DATABASE_URL or the embedded PostgreSQL)

import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { startEmbeddedPostgres, type EmbeddedDatabase } from '../src/db/embedded.ts';
import { ensureDatabase } from '../src/db/ensure-database.ts';
import { runMigrations } from '../src/db/migrate.ts';
import { projectPath } from '../src/project-root.ts';

const run = promisify(execFile);
const ROWS = 10_000;

async function main(): Promise<void> {
  const seconds = Number(process.argv[2] ?? 15);
  const clients = Number(process.argv[3] ?? 4);
  let embedded: EmbeddedDatabase | undefined;
  const serverUrl =
    process.env.DATABASE_URL ??
    (embedded = await startEmbeddedPostgres({ dir: projectPath('.relay', `bench-${process.pid}`), temporary: true })).url;
  const url = await ensureDatabase(serverUrl, 'relay_bench_writepath');
  const scratch = await mkdtemp(join(projectPath('.relay'), 'pgbench-'));
  const listener = new pg.Client({ connectionString: url });
  try {
    await runMigrations({ databaseUrl: url, includeExample: false });
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    for (const table of ['bench_plain', 'bench_watched']) {
      await admin.query(`drop table if exists ${table}`);
      await admin.query(`create table ${table} (id int primary key, tenant text not null, n int not null, note text)`);
      await admin.query(`insert into ${table} select i, 't' || (i % 100), 0, 'row ' || i from generate_series(1, ${ROWS}) i`);
    }
    await admin.query(`select relay.watch('bench_watched', 'bench')`);
    const { rows } = await admin.query<{ server_version: string }>('show server_version');
    await admin.end();
    // Notifications are drained as a relay would, so the queue never fills.
    await listener.connect();
    await listener.query('listen relay_events');

    const results: Record<string, number> = {};
    for (const table of ['bench_plain', 'bench_watched']) {
      const script = join(scratch, `${table}.sql`);
      await writeFile(script, `\\set id random(1, ${ROWS})\nupdate ${table} set n = n + 1 where id = :id;\n`);
      const { stdout } = await run('pgbench', ['-n', '-f', script, '-c', String(clients), '-j', '2', '-T', String(seconds), url]);
      const tps = /tps = ([\d.]+)/.exec(stdout)?.[1];
      if (!tps) throw new Error(`pgbench printed no tps:\n${stdout}`);
      results[table] = Number(tps);
      console.log(`${table}: ${Number(tps).toFixed(0)} tps`);
    }
    const ratio = results.bench_watched! / results.bench_plain!;
    console.log(
      JSON.stringify({
        scenario: 'writepath',
        postgres: rows[0]?.server_version,
        clients,
        seconds,
        plainTps: Math.round(results.bench_plain!),
        watchedTps: Math.round(results.bench_watched!),
        watchedOverPlain: Number(ratio.toFixed(3)),
      }),
    );
  } finally {
    await listener.end().catch(() => undefined);
    await rm(scratch, { recursive: true, force: true });
    await embedded?.stop();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
