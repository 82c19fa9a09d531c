import { runner } from 'node-pg-migrate';
import { projectPath } from '../project-root.ts';
import type { Logger } from 'pino';

/** The relay's own schema, then (optionally) the example application, each with its own history. */
const MIGRATION_SETS = {
  relay: { dir: 'relay', table: 'migrations', schema: 'relay' },
  example: { dir: 'example', table: 'example_migrations', schema: 'relay' },
} as const;

export interface MigrateOptions {
  readonly databaseUrl: string;
  readonly includeExample: boolean;
  readonly logger?: Logger;
}

/** Applies pending migrations; concurrent relays wait for each other on node-pg-migrate's lock. */
export async function runMigrations(options: MigrateOptions): Promise<void> {
  const sets = options.includeExample ? [MIGRATION_SETS.relay, MIGRATION_SETS.example] : [MIGRATION_SETS.relay];
  for (const set of sets) {
    await runner({
      databaseUrl: options.databaseUrl,
      dir: projectPath('migrations', set.dir),
      migrationsTable: set.table,
      migrationsSchema: set.schema,
      createMigrationsSchema: true,
      direction: 'up',
      checkOrder: true,
      advisoryLockMode: 'wait',
      log: (message: string) => options.logger?.debug({ migrations: set.dir }, message),
    });
  }
}
