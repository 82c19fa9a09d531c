// Contract section 2: grants take effect on running relays within a second. A relay learns of a
// change from a notification on relay_catalog; these tests take that notification away (it went
// out before the relay listened, or the reload it triggered failed) and check that the change is
// applied all the same, instead of a revoked grant serving on until the next change.
import t, { type Test } from 'tap';
import { untilTrue } from '../helpers/backend-waits.ts';
import { changeCatalog } from '../helpers/catalog.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/database.ts';
import { framesBeforePong, nextFrame, subscribe } from '../helpers/frames.ts';
import { watchLogLines } from '../helpers/log-lines.ts';
import { launchTestRelay, startTestRelay } from '../helpers/relay.ts';
import { startTcpProxy } from '../helpers/tcp-proxy.ts';
import type { Frame } from '../helpers/ws-client.ts';

const ADMIN = { role: 'admin', sub: 'admin-1' };
const AUDITOR = { role: 'auditor', sub: 'aud-1' };

const isEvent = (frame: Frame): boolean => frame.type === 'event';

/** This file's database; its pool ignores errors of connections the tests terminate. */
async function testDatabase(t: Test): Promise<TestDatabase> {
  const db = await createTestDatabase(t);
  db.pool.on('error', () => undefined);
  return db;
}

t.test('a grant committed after the relay read its catalog, before it listened, still takes effect', async (t) => {
  const db = await testDatabase(t);
  const server = new URL(db.url);
  const proxy = await startTcpProxy({ host: server.hostname, port: Number(server.port || 5432) });
  t.teardown(() => proxy.close());
  // The relay reads its catalog, then starts listening: the server's reply to its first LISTEN waits
  // here, so the grant below commits before the relay listens to relay_catalog.
  const caught = proxy.holdRepliesAfter('LISTEN relay_events');
  const launched = await launchTestRelay(t, { DATABASE_URL: proxy.urlFor(db.url) }, db);
  t.teardown(() => proxy.releaseReplies());
  await caught;
  await db.pool.query(`select relay.allow('orders', 'auditor')`);
  proxy.releaseReplies();
  const relay = await launched.serving;

  const { rows } = await db.pool.query<{ grants: number }>(`select count(*)::int as grants from relay.grants`);
  await watchLogLines(relay.logLines).waitFor((line) => line.msg === 'catalog loaded' && line.grants === rows[0]!.grants, {
    what: `the relay loading the grant that committed before it listened (${rows[0]!.grants} grants)`,
  });
  const auditor = await relay.connect(AUDITOR);
  t.strictSame(await subscribe(auditor, 'orders'), { type: 'subscribed', topic: 'orders' }, 'the auditor may subscribe');
});

/**
 * A relay whose auditor holds a live subscription to orders (and an admin witness); then a revoke
 * whose catalog reload is held on relay.watches (the reload reads it last) and ended by `stop`,
 * the server function given the pid of the held backend.
 */
async function revokeWithFailedReload(t: Test, stop: 'pg_cancel_backend' | 'pg_terminate_backend') {
  const db = await testDatabase(t);
  const relay = await startTestRelay(t, {}, db);
  const logs = watchLogLines(relay.logLines);
  await changeCatalog(relay, `select relay.allow('orders', 'auditor')`);
  const witness = await relay.connect(ADMIN);
  await subscribe(witness, 'orders');
  const auditor = await relay.connect(AUDITOR);
  t.strictSame(await subscribe(auditor, 'orders'), { type: 'subscribed', topic: 'orders' });

  const blocker = await db.pool.connect();
  t.teardown(() => blocker.release());
  await blocker.query(`begin; lock table relay.watches in access exclusive mode`);
  const failed = logs.waitFor((line) => line.msg === 'cannot reload grants; keeping the previous ones', {
    what: 'the reload after the revoke failing',
  });
  await db.pool.query(`select relay.revoke('orders', 'auditor')`);
  await untilTrue(db.pool, `select exists (select from pg_locks where relation = 'relay.watches'::regclass and not granted)`);
  await db.pool.query(`select ${stop}(pid) from pg_locks where relation = 'relay.watches'::regclass and not granted`);
  await failed;
  await blocker.query('rollback');
  return { db, relay, witness, auditor };
}

t.test('a connection lost while the relay reloads its catalog does not end the relay', async (t) => {
  const { db, relay, witness } = await revokeWithFailedReload(t, 'pg_terminate_backend');
  await db.pool.query(`insert into orders (id, hospital_id) values ('o1', 'H1')`);
  t.match(await nextFrame(witness, 'the order committed after the failed reload', isEvent), { data: { id: 'o1' } });
  const late = await relay.connect(ADMIN);
  t.strictSame(await subscribe(late, 'orders'), { type: 'subscribed', topic: 'orders' }, 'the relay still serves');
});

t.test('a revoke whose catalog reload failed still ends the subscription, and nothing follows', async (t) => {
  const { db, witness, auditor } = await revokeWithFailedReload(t, 'pg_cancel_backend');
  t.match(
    await nextFrame(auditor, 'the forbidden frame after relay.revoke'),
    { type: 'error', code: 'forbidden', topic: 'orders' },
    'the revoked subscription ends although the reload the revoke asked for failed',
  );
  await db.pool.query(`insert into orders (id, hospital_id) values ('o1', 'H1')`);
  t.match(await nextFrame(witness, 'the order', isEvent), { data: { id: 'o1' } });
  t.strictSame(await framesBeforePong(auditor), [], 'no order reaches the revoked auditor');
});
