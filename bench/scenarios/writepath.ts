// writepath: what watching a table costs its writers. pgbench runs the same single-row UPDATE on a
// plain table, on a table watched by pg-relay and on a table with a hand-written notify trigger,
// plus a bare pg_notify per transaction: this server's NOTIFY commit rate. One server, one run; a
// pg-relay process reads the log throughout, as in production (its reads ask committers for
// wake-up notifications), and a listener drains the other channels.
// Each UPDATE runs twice: with commits as the server makes them (waiting for the WAL to reach the
// disk, unless the server says otherwise), and with synchronous_commit = off, where the disk no
// longer sets the pace and the ratio is that of the CPU each transaction costs. There the watched
// UPDATE also runs with the relay stopped: on two shared cores the relay's reading takes CPU from
// the writers, which it would not on a host of its own; the two runs separate the triggers' cost
// from the reader's, and the relay's CPU (and its connections') is measured while it reads.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { projectPath } from '../../src/project-root.ts';
import { freshDatabase } from '../lib/postgres.ts';
import { usageOf, usageSince } from '../lib/process-stats.ts';
import { startSystemProcess, type SystemProcess } from '../lib/system-process.ts';
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
  /** The server's durability settings, which the runs above commit with. */
  readonly server: { readonly fsync: string; readonly synchronousCommit: string };
  /** The same UPDATEs with synchronous_commit = off: commits that do not wait for the disk. */
  readonly withoutFlushWait: {
    readonly tps: { plain: number; watched: number; notifyTrigger: number; watchedWithoutReader: number };
    readonly watchedOverPlain: number;
    readonly notifyTriggerOverPlain: number;
    /** The watched UPDATE with no relay running: what the triggers alone cost the writers. */
    readonly watchedWithoutReaderOverPlain: number;
    /**
     * Cores the relay process, and PostgreSQL's backends serving its connections, used while it
     * read the watched UPDATEs (the median of the rounds).
     */
    readonly readerCores: { readonly relay: number; readonly postgres: number };
  };
}

const SCRIPTS = {
  plain: 'update public.bench_plain set n = n + 1 where id = :id;',
  watched: 'update public.bench_watched set n = n + 1 where id = :id;',
  notifyTrigger: 'update public.bench_notified set n = n + 1 where id = :id;',
  bareNotify: `select pg_notify('bench_raw', 'row ' || :id || ' ${'x'.repeat(100)}');`,
} as const;

/** The scripts run again with commits that do not wait for the disk. */
const WITHOUT_FLUSH_WAIT = ['plain', 'watched', 'notifyTrigger'] as const;

/**
 * One pgbench run of a script, with `synchronous_commit = off` for its sessions or not, and with
 * the relay stopped for it or not.
 */
interface PgbenchRun {
  readonly script: keyof typeof SCRIPTS;
  readonly flushWait: boolean;
  readonly withoutReader?: boolean;
}
/** Every run of a round, in the order they take turns. */
const PGBENCH_RUNS: readonly PgbenchRun[] = [
  ...Object.keys(SCRIPTS).map((script) => ({ script: script as keyof typeof SCRIPTS, flushWait: true })),
  ...WITHOUT_FLUSH_WAIT.map((script) => ({ script, flushWait: false })),
  { script: 'watched', flushWait: false, withoutReader: true },
];
const runName = (each: PgbenchRun): string =>
  `${each.script}${each.flushWait ? '' : ' without flush wait'}${each.withoutReader ? ', no relay reading' : ''}`;

