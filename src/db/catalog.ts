import type pg from 'pg';
import type { Grant } from '../events.ts';
import { parseJsonExactly } from '../exact-json.ts';
import { loadSql } from './sql.ts';

/** What running relays know of the database's configuration: grants, and the topics a client may name. */
export interface Catalog {
  readonly grants: readonly Grant[];
  readonly topics: ReadonlySet<string>;
}

/** A catalog as read, and what tells it apart from another. */
export interface LoadedCatalog extends Catalog {
  /** Equal for two loads that read the same grants and topics. */
  readonly fingerprint: string;
}

/** Reads the catalog, in one snapshot so that grants and topics agree. */
export function createCatalogReader(pool: pg.Pool): { load(): Promise<LoadedCatalog> } {
  const queries = { grants: loadSql('load-grants'), topics: loadSql('load-topics') };
  return { load: () => loadCatalog(pool, queries) };
}

async function loadCatalog(pool: pg.Pool, queries: { grants: string; topics: string }): Promise<LoadedCatalog> {
  const client = await pool.connect();
  // A connection lost mid-load fails the query under way, and then the client emits 'error' too:
  // while checked out of the pool nothing else listens, and an unheard 'error' ends the process.
  let lost: Error | undefined;
  const onError = (error: Error): void => {
    lost = error;
  };
  client.on('error', onError);
  try {
    await client.query('begin isolation level repeatable read read only');
    const grants = await client.query<{ topic: string; role: string; filter: string; columns: string[] | null }>(
      queries.grants,
    );
    const topics = await client.query<{ topic: string }>(queries.topics);
    await client.query('commit');
    return {
      // Exactly: a grant {"account_id": 9007199254740993} must not read as 9007199254740992.
      grants: grants.rows.map((row) => ({
        topic: row.topic,
        role: row.role,
        filter: parseJsonExactly(row.filter),
        columns: row.columns,
      })),
      topics: new Set(topics.rows.map((row) => row.topic)),
      fingerprint: JSON.stringify([grants.rows, topics.rows.map((row) => row.topic).sort()]),
    };
  } catch (error) {
    // The original error says what went wrong; a failed rollback on a broken link adds nothing.
    await client.query('rollback').catch(() => undefined);
    throw error;
  } finally {
    client.off('error', onError);
    // With the error, the pool discards the broken connection instead of handing it out again.
    client.release(lost);
  }
}
