// A relay whose database role does not own the `relay` schema, holding exactly the grants the
// README lists (read from the README itself): it starts on a database the owner migrated, and
// everything it does works; a migration the owner has not applied stops it with a message that
// says which one and who must apply it.
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import t, { type Test } from 'tap';
import { projectPath } from '../../src/project-root.ts';
import { untilTrue } from '../helpers/backend-waits.ts';
import { changeCatalog } from '../helpers/catalog.ts';
import { databaseUrlAs } from '../helpers/database-url.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/database.ts';
import { drawPositionEarly, relayWaitsForCommitters } from '../helpers/early-position.ts';
import { positionAt } from '../helpers/event-log.ts';
import { nextFrame, subscribe } from '../helpers/frames.ts';
import { guarded } from '../helpers/guard.ts';
import { watchLogLines } from '../helpers/log-lines.ts';
import { anotherRelayMigrating } from '../helpers/migration-lock.ts';
import { launchTestRelay, startTestRelay, type TestRelay } from '../helpers/relay.ts';
import type { Frame } from '../helpers/ws-client.ts';

const ADMIN = { role: 'admin', sub: 'admin-1' };
const AUDITOR = { role: 'auditor', sub: 'aud-1' };
/** The role name in the README's grants, replaced by each test's own role. */
const README_ROLE = 'relay_service';
/** A guard only: one retention pass runs every second here. */
const PRUNE_GUARD_MS = 15_000;
/** pino's level number for warn: this and above are warnings, errors and fatal lines. */
const WARN_LEVEL = 40;

const isEvent = (frame: Frame): boolean => frame.type === 'event';

/** The README's grants for a relay role that does not own the schema, for `role`. */
async function readmeGrants(role: string): Promise<string> {
  const readme = await readFile(projectPath('README.md'), 'utf8');
  const block = [...readme.matchAll(/```sql\n([\s\S]*?)```/g)].map((match) => match[1]!).find((sql) => sql.includes(`to ${README_ROLE};`));
  if (!block) throw new Error(`README.md has no sql block of grants to ${README_ROLE}`);
  return block.replaceAll(new RegExp(`\\b${README_ROLE}\\b`, 'g'), role);
}

/**
 * A login role of this test, with the README's grants on `db`, and a URL of `db` for it. Roles are
 * cluster-wide: its grants are dropped and the role with them when the test ends, after the relay
 * that uses it (teardowns run last-registered first).
 */
async function relayRole(t: Test, db: TestDatabase): Promise<{ name: string; url: string }> {
  const name = `relay_nonowner_${randomBytes(6).toString('hex')}`;
  // The embedded PostgreSQL asks for a password; the machine's may trust 127.0.0.1.
  const password = randomBytes(12).toString('hex');
  await db.pool.query(`create role ${name} login password '${password}'`);
  t.teardown(async () => {
    await db.pool.query(`drop owned by ${name}`);
    await db.pool.query(`drop role ${name}`);
  });
  await db.pool.query(await readmeGrants(name));
  const { rows } = await db.pool.query<{ owner: string }>(`select nspowner::regrole::text as owner from pg_namespace where nspname = 'relay'`);
  if (rows[0]?.owner === name) throw new Error('the test role must not own the relay schema');
  return { name, url: databaseUrlAs(db.url, name, password) };
}

async function insertOrder(relay: TestRelay, id: string): Promise<void> {
  await relay.db.pool.query(`insert into orders (id, hospital_id, status) values ($1, 'H1', 'placed')`, [id]);
}

function warningsAndErrors(relay: TestRelay): Record<string, unknown>[] {
  return relay.logLines.filter((line) => typeof line.level === 'number' && line.level >= WARN_LEVEL);
}

