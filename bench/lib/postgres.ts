// The bench's PostgreSQL: DATABASE_URL's server, or an embedded one of its own; and a fresh
// database per system under test, so that no system's triggers fire for another's run.
import { readFile } from 'node:fs/promises';
import pg from 'pg';
import { startEmbeddedPostgres } from '../../src/db/embedded.ts';
import { runMigrations } from '../../src/db/migrate.ts';
import { projectPath } from '../../src/project-root.ts';

export interface PostgresProcess {
  readonly pid: number;
  readonly role: string;
}

/** A server the bench may create databases on. */
export interface BenchPostgres {
  readonly serverUrl: string;
  readonly version: string;
  readonly embedded: boolean;
  /**
   * The server's processes (backends and background workers) that run now, each with its role: the
   * connection's application_name, else the kind of process (so a step can say who used the CPU).
   */
  processes(): Promise<PostgresProcess[]>;
  stop(): Promise<void>;
}

/** DATABASE_URL's server, or a temporary embedded cluster. */
export async function startBenchPostgres(databaseUrl: string | undefined): Promise<BenchPostgres> {
  const embedded = databaseUrl
    ? undefined
    : await startEmbeddedPostgres({ dir: projectPath('.relay', `bench-${process.pid}`), temporary: true });
  const serverUrl = databaseUrl ?? embedded!.url;
  const client = new pg.Client({ connectionString: serverUrl });
  await client.connect();
  const { rows } = await client.query<{ server_version: string }>('show server_version');
  await client.end();
  return {
    serverUrl,
    version: rows[0]!.server_version,
    embedded: embedded !== undefined,
    async processes() {
      const client = new pg.Client({ connectionString: serverUrl });
      await client.connect();
      try {
        // pg_stat_activity lists the background processes too (PostgreSQL 10+), not the postmaster.
        const { rows } = await client.query<PostgresProcess>(
          `select pid, coalesce(nullif(application_name, ''), backend_type) as role
             from pg_stat_activity where pid <> pg_backend_pid()`,
        );
        return rows;
      } finally {
        await client.end();
      }
    },
    stop: async () => embedded?.stop(),
  };
}

/** Drops and creates database `name`; returns its URL. `name` is the bench's own, never input. */
export async function freshDatabase(serverUrl: string, name: string): Promise<string> {
  const client = new pg.Client({ connectionString: serverUrl });
  await client.connect();
  try {
    await client.query(`drop database if exists ${client.escapeIdentifier(name)} with (force)`);
    await client.query(`create database ${client.escapeIdentifier(name)}`);
  } finally {
    await client.end();
  }
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

/** Prepares a system's database: the relay's schema if it needs it, the workload table, its setup. */
export async function prepareDatabase(url: string, options: { relaySchema: boolean; setupSql?: string }): Promise<void> {
  if (options.relaySchema) await runMigrations({ databaseUrl: url, includeExample: false });
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(await readFile(projectPath('bench', 'sql', 'bench-schema.sql'), 'utf8'));
    if (options.setupSql) await client.query(await readFile(projectPath(options.setupSql), 'utf8'));
  } finally {
    await client.end();
  }
}
