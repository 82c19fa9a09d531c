// A transaction that drew its commit position early (SET CONSTRAINTS ALL IMMEDIATE, or PREPARE
// TRANSACTION) and commits after RELAY_RETENTION has passed: its stamp is the time of the draw, and
// retention deleted it as it committed, before any relay delivered it, and every relay closed its
// connections with 1011 (found by a review helper). Retention now counts from when a commit was
// seen committed (migration 1767200000000). Here it runs right after the commit, as another
// relay's pass may.
import { randomBytes } from 'node:crypto';
import t from 'tap';
import { createTestDatabase } from '../helpers/database.ts';
import { nextFrame, subscribe } from '../helpers/frames.ts';
import { startTestRelay } from '../helpers/relay.ts';
import { twoPhaseCommitOff } from '../helpers/two-phase.ts';
import type { Frame } from '../helpers/ws-client.ts';

const ADMIN = { role: 'admin', sub: 'admin-1' };
const idOf = (frame: Frame): string => String((frame.data as Record<string, unknown>).id);

const twoPhaseOff = await twoPhaseCommitOff((await createTestDatabase(t)).pool);

for (const how of ['set constraints all immediate', 'prepare transaction'] as const) {
  t.test(`${how}: a commit after the retention has passed is delivered and kept`, { skip: how === 'prepare transaction' && twoPhaseOff }, async (t) => {
    const relay = await startTestRelay(t, { RELAY_RETENTION: '90s' });
    const live = await relay.connect(ADMIN);
    t.match(await subscribe(live, 'orders'), { type: 'subscribed' });
    await relay.db.pool.query(`insert into orders (id, hospital_id, status) values ('before', 'H1', 'placed')`);
    const before = await nextFrame(live, 'the order before');

    const writer = await relay.db.pool.connect();
    t.teardown(() => writer.release());
    const gid = `late-commit-${randomBytes(4).toString('hex')}`;
    t.teardown(() => relay.db.pool.query(`rollback prepared '${gid}'`).catch(() => undefined));
    await writer.query('begin');
    await writer.query(`insert into orders (id, hospital_id, status) values ('held', 'H1', 'placed')`);
    // The stamp must not NOTIFY if the transaction is to be prepared: the bell disarmed just before.
    await writer.query(`select setval('relay.wakeup_wanted', 0); set constraints all immediate`);
    // Stands for a transaction open for two minutes since it drew its position (RELAY_RETENTION=90s).
    await writer.query(`update relay.commits set committed_at = committed_at - interval '2 minutes' where xid = pg_current_xact_id()`);
    if (how === 'prepare transaction') {
      await writer.query(`prepare transaction '${gid}'`);
      await writer.query(`commit prepared '${gid}'`);
      await writer.query(`select relay.prune('90 seconds', 5000)`);
    } else {
      await writer.query(`commit; select relay.prune('90 seconds', 5000)`);
    }
    await relay.db.pool.query(`insert into orders (id, hospital_id, status) values ('after', 'H1', 'placed')`);

    const outcome = await Promise.race([
      live.closed().then(({ code, reason }) => `closed ${code} (${reason})`),
      nextFrame(live, 'the next order').then((frame) => `received ${idOf(frame)}`),
    ]);
    t.equal(outcome, 'received held', 'the live subscriber receives the committed order "held"');
    const again = await relay.connect(ADMIN);
    t.match(await subscribe(again, 'orders', { since: before.cursor }), { type: 'subscribed' }, 'a resume from the order before is not cursor_expired');
    t.strictSame([idOf(await nextFrame(again, 'the first replayed')), idOf(await nextFrame(again, 'the second replayed'))], ['held', 'after'], 'and replays both orders');
  });
}