t.test('a relay whose role holds only the README grants serves, delivers, replays, reloads grants and prunes', async (t) => {
  const db = await createTestDatabase(t);
  const role = await relayRole(t, db);

  const relay = await startTestRelay(t, { DATABASE_URL: role.url }, db);
  t.equal((await fetch(`${relay.httpUrl}/health`)).status, 200, 'GET /health answers 200');
  t.equal((await fetch(`${relay.httpUrl}/metrics`)).status, 200, 'GET /metrics answers 200');

  const live = await relay.connect(ADMIN);
  t.match(await subscribe(live, 'orders'), { type: 'subscribed' }, 'a subscriber subscribes');
  await insertOrder(relay, 'o1');
  const first = await nextFrame(live, 'the live order o1', isEvent);
  t.match(first, { topic: 'orders', event: 'insert', data: { id: 'o1' } }, 'and gets a live event (the wake-up bell rang)');

  // A position drawn early and still open holds back a later commit: the relay waits for it.
  const early = await drawPositionEarly(db.pool, t, 'o2');
  await insertOrder(relay, 'o3');
  await relayWaitsForCommitters(db.pool);
  await early.query('commit');
  t.match(await nextFrame(live, 'the order o2, committed after the relay waited for it', isEvent), { data: { id: 'o2' } }, 'it waits for committers');
  t.match(await nextFrame(live, 'the order o3', isEvent), { data: { id: 'o3' } }, 'and delivers in commit order');

  await changeCatalog(relay, `select relay.allow('orders', 'auditor')`);
  const auditor = await relay.connect(AUDITOR);
  t.match(await subscribe(auditor, 'orders'), { type: 'subscribed' }, 'a grant made while it runs is reloaded');

  const resumed = await relay.connect(ADMIN);
  t.match(await subscribe(resumed, 'orders', { since: first.cursor }), { type: 'subscribed' }, 'a resume with since is accepted');
  const replayed = await resumed.take(2, isEvent);
  t.strictSame(
    replayed.map((frame) => (frame.data as Record<string, unknown>).id),
    ['o2', 'o3'],
    'and replays what followed the cursor',
  );
  t.strictSame(warningsAndErrors(relay), [], 'no warning or error was logged');
  await relay.stop();

  // Retention after the replay: with events pruned after a second, the replay above would race it.
  const pruning = await startTestRelay(t, { DATABASE_URL: role.url, RELAY_RETENTION: '1s' }, db);
  const lastPos = positionAt(String(replayed.at(-1)!.cursor)).pos;
  const logs = watchLogLines(pruning.logLines);
  await guarded(
    untilTrue(db.pool, `select not exists (select from relay.commits where pos <= ${lastPos})`),
    PRUNE_GUARD_MS,
    `the relay pruning the commits through position ${lastPos}`,
  );
  await logs.waitFor((line) => line.msg === 'retention: pruned old events', { timeoutMs: PRUNE_GUARD_MS, what: 'the retention log line' });
  t.pass('retention pruned the old events (relay.prune)');
  t.strictSame(warningsAndErrors(pruning), [], 'no warning or error was logged while pruning');
});

t.test('a migration the owner has not applied stops the relay, naming it and who must apply it', async (t) => {
  const db = await createTestDatabase(t);
  const role = await relayRole(t, db);
  const { rows } = await db.pool.query<{ name: string }>(`delete from relay.migrations where id = (select max(id) from relay.migrations) returning name`);
  const missing = rows[0]!.name;

  const launched = await launchTestRelay(t, { DATABASE_URL: role.url }, db);
  const error = await launched.serving.then(
    () => undefined,
    (reason: unknown) => reason,
  );
  t.ok(error instanceof Error, 'the relay does not start');
  const message = error instanceof Error ? error.message : '';
  t.match(message, missing, `the message names the migration that is not applied: ${message}`);
  t.match(message, /role that owns the relay schema/, 'says who must apply it');
  t.match((error as Error).cause, { message: /permission denied/ }, "and keeps the database's refusal as its cause (the log line ends with it)");
});

t.test('a relay that waited for the owner applying a migration starts once it is applied', async (t) => {
  const db = await createTestDatabase(t);
  const role = await relayRole(t, db);
  // The owner's relay is applying the last migration: not recorded yet, its lock held.
  const migrating = await anotherRelayMigrating(t, db);

  const launched = await launchTestRelay(t, { DATABASE_URL: role.url }, db);
  const outcome = launched.serving.then(
    () => undefined,
    (reason: unknown) => reason,
  );
  await untilTrue(
    db.pool,
    `select exists (select 1 from pg_locks l join pg_stat_activity a using (pid)
                     where l.locktype = 'advisory' and not l.granted and a.usename = '${role.name}')`,
  );
  // The owner's migration commits, recorded, and its lock is let go.
  await migrating.finish();

  const error = await outcome;
  t.equal(error, undefined, `it starts, every migration being applied by then (${error instanceof Error ? error.message : ''})`);
});
