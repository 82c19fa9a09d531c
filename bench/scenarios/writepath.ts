// writepath: what watching a table costs its writers. pgbench runs the same single-row UPDATE on a
// plain table, on a table watched by pg-relay and on a table with a hand-written notify trigger,
// plus a bare pg_notify per transaction: this server's NOTIFY commit rate. One server, one run; a
// pg-relay process reads the log throughout, as in production (its reads ask committers for
// wake-up notifications), and a listener drains the other channels.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { projectPath } from '../../src/project-root.ts';
import { freshDatabase } from '../lib/postgres.ts';
import { startSystemProcess } from '../lib/system-process.ts';
import { SYSTEMS } from '../lib/systems.ts';
import { runMigrations } from '../../src/db/migrate.ts';
import type { ScenarioContext } from './context.ts';

const run = promisify(execFile);

export interface WritepathOptions {
  /** Seconds of each pgbench run. */
  readonly seconds: number;
  readonly clients: number;
  /**
   * Every script runs this many times, the scripts taking turns, and each reports its median: a
   * checkpoint or a burst of other work then weighs on one run of each, not on one script.
   */
  readonly rounds: number;
}

export const WRITEPATH_DEFAULTS: WritepathOptions = { seconds: 5, clients: 4, rounds: 3 };

export interface WritepathResult {
  readonly clients: number;
  readonly seconds: number;
  readonly rounds: number;
  /** The median of each script's runs. */
  readonly tps: { plain: number; watched: number; notifyTrigger: number; bareNotify: number };
  /** Watched over plain (target: at least 0.5). */
  readonly watchedOverPlain: number;
  readonly notifyTriggerOverPlain: number;
  /** Wake-up notifications the watched run sent, per transaction (the rest committed without NOTIFY). */
  readonly wakeupsPerWatchedTransaction: number;
}

const SCRIPTS = {
  plain: 'update public.bench_plain set n = n + 1 where id = :id;',
  watched: 'update public.bench_watched set n = n + 1 where id = :id;',
  notifyTrigger: 'update public.bench_notified set n = n + 1 where id = :id;',
  bareNotify: `select pg_notify('bench_raw', 'row ' || :id || ' ${'x'.repeat(100)}');`,
} as const;

export async function runWritepath(context: ScenarioContext, options: WritepathOptions = WRITEPATH_DEFAULTS): Promise<WritepathResult> {
  const url = await freshDatabase(context.postgres.serverUrl, 'bench_writepath');
  await runMigrations({ databaseUrl: url, includeExample: false });
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  await admin.query(await readFile(projectPath('bench', 'sql', 'writepath-tables.sql'), 'utf8'));
  await admin.end();
  const relay = await startSystemProcess('pg-relay', SYSTEMS['pg-relay']!.args, { DATABASE_URL: url, JWT_SECRET: context.jwtSecret });
  // Drained as subscribers would, so that no notification queue fills.
  const listener = new pg.Client({ connectionString: url });
  let wakeups = 0;
  listener.on('notification', (message) => {
    if (message.channel === 'relay_events') wakeups++;
  });
  const scratch = await mkdtemp(join(projectPath('.relay'), 'pgbench-'));
  try {
    await listener.connect();
    await listener.query('listen bench_notified; listen bench_raw; listen relay_events');
    const runs: Record<string, number[]> = {};
    let watchedWakeups = 0;
    let watchedTransactions = 0;
    for (const [name, statement] of Object.entries(SCRIPTS)) {
      await writeFile(join(scratch, `${name}.sql`), `\\set id random(1, 10000)\n${statement}\n`);
    }
    for (let round = 1; round <= options.rounds; round++) {
      for (const name of Object.keys(SCRIPTS)) {
        const script = join(scratch, `${name}.sql`);
        // Each run starts from a checkpoint, so that none pays for writes an earlier run (or
        // scenario) left dirty, or for a checkpoint that starts in the middle of it.
        await listener.query('checkpoint').catch((error: Error) => context.log(`writepath: no checkpoint (${error.message})`));
        wakeups = 0;
        const { stdout } = await run('pgbench', ['-n', '-f', script, '-c', String(options.clients), '-j', '2', '-T', String(options.seconds), url]);
        const value = /tps = ([\d.]+)/.exec(stdout)?.[1];
        if (!value) throw new Error(`pgbench printed no tps:\n${stdout}`);
        (runs[name] ??= []).push(Math.round(Number(value)));
        if (name === 'watched') {
          watchedWakeups += wakeups;
          watchedTransactions += Number(/number of transactions actually processed: (\d+)/.exec(stdout)?.[1] ?? Number.NaN);
        }
        context.log(`writepath ${name}, round ${round}: ${value} tps`);
      }
    }
    const tps = Object.fromEntries(Object.entries(runs).map(([name, values]) => [name, median(values)]));
    const result: WritepathResult = {
      clients: options.clients,
      seconds: options.seconds,
      rounds: options.rounds,
      tps: { plain: tps.plain!, watched: tps.watched!, notifyTrigger: tps.notifyTrigger!, bareNotify: tps.bareNotify! },
      watchedOverPlain: Math.round((tps.watched! / tps.plain!) * 1000) / 1000,
      notifyTriggerOverPlain: Math.round((tps.notifyTrigger! / tps.plain!) * 1000) / 1000,
      wakeupsPerWatchedTransaction: Math.round((watchedWakeups / watchedTransactions) * 1000) / 1000,
    };
    context.log(`writepath: ${JSON.stringify(result)}`);
    return result;
  } finally {
    await listener.end().catch(() => undefined);
    await relay.stop();
    await rm(scratch, { recursive: true, force: true });
  }
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle]! : Math.round((sorted[middle - 1]! + sorted[middle]!) / 2);
}
