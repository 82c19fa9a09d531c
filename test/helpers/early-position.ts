// A transaction that draws its commit position early and stays open holds back every later
// position, live delivery and a relay's start alike: tests make one, and see the relay wait for it.
import type pg from 'pg';
import { untilTrue } from './backend-waits.ts';

interface Teardown {
  teardown(fn: () => unknown): void;
}

/** A client in a transaction that has already drawn its commit position (its stamp fired early). */
export async function drawPositionEarly(pool: pg.Pool, t: Teardown, orderId: string): Promise<pg.PoolClient> {
  const client = await pool.connect();
  t.teardown(() => client.release());
  await client.query('begin');
  await client.query('set constraints all immediate');
  await client.query(`insert into orders (id, hospital_id, status) values ($1, 'H1', 'new')`, [orderId]);
  return client;
}

/**
 * Resolves once a relay on `pool`'s database waits for committers to end
 * (relay.wait_for_committers): at its start, or live, having read a later position while an
 * earlier one was still missing. Polls pg_stat_activity, where the wait shows.
 */
export async function relayWaitsForCommitters(pool: pg.Pool): Promise<void> {
  await untilTrue(
    pool,
    `select exists (select from pg_stat_activity
      where datname = current_database() and application_name = 'pg-relay' and state = 'active'
        and query like '%relay.wait_for_committers(%')`,
  );
}
