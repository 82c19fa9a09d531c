import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { databaseUrlFor } from './database-url.ts';

export interface TestDatabase {
  /** Connection string of this test file's own database (a clone of the migrated template). */
  readonly url: string;
  /** A pool on it for the test's own writes and checks. */
  readonly pool: pg.Pool;
}

interface Teardown {
  teardown(fn: () => unknown): void;
}

/**
 * A fresh, migrated database for one test file, dropped at teardown. `npm test` provides the
 * server and the template (see test/run.ts).
 */
export async function createTestDatabase(t: Teardown): Promise<TestDatabase> {
  const adminUrl = process.env.RELAY_TEST_ADMIN_URL;
  const template = process.env.RELAY_TEST_TEMPLATE;
  if (!adminUrl || !template) throw new Error('run the tests with `npm test` (it prepares the database)');
  const name = `relay_test_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`create database ${name} template ${template}`);
  } finally {
    await admin.end();
  }
  const url = databaseUrlFor(adminUrl, name);
  const pool = new pg.Pool({ connectionString: url, max: 10 });
  t.teardown(async () => {
    await pool.end();
    const dropper = new pg.Client({ connectionString: adminUrl });
    await dropper.connect();
    await dropper.query(`drop database if exists ${name} with (force)`);
    await dropper.end();
  });
  return { url, pool };
}
