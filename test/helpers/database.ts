import { randomBytes } from 'node:crypto';
import pg from 'pg';
import tap from 'tap';
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

/** Databases of this test file, dropped once every test of the file (and its teardowns) is done. */
const created: { name: string; pool: pg.Pool }[] = [];
let dropRegistered = false;

/**
 * A fresh, migrated database for one test, dropped at the end of the test file: only then is no
 * relay, client or pool of any test still connected to it (dropping it earlier, `with (force)`,
 * would cut connections that a later teardown still uses). `npm test` provides the server and the
 * template (see test/run.ts). `t` is kept for callers' symmetry with other helpers.
 */
export async function createTestDatabase(_t?: Teardown): Promise<TestDatabase> {
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
  // An idle client cut by PostgreSQL (a fault test, the final drop) must not crash the test file.
  pool.on('error', () => undefined);
  created.push({ name, pool });
  if (!dropRegistered) {
    dropRegistered = true;
    tap.teardown(() => dropAll(adminUrl));
  }
  return { url, pool };
}

async function dropAll(adminUrl: string): Promise<void> {
  const dropper = new pg.Client({ connectionString: adminUrl });
  await dropper.connect();
  try {
    for (const { name, pool } of created.splice(0)) {
      // A test may have ended its pool itself; ending it twice only says so.
      await pool.end().catch(() => undefined);
      await dropper.query(`drop database if exists ${name} with (force)`);
    }
  } finally {
    await dropper.end();
  }
}
