import { readdir } from 'node:fs/promises';
import { runner } from 'node-pg-migrate';
import type pg from 'pg';
import { projectPath } from '../project-root.ts';
import type { Logger } from 'pino';
import { connectClient } from './connect-client.ts';

/** The relay's own schema, then (optionally) the example application, each with its own history. */
const MIGRATION_SETS = {
  relay: { dir: 'relay', table: 'migrations', schema: 'relay' },
  example: { dir: 'example', table: 'example_migrations', schema: 'relay' },
} as const;

type MigrationSet = (typeof MIGRATION_SETS)[keyof typeof MIGRATION_SETS];

/** PostgreSQL's SQLSTATE for "permission denied" and "must be owner of". */
const INSUFFICIENT_PRIVILEGE = '42501';

export interface MigrateOptions {
  readonly databaseUrl: string;
  readonly includeExample: boolean;
  readonly logger?: Logger;
}

/**
 * Migrations are pending and this database role may not apply them. The database's refusal is the
 * cause: the log line's message ends with it (pino appends each cause's message).
 */
export class PendingMigrationsError extends Error {
  readonly code = 'ERR_RELAY_MIGRATIONS_PENDING';

  constructor(what: string, cause: unknown) {
    super(
      `${what}, and this database role may not apply them: apply them with a role that owns the relay ` +
        'schema, e.g. by starting one relay with that role once, before the others',
      { cause },
    );
    this.name = 'PendingMigrationsError';
  }
}

/**
 * Applies pending migrations; concurrent relays wait for each other on node-pg-migrate's lock. A
 * set whose migrations are all recorded is left alone: node-pg-migrate's runner needs CREATE on
 * the database and ownership of its table even when it has nothing to do, and a relay may run as
 * a role that only reads the `relay` schema (the owner applies the migrations in a deploy step).
 */
export async function runMigrations(options: MigrateOptions): Promise<void> {
  const sets = options.includeExample ? [MIGRATION_SETS.relay, MIGRATION_SETS.example] : [MIGRATION_SETS.relay];
  const client = await connectClient(options.databaseUrl, connectionLost(options));
  try {
    for (const set of sets) {
      const pending = await pendingMigrations(client, set);
      if (Array.isArray(pending) && pending.length === 0) {
        options.logger?.debug({ migrations: set.dir }, 'migrations: every one is applied already');
        continue;
      }
      await runSet(options, set).catch(async (error: unknown) => {
        if (!lacksPrivilege(error)) throw error;
        // The runner waited for the lock of a relay that was applying them (the owner's, during
        // an upgrade): with every one recorded now, this role needs no more than it has.
        const pendingNow = await pendingMigrations(client, set);
        if (Array.isArray(pendingNow) && pendingNow.length === 0) {
          options.logger?.debug({ migrations: set.dir }, 'migrations: every one was applied meanwhile');
          return;
        }
        const what = Array.isArray(pendingNow)
          ? `the ${set.dir} migrations ${pendingNow.join(', ')} are not applied`
          : `the ${set.dir} migrations could not be checked (${set.schema}.${set.table}: ${firstLine(pendingNow.unreadable)})`;
        throw new PendingMigrationsError(what, error);
      });
    }
  } finally {
    await client.end();
  }
}

/**
 * The names of the set's migration files (as node-pg-migrate records them: without `.sql`) that
 * its table does not record, read-only; `unreadable` when the table cannot be read (not made yet,
 * or this role may not read it), and only the runner can tell.
 */
async function pendingMigrations(client: pg.Client, set: MigrationSet): Promise<string[] | { unreadable: unknown }> {
  const files = (await readdir(projectPath('migrations', set.dir))).filter((file) => file.endsWith('.sql'));
  let recorded: Set<string>;
  try {
    // Built from the constants above only.
    const table = `${client.escapeIdentifier(set.schema)}.${client.escapeIdentifier(set.table)}`;
    const { rows } = await client.query<{ name: string }>(`select name from ${table}`);
    recorded = new Set(rows.map((row) => row.name));
  } catch (error) {
    return { unreadable: error };
  }
  return files.map((file) => file.slice(0, -'.sql'.length)).filter((name) => !recorded.has(name)).sort();
}

/** Runs the set on a client of our own: node-pg-migrate's would have no 'error' listener (see connectClient). */
async function runSet(options: MigrateOptions, set: MigrationSet): Promise<unknown> {
  const client = await connectClient(options.databaseUrl, connectionLost(options));
  try {
    return await runner({
      dbClient: client,
      dir: projectPath('migrations', set.dir),
      migrationsTable: set.table,
      migrationsSchema: set.schema,
      createMigrationsSchema: true,
      direction: 'up',
      checkOrder: true,
      advisoryLockMode: 'wait',
      log: (message: string) => options.logger?.debug({ migrations: set.dir }, message),
    });
  } finally {
    await client.end();
  }
}

/** A migrations connection that PostgreSQL ended: what it was doing fails by itself, and says why. */
function connectionLost(options: MigrateOptions): (error: Error) => void {
  return (error) => options.logger?.debug({ err: error }, 'migrations: a connection to PostgreSQL ended');
}

/**
 * Whether PostgreSQL refused for lack of privilege. node-pg-migrate rethrows the database's error
 * from most steps, but wraps the one from its table check in a new Error holding only its text.
 */
function lacksPrivilege(error: unknown): boolean {
  for (let e: unknown = error; e instanceof Error; e = e.cause) {
    if ((e as { code?: unknown }).code === INSUFFICIENT_PRIVILEGE) return true;
    if (/\b(permission denied|must be owner of)\b/.test(firstLine(e))) return true;
  }
  return false;
}

function firstLine(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.split('\n', 1)[0] ?? '';
}
