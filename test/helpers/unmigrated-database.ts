// A database of a test file's own that is not a clone of the migrated template, for tests of a
// migration applied to a log made by the migrations before it. Dropped when the file ends.

import { randomBytes } from 'node:crypto';
import t from 'tap';
import pg from 'pg';
import { runner } from 'node-pg-migrate';
import { projectPath } from '../../src/project-root.ts';
import { databaseUrlFor } from './database-url.ts';

export interface UnmigratedDatabase {
  readonly url: string;
  readonly pool: pg.Pool;
  /** Applies (up) the relay's migrations through `timestamp`, or reverts (down) those from it on. */
  migrate(direction: 'up' | 'down', timestamp: number): Promise<void>;
}

export async function createUnmigratedDatabase(): Promise<UnmigratedDatabase> {
  const adminUrl = process.env.RELAY_TEST_ADMIN_URL;
  if (!adminUrl) throw new Error('run the tests with `npm test` (it prepares the database)');
  const name = `relay_test_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`create database ${name}`);
  const url = databaseUrlFor(adminUrl, name);
  const pool = new pg.Pool({ connectionString: url, max: 4 });
  // An idle client cut by PostgreSQL (the final drop) must not crash the test file.
  pool.on('error', () => undefined);
  t.teardown(async () => {
    await pool.end();
    await admin.query(`drop database if exists ${name} with (force)`);
    await admin.end();
  });
  const migrate = async (direction: 'up' | 'down', timestamp: number): Promise<void> => {
    await runner({
      databaseUrl: url,
      dir: projectPath('migrations', 'relay'),
      migrationsTable: 'migrations',
      migrationsSchema: 'relay',
      createMigrationsSchema: true,
      direction,
      count: timestamp,
      timestamp: true,
      checkOrder: true,
      log: () => undefined,
    });
  };
  return { url, pool, migrate };
}
