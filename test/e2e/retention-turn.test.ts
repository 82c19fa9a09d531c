// relay.prune lets one relay prune at a time. It took its turn with an advisory lock, which needs no
// privilege: any role that could connect (here one with no right on schema relay) could hold it,
// in an idle session or in a prepared transaction that outlives its session, and every relay then
// skipped every pass, silently, while the log grew (found by a review helper). The turn is now a
// row lock that only the schema's owner can take (migration 1767200000000).
import { randomBytes } from 'node:crypto';
import t from 'tap';
import { createTestDatabase } from '../helpers/database.ts';
import { watchLogLines } from '../helpers/log-lines.ts';
import { startTestRelay, type TestRelay } from '../helpers/relay.ts';
import { connectAs } from '../helpers/test-role.ts';
import { twoPhaseCommitOff } from '../helpers/two-phase.ts';

async function oldCommits(relay: TestRelay): Promise<number> {
  const { rows } = await relay.db.pool.query<{ n: number }>(`select count(*)::int as n from relay.commits where committed_at < now() - interval '1 minute'`);
  return rows[0]!.n;
}

async function writeOldEvents(relay: TestRelay, n: number, tag: string): Promise<void> {
  for (let i = 0; i < n; i++) await relay.db.pool.query(`insert into orders (id, hospital_id, status) values ($1, 'H1', 'placed')`, [`${tag}-${i}`]);
  // Older than any retention the relay could have (RELAY_RETENTION=1s here).
  await relay.db.pool.query(`update relay.commits set committed_at = committed_at - interval '1 hour'`);
}

t.test('a role with no rights on schema relay cannot stop retention by holding an advisory lock', async (t) => {
  const relay = await startTestRelay(t, { RELAY_RETENTION: '1s' });
  const logs = watchLogLines(relay.logLines);

  // Control: retention works.
  await writeOldEvents(relay, 3, 'control');
  await logs.waitFor((line) => line.msg === 'retention: pruned old events', { timeoutMs: 10_000, what: 'the control prune' });
  t.equal(await oldCommits(relay), 0, 'control: the relay prunes events older than RELAY_RETENTION=1s by itself');

  // An intruder: no privilege on schema relay or anything else, only CONNECT (PUBLIC's default).
  const { client: intruder } = await connectAs(t, relay.db);
  const { rows: who } = await intruder.query<{ usage: boolean }>(`select has_schema_privilege('relay', 'usage') as usage`);
  t.equal(who[0]!.usage, false, 'the intruder has no USAGE on schema relay');
  await intruder.query('select pg_advisory_lock(1919250028, 1885430626)');

  await writeOldEvents(relay, 3, 'kept');
  const mark = logs.mark();
  const pruned = await logs
    .waitFor((line) => line.msg === 'retention: pruned old events', { after: mark, timeoutMs: 8_000, what: 'a prune while the intruder holds the lock' })
    .then(
      () => 'pruned',
      () => 'nothing pruned within 8 s (about 8 retention passes)',
    );
  const { rows } = await relay.db.pool.query<{ pruned: number }>(`select relay.prune('1 second', 5000) as pruned`);
  const left = await oldCommits(relay);
  const said = relay.logLines.slice(mark).filter((line) => String(line.msg).includes('retention'));
  t.equal(
    pruned,
    'pruned',
    `retention goes on: ${left} commits an hour old are still in the log, relay.prune('1 second') called by the owner returns ${rows[0]!.pruned}, ` +
      `and the relay logged ${said.length} line(s) about retention`,
  );
  await intruder.query('select pg_advisory_unlock_all()');
});

t.test("a role that reads relay.log_identity (a relay's own) cannot lock its row, which is retention's turn", async (t) => {
  const db = await createTestDatabase(t);
  const { client: reader } = await connectAs(t, db, ['grant usage on schema relay to $role', 'grant select on relay.log_identity to $role']);
  for (const strength of ['key share', 'share', 'no key update', 'update']) {
    await t.rejects(reader.query(`select from relay.log_identity for ${strength}`), { code: '42501' }, `for ${strength}: permission denied`);
  }
});

const twoPhaseOff = await twoPhaseCommitOff((await createTestDatabase(t)).pool);

t.test('a PREPAREd transaction of a role with no rights cannot hold the retention turn with no session left', { skip: twoPhaseOff }, async (t) => {
  const relay = await startTestRelay(t, { RELAY_RETENTION: '1s' });
  const logs = watchLogLines(relay.logLines);
  const gid = `retention-turn-${randomBytes(4).toString('hex')}`;
  // Never leave a prepared transaction behind: it would keep the database from being dropped.
  t.teardown(() => relay.db.pool.query(`rollback prepared '${gid}'`).catch(() => undefined));

  const { client: intruder } = await connectAs(t, relay.db);
  await intruder.query('begin');
  await intruder.query('select pg_advisory_xact_lock(1919250028, 1885430626)');
  await intruder.query(`prepare transaction '${gid}'`);
  // Its session may end: the prepared transaction keeps the lock.
  const { rows: prepared } = await relay.db.pool.query<{ n: number }>(`select count(*)::int as n from pg_prepared_xacts where gid = $1`, [gid]);
  t.equal(prepared[0]!.n, 1, 'the prepared transaction exists');

  await writeOldEvents(relay, 3, 'kept');
  const mark = logs.mark();
  const pruned = await logs
    .waitFor((line) => line.msg === 'retention: pruned old events', { after: mark, timeoutMs: 8_000, what: 'a prune' })
    .then(
      () => 'pruned',
      () => 'nothing pruned within 8 s',
    );
  t.equal(pruned, 'pruned', `retention goes on (${await oldCommits(relay)} commits an hour old left in the log)`);
});
