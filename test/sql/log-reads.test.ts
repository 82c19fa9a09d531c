// The relay's two reads of the log (live: relay.read_log_commits; replay: relay.read_log_page, in
// the forms with a byte budget that the relay calls, sql/read-log-*.sql) cost
// about as many event rows as they return, wherever the cursor is: in the middle of a commit of
// 20,000 events, before it, on a log that was never analyzed, with a topic filter. A read that
// sorted or scanned the rest of the log instead made each page of a replay cost the whole backlog. The same
// holds for retention's batches (relay.prune). What a statement touched is counted from
// PostgreSQL's own plan (auto_explain, with actual row counts).

import pg from 'pg';
import t from 'tap';
import { createTestDatabase } from '../helpers/database.ts';

const BIG_COMMIT = 20_000;
const PAGE = 100;
/** The reads' byte budget, set past these small events: the pages here are cut by count. */
const NO_BYTE_CUT = 1024 * 1024 * 1024;

/**
 * Event rows a read of `page` events may go through: the page, as many events of another topic
 * skipped on the way, and what an incremental sort reads ahead of the next commits (32 rows).
 */
function allowance(page: number): number {
  return 2 * page + 32;
}

const db = await createTestDatabase(t);

// One commit of BIG_COMMIT events of two topics, then small commits of one event each. Nothing
// analyzes these tables on purpose: the plans must not depend on statistics.
await db.pool.query(
  `select relay.publish(case when n % 2 = 0 then 'ticks' else 'tocks' end, 'tick', jsonb_build_object('n', n))
     from generate_series(1, $1::int) n`,
  [BIG_COMMIT],
);
for (let n = 1; n <= 20; n++) await db.pool.query(`select relay.publish('ticks', 'small', jsonb_build_object('n', $1::int))`, [n]);

const { rows: commitRows } = await db.pool.query<{ pos: string; first_id: string; last_id: string }>(
  `select c.pos, min(e.id) as first_id, max(e.id) as last_id
     from relay.commits c join relay.events e on e.xid = c.xid
    group by c.pos order by c.pos`,
);
const big = commitRows[0]!;
const end = commitRows.at(-1)!;
const middleId = (BigInt(big.first_id) + BigInt(BIG_COMMIT / 2)).toString();

/** auto_explain is loaded per session, which PostgreSQL allows superusers only (as npm test runs). */
async function canLoadAutoExplain(): Promise<boolean> {
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  try {
    await client.query(`load 'auto_explain'`);
    return true;
  } catch (error) {
    if ((error as { code?: string }).code === '42501') return false;
    throw error;
  } finally {
    await client.end();
  }
}
const skip = (await canLoadAutoExplain()) ? false : 'this role may not load auto_explain (a superuser may): the reads are not counted';

interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  'Actual Rows'?: number;
  'Actual Loops'?: number;
  'Rows Removed by Filter'?: number;
  Plans?: PlanNode[];
}

/** Runs `sql` with auto_explain reporting every nested statement's plan, with actual row counts. */
async function withPlans<T extends pg.QueryResultRow>(
  sql: string,
  values: unknown[],
  url = db.url,
): Promise<{ rows: T[]; plans: PlanNode[] }> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const plans: PlanNode[] = [];
  client.on('notice', (notice) => {
    const text = notice.message ?? '';
    const json = text.slice(text.indexOf('{'));
    if (text.startsWith('duration:') && json.includes('"Plan"')) plans.push((JSON.parse(json) as { Plan: PlanNode }).Plan);
  });
  try {
    await client.query(`load 'auto_explain'`);
    for (const setting of [
      'auto_explain.log_min_duration = 0',
      'auto_explain.log_nested_statements = on',
      'auto_explain.log_analyze = on',
      'auto_explain.log_timing = off',
      'auto_explain.log_format = json',
      'auto_explain.log_level = notice',
      'client_min_messages = notice',
    ]) {
      await client.query(`set ${setting}`);
    }
    const { rows } = await client.query<T>(sql, values);
    return { rows, plans };
  } finally {
    await client.end();
  }
}

/** Rows that plan nodes reading relay.events went through (kept or filtered out), over all loops. */
function eventRowsRead(node: PlanNode): number {
  const perLoop = (node['Actual Rows'] ?? 0) + (node['Rows Removed by Filter'] ?? 0);
  const own = node['Relation Name'] === 'events' ? perLoop * (node['Actual Loops'] ?? 1) : 0;
  return own + (node.Plans ?? []).reduce((sum, child) => sum + eventRowsRead(child), 0);
}

