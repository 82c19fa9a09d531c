// A PostgreSQL of one test file's own (embedded), for tests that stop, restart or crash the server:
// the shared server of the test run is never touched. Its one database is migrated, with the
// example application, and a pool of the test's own reads it.
import { mkdir, mkdtemp } from 'node:fs/promises';
import { join } from 'node:path';
import pg from 'pg';
import { startEmbeddedPostgres, type EmbeddedDatabase } from '../../src/db/embedded.ts';
import { runMigrations } from '../../src/db/migrate.ts';
import { projectPath } from '../../src/project-root.ts';
import { databaseUrlFor } from './database-url.ts';

interface Teardown {
  teardown(fn: () => unknown): void;
}

export interface PrivateDatabase {
  readonly cluster: EmbeddedDatabase;
  /** The migrated database's URL. */
  readonly url: string;
  readonly pool: pg.Pool;
}

export async function startPrivateDatabase(t: Teardown, name: string): Promise<PrivateDatabase> {
  // Under the project's .relay/ (owned by the OS user postgres when running as root), which a
  // fresh clone tested against DATABASE_URL has not made yet.
  await mkdir(projectPath('.relay'), { recursive: true });
  const cluster = await startEmbeddedPostgres({ dir: await mkdtemp(join(projectPath('.relay'), `${name}-test-`)), temporary: true });
  t.teardown(() => cluster.stop());
  const admin = new pg.Client({ connectionString: cluster.url });
  await admin.connect();
  await admin.query(`create database relay_${name}`);
  await admin.end();
  const url = databaseUrlFor(cluster.url, `relay_${name}`);
  await runMigrations({ databaseUrl: url, includeExample: true });
  const pool = new pg.Pool({ connectionString: url, max: 4, application_name: `${name} test` });
  // Idle connections die with the server; the pool replaces them, nothing to do here.
  pool.on('error', () => undefined);
  t.teardown(() => pool.end());
  return { cluster, url, pool };
}
