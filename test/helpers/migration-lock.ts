// Another relay applying a migration, as a relay starting on the same database sees it: the
// migration's row not recorded yet, and node-pg-migrate's advisory lock held.
import { PG_MIGRATE_LOCK_ID } from 'node-pg-migrate';
import pg from 'pg';
import type { TestDatabase } from './database.ts';

interface Teardown {
  teardown(fn: () => unknown): void;
}

export interface MigrationInProgress {
  /** The connection holding the lock, as the other relay's would. */
  readonly owner: pg.Client;
  /** The migration commits: its row is recorded and the lock let go. */
  finish(): Promise<void>;
}

/** Takes the last recorded migration of `db` back and holds the lock, as a relay applying it would. */
export async function anotherRelayMigrating(t: Teardown, db: TestDatabase): Promise<MigrationInProgress> {
  // run_on as text: a Date keeps milliseconds, and node-pg-migrate orders its history by run_on,
  // so the row put back would sort before a migration applied in the same millisecond.
  const { rows } = await db.pool.query<{ name: string; run_on: string }>(
    `delete from relay.migrations where id = (select max(id) from relay.migrations) returning name, run_on::text`,
  );
  const applying = rows[0]!;
  const owner = new pg.Client({ connectionString: db.url });
  await owner.connect();
  t.teardown(() => owner.end());
  await owner.query('select pg_advisory_lock($1)', [PG_MIGRATE_LOCK_ID]);
  return {
    owner,
    async finish() {
      await owner.query('insert into relay.migrations (name, run_on) values ($1, $2)', [applying.name, applying.run_on]);
      await owner.query('select pg_advisory_unlock($1)', [PG_MIGRATE_LOCK_ID]);
    },
  };
}