/** Whether the plan joins by hashing or scans relay.events or relay.commits from end to end. */
function scansOrHashes(node: PlanNode): boolean {
  const scansLog = node['Node Type'] === 'Seq Scan' && (node['Relation Name'] === 'events' || node['Relation Name'] === 'commits');
  return scansLog || node['Node Type'] === 'Hash Join' || (node.Plans ?? []).some(scansOrHashes);
}

/** The plan of the statement inside the function: the one that reads relay.events. */
function innerPlan(plans: PlanNode[]): PlanNode {
  const inner = plans.find((plan) => eventRowsRead(plan) > 0);
  if (!inner) throw new Error(`no plan read relay.events (${plans.length} plans reported)`);
  return inner;
}

t.test('a replay page from the middle of a commit of 20,000 events reads about a page of events', { skip }, async (t) => {
  const { rows, plans } = await withPlans<{ id: string; topic: string }>(
    `select id, topic from relay.read_log_page($1, $2, $3, $4, 'ticks', $5, $6)`,
    [big.pos, middleId, end.pos, end.last_id, PAGE, NO_BYTE_CUT],
  );
  t.equal(rows.length, PAGE, 'a full page');
  t.ok(
    rows.every((row, i) => row.topic === 'ticks' && (i === 0 || BigInt(row.id) > BigInt(rows[i - 1]!.id))),
    'of the topic asked for, in id order',
  );
  t.ok(BigInt(rows[0]!.id) > BigInt(middleId), 'after the cursor');
  const plan = innerPlan(plans);
  const read = eventRowsRead(plan);
  // Half the events of that commit are of the other topic: the filter skips them as it goes.
  t.ok(read <= allowance(PAGE), `read ${read} event rows for a page of ${PAGE} (${BIG_COMMIT / 2} remain in that commit)`);
  t.notOk(scansOrHashes(plan), 'no hash join, no sequential scan of the log');
});

t.test('a replay page across commits reads about a page of events', { skip }, async (t) => {
  const { rows, plans } = await withPlans<{ id: string }>(`select id from relay.read_log_page($1, $2, $3, $4, null, $5, $6)`, [
    big.pos,
    big.last_id,
    end.pos,
    end.last_id,
    10,
    NO_BYTE_CUT,
  ]);
  t.equal(rows.length, 10, 'the next ten commits, one event each');
  const read = eventRowsRead(innerPlan(plans));
  t.ok(read <= allowance(10), `read ${read} event rows for a page of 10`);
});

t.test('the live read from before a commit of 20,000 events reads about a page of events', { skip }, async (t) => {
  const { rows, plans } = await withPlans<{ pos: string; id: string }>(`select pos, id from relay.read_log_commits($1, $2, false, $3)`, [
    Number(big.pos) - 1,
    PAGE,
    NO_BYTE_CUT,
  ]);
  t.equal(rows.length, PAGE, 'a full page, cut inside the big commit');
  t.ok(rows.every((row) => row.pos === big.pos), 'all of the big commit');
  t.equal(rows[0]!.id, big.first_id, 'from its first event');
  const plan = innerPlan(plans);
  const read = eventRowsRead(plan);
  t.ok(read <= allowance(PAGE), `read ${read} event rows for a page of ${PAGE} (the commit has ${BIG_COMMIT})`);
  t.notOk(scansOrHashes(plan), 'no hash join, no sequential scan of the log');
});

t.test('a retention batch goes through about the events it deletes, not the whole log', { skip }, async (t) => {
  const log = await createTestDatabase(t);
  // 300 commits of one event each, never analyzed.
  await log.pool.query(`do $$ begin for i in 1..300 loop perform relay.publish('ticks', 'small', '{}'); commit; end loop; end $$`);
  const { rows, plans } = await withPlans<{ pruned: number }>(`select relay.prune('0 seconds', 10) as pruned`, [], log.url);
  t.equal(rows[0]?.pruned, 10, 'one batch of 10 commits');
  const { rows: left } = await log.pool.query<{ events: string }>('select count(*) as events from relay.events');
  t.equal(Number(left[0]?.events), 290, 'and their events, no more');
  const plan = innerPlan(plans);
  const read = eventRowsRead(plan);
  t.ok(read <= allowance(10), `went through ${read} event rows to delete 10 (the log has 300)`);
  t.notOk(scansOrHashes(plan), 'no hash join, no sequential scan of the log');
});
