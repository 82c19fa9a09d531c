// `npm test`: one PostgreSQL for the whole run (embedded unless DATABASE_URL names one), a migrated
// template database that every test file clones, then tap on the compiled tests. Test files find
// both through the env.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { startEmbeddedPostgres, type EmbeddedDatabase } from '../src/db/embedded.ts';
import { runMigrations } from '../src/db/migrate.ts';
import { projectPath } from '../src/project-root.ts';
import { compiledTestArgs } from './compiled-test-files.ts';
import { databaseUrlFor } from './helpers/database-url.ts';

async function main(): Promise<number> {
  const tapArgs = compiledTestArgs(process.argv.slice(2), projectPath());
  let embedded: EmbeddedDatabase | undefined;
  const adminUrl =
    process.env.DATABASE_URL ??
    (embedded = await startEmbeddedPostgres({ dir: projectPath('.relay', `test-${process.pid}`), temporary: true }))
      .url;
  const template = `relay_template_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    const { rows } = await admin.query<{ server_version: string }>('show server_version');
    console.log(`# PostgreSQL ${rows[0]?.server_version} (${embedded ? 'embedded' : 'DATABASE_URL'})`);
    await admin.query(`create database ${template}`);
    await runMigrations({ databaseUrl: databaseUrlFor(adminUrl, template), includeExample: true });
    const code = await runTap(tapArgs, {
      ...process.env,
      RELAY_TEST_ADMIN_URL: adminUrl,
      RELAY_TEST_TEMPLATE: template,
    });
    return code;
  } finally {
    await admin.query(`drop database if exists ${template} with (force)`).catch(() => undefined);
    await admin.end();
    await embedded?.stop();
  }
}

function runTap(args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((resolve) => {
    const tap = spawn('npx', ['tap', ...args], { stdio: 'inherit', env });
    tap.on('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0)));
  });
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error('test run failed before tap started:', error);
    process.exit(1);
  },
);
