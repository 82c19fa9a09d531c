// A role of a test's own: what a writer, a publisher or an intruder can do is tried as that role.

import { randomBytes } from 'node:crypto';
import type { Test } from 'tap';
import pg from 'pg';

/** What a test database offers to make a role: a pool of its owner, and its URL. */
interface OwnedDatabase {
  readonly pool: pg.Pool;
  readonly url: string;
}

/**
 * A login-less role for one test, dropped afterwards (roles are cluster-wide, the database is
 * not), and a connection of its own that has SET ROLE to it. `$role` in each privilege statement
 * names it.
 */
export async function connectAs(t: Test, db: OwnedDatabase, privileges: readonly string[] = []): Promise<{ role: string; client: pg.Client }> {
  const role = `relay_test_${randomBytes(5).toString('hex')}`;
  await db.pool.query(`create role ${role} nologin`);
  t.teardown(async () => {
    await db.pool.query(`drop owned by ${role} cascade`);
    await db.pool.query(`drop role ${role}`);
  });
  for (const privilege of privileges) await db.pool.query(privilege.replaceAll('$role', role));
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  t.teardown(() => client.end());
  await client.query(`set role ${role}`);
  return { role, client };
}