export async function runWritepath(context: ScenarioContext, options: WritepathOptions = WRITEPATH_DEFAULTS): Promise<WritepathResult> {
  const url = await freshDatabase(context.postgres.serverUrl, 'bench_writepath');
  await runMigrations({ databaseUrl: url, includeExample: false });
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  await admin.query(await readFile(projectPath('bench', 'sql', 'writepath-tables.sql'), 'utf8'));
  await admin.end();
  const startRelay = (): Promise<SystemProcess> =>
    startSystemProcess('pg-relay', SYSTEMS['pg-relay']!.args, { DATABASE_URL: url, JWT_SECRET: context.jwtSecret });
  let relay = await startRelay();
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
    const { rows: settings } = await listener.query<{ fsync: string; synchronous_commit: string }>(
      `select current_setting('fsync') as fsync, current_setting('synchronous_commit') as synchronous_commit`,
    );
    const tpsOf: Record<string, number[]> = {};
    const readerCoresOf: { relay: number[]; postgres: number[] } = { relay: [], postgres: [] };
    let watchedWakeups = 0;
    let watchedTransactions = 0;
    for (const [name, statement] of Object.entries(SCRIPTS)) {
      await writeFile(join(scratch, `${name}.sql`), `\\set id random(1, 10000)\n${statement}\n`);
    }
    for (let round = 1; round <= options.rounds; round++) {
      for (const each of PGBENCH_RUNS) {
        const script = join(scratch, `${each.script}.sql`);
        // Each run starts from a checkpoint, so that none pays for writes an earlier run (or
        // scenario) left dirty, or for a checkpoint that starts in the middle of it.
        await listener.query('checkpoint').catch((error: Error) => context.log(`writepath: no checkpoint (${error.message})`));
        wakeups = 0;
        if (each.withoutReader) await relay.stop();
        // The relay's reading of this run, where it reads what the writers log: its process and its connections' backends.
        const measureReader = each.script === 'watched' && !each.flushWait && !each.withoutReader;
        const readerPids = measureReader ? [relay.pid, ...(await relayBackendPids(context))] : [];
        const readerBefore = usageOf(readerPids);
        const started = performance.now();
        const env = each.flushWait ? process.env : { ...process.env, PGOPTIONS: '-c synchronous_commit=off' };
        const { stdout } = await run('pgbench', ['-n', '-f', script, '-c', String(options.clients), '-j', '2', '-T', String(options.seconds), url], { env });
        if (measureReader) {
          const seconds = (performance.now() - started) / 1000;
          const { cpuByProcess } = usageSince(readerBefore);
          readerCoresOf.relay.push(cpuByProcess[0]! / seconds);
          readerCoresOf.postgres.push(cpuByProcess.slice(1).reduce((sum, cpu) => sum + cpu, 0) / seconds);
        }
        // A new relay starts at the end of the log: the events of the run without it are not read.
        if (each.withoutReader) relay = await startRelay();
        const value = /tps = ([\d.]+)/.exec(stdout)?.[1];
        if (!value) throw new Error(`pgbench printed no tps:\n${stdout}`);
        (tpsOf[runName(each)] ??= []).push(Math.round(Number(value)));
        if (each.script === 'watched' && each.flushWait) {
          watchedWakeups += wakeups;
          watchedTransactions += Number(/number of transactions actually processed: (\d+)/.exec(stdout)?.[1] ?? Number.NaN);
        }
        context.log(`writepath ${runName(each)}, round ${round}: ${value} tps`);
      }
    }
    const tps = (each: PgbenchRun): number => median(tpsOf[runName(each)]!);
    const ratio = (a: number, b: number): number => Math.round((a / b) * 1000) / 1000;
    const updates = (flushWait: boolean) => ({
      plain: tps({ script: 'plain', flushWait }),
      watched: tps({ script: 'watched', flushWait }),
      notifyTrigger: tps({ script: 'notifyTrigger', flushWait }),
    });
    const flushed = updates(true);
    const unflushed = { ...updates(false), watchedWithoutReader: tps({ script: 'watched', flushWait: false, withoutReader: true }) };
    const cores = (values: number[]): number => Math.round(medianOf(values) * 100) / 100;
    const result: WritepathResult = {
      clients: options.clients,
      seconds: options.seconds,
      rounds: options.rounds,
      tps: { ...flushed, bareNotify: tps({ script: 'bareNotify', flushWait: true }) },
      watchedOverPlain: ratio(flushed.watched, flushed.plain),
      notifyTriggerOverPlain: ratio(flushed.notifyTrigger, flushed.plain),
      wakeupsPerWatchedTransaction: ratio(watchedWakeups, watchedTransactions),
      server: { fsync: settings[0]!.fsync, synchronousCommit: settings[0]!.synchronous_commit },
      withoutFlushWait: {
        tps: unflushed,
        watchedOverPlain: ratio(unflushed.watched, unflushed.plain),
        notifyTriggerOverPlain: ratio(unflushed.notifyTrigger, unflushed.plain),
        watchedWithoutReaderOverPlain: ratio(unflushed.watchedWithoutReader, unflushed.plain),
        readerCores: { relay: cores(readerCoresOf.relay), postgres: cores(readerCoresOf.postgres) },
      },
    };
    context.log(`writepath: ${JSON.stringify(result)}`);
    return result;
  } finally {
    await listener.end().catch(() => undefined);
    await relay.stop();
    await rm(scratch, { recursive: true, force: true });
  }
}

/** The median of tps counts, a whole number. */
function median(values: readonly number[]): number {
  return Math.round(medianOf(values));
}

function medianOf(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** The server processes serving the relay's connections (its pool and its listener), by application_name. */
async function relayBackendPids(context: ScenarioContext): Promise<number[]> {
  const processes = await context.postgres.processes();
  return processes.filter((process) => process.role.startsWith('pg-relay')).map((process) => process.pid);
}
