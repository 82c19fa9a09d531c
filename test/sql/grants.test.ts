// relay.allow / relay.revoke (contract section 2): a bad filter fails in the caller's SQL with a
// message saying where; good ones are stored once; every change is announced on `relay_catalog`.

import t from 'tap';
import { createTestDatabase } from '../helpers/database.ts';
import { listenOn } from '../helpers/notifications.ts';
import { GRANT_FILTER_LIMITS, parseFilter } from '../../src/filters/parse-filter.ts';
import { parseClientMessage } from '../../src/protocol/client-messages.ts';

const db = await createTestDatabase(t);

/** `{"not": {"not": ... {} }}` with `levels` nots: the innermost object is at depth levels + 1. */
function nestedNots(levels: number): unknown {
  let filter: unknown = {};
  for (let i = 0; i < levels; i++) filter = { not: filter };
  return filter;
}

async function allow(topic: string, role: string, filter: unknown, columns: string[] | null = null): Promise<void> {
  await db.pool.query(`select relay.allow($1, $2, $3::jsonb, $4)`, [topic, role, JSON.stringify(filter), columns]);
}

async function grantsOf(topic: string, role: string): Promise<Array<{ filter: unknown; columns: string[] | null }>> {
  const { rows } = await db.pool.query<{ filter: unknown; columns: string[] | null }>(
    `select filter, columns from relay.grants where topic = $1 and role = $2 order by id`,
    [topic, role],
  );
  return rows;
}

// [what it is, filter, where the message must point and what it must say]
const BAD_FILTERS: Array<[string, unknown, RegExp]> = [
  ['an unknown operator', { status: { like: 'x%' } }, /filter\.status: unknown operator "like"/],
  ['an unknown operator beside a good one', { qty: { gt: 1, between: [1, 2] } }, /filter\.qty: unknown operator "between"/],
  ['`in` with a string', { status: { in: 'placed' } }, /filter\.status\.in: expected an array/],
  ['`in` with a number', { qty: { in: 3 } }, /filter\.qty\.in: expected an array/],
  ['`in` with an object in the list', { qty: { in: [1, { a: 1 }] } }, /filter\.qty\.in: expected only/],
  ['`in` with a nested array', { qty: { in: [[1]] } }, /filter\.qty\.in: expected only/],
  ['an object as an operand', { status: { eq: { a: 1 } } }, /filter\.status\.eq: expected a value .*got an object/],
  ['an array as a value', { status: ['a', 'b'] }, /filter\.status: expected a value, got an array/],
  ['an array as an operand', { status: { ne: ['a'] } }, /filter\.status\.ne: expected a value, got an array/],
  ['an empty operator object', { status: {} }, /filter\.status: expected a value or operators, got \{\}/],
  ['a JSON array as the filter', [], /filter: expected an object, got array/],
  ['a JSON string as the filter', 'status', /filter: expected an object, got string/],
  ['JSON null as the filter', null, /filter: expected an object, got null/],
  ['an empty `and`', { and: [] }, /filter\.and: expected a non-empty array of filters/],
  ['an empty `or` inside `and`', { and: [{ a: 1 }, { or: [] }] }, /filter\.and\[1\]\.or: expected a non-empty array/],
  ['`and` with an object', { and: { a: 1 } }, /filter\.and: expected a non-empty array/],
  ['a non-object in `or`', { or: [{ a: 1 }, 2] }, /filter\.or\[1\]: expected an object, got number/],
  ['`not` with an array', { not: [{ a: 1 }] }, /filter\.not: expected an object, got array/],
  ['a claim path that is a number', { hospital_id: { claim: 5 } }, /filter\.hospital_id\.claim: expected a dotted claim path string/],
  ['a claim path that is an array', { merchant_id: { in: { claim: ['ids'] } } }, /filter\.merchant_id\.in\.claim: expected/],
  ['an empty claim path', { hospital_id: { eq: { claim: '' } } }, /filter\.hospital_id\.eq\.claim: empty segment in claim path/],
  ['a claim object with another key', { hospital_id: { claim: 'h', eq: 1 } }, /filter\.hospital_id: expected a value/],
  ['a claim inside an `in` list', { merchant_id: { in: [{ claim: 'm' }] } }, /filter\.merchant_id\.in: expected only/],
  ['nesting deeper than 16 levels', nestedNots(16), /filter(\.not){16}: nested deeper than 16 levels/],
  ['deep nesting through `and`', { and: [nestedNots(15)] }, /filter\.and\[0\](\.not){15}: nested deeper than 16 levels/],
];

t.test('relay.allow refuses a bad filter with an SQL error saying where', async (t) => {
  for (const [what, filter, message] of BAD_FILTERS) {
    await t.rejects(allow('orders', 'tester', filter), { code: '22023', message }, what);
  }
  t.same(await grantsOf('orders', 'tester'), [], 'none of them was stored');
});

t.test('relay.allow refuses a bad columns list', async (t) => {
  await t.rejects(allow('orders', 'tester', {}, []), { code: '22023', message: /columns must be null or a non-empty list/ });
  await t.rejects(db.pool.query(`select relay.allow('orders', 'tester', '{}', array['id', null])`), { code: '22023' });
  t.same(await grantsOf('orders', 'tester'), []);
});

const GOOD_FILTERS: Array<[string, unknown]> = [
  ['match everything', {}],
  ['bare equality', { status: 'placed' }],
  ['equality with null, a number and a boolean', { driver_id: null, qty: 3, paid: true }],
  ['every comparison operator', { a: { eq: 1 }, b: { ne: 'x' }, c: { lt: 1.5 }, d: { lte: 2 }, e: { gt: -1 }, f: { gte: 0 } }],
  ['several operators on one column', { qty: { gt: 1, lte: 10 } }],
  ['`in` with a list of scalars', { status: { in: ['placed', 'picked_up', 1, true, null] } }],
  ['`in` with an empty list', { status: { in: [] } }],
  ['`in` with a claim', { merchant_id: { in: { claim: 'merchant_ids' } } }],
  ['a bare claim', { hospital_id: { claim: 'hospital_id' } }],
  ['a claim as an operand', { customer_id: { eq: { claim: 'sub' } }, qty: { lte: { claim: 'limits.qty' } } }],
  ['a namespaced claim', { hospital_id: { claim: 'https://example.com/hospital' } }],
  ['and / or / not', { and: [{ a: 1 }, { or: [{ b: 2 }, { not: { c: 3 } }] }] }],
  ['16 levels of nesting', nestedNots(15)],
  ['a column named like an operator', { in: 'x', eq: { eq: 1 } }],
];

t.test('relay.allow accepts every construct of the filter language', async (t) => {
  for (const [what, filter] of GOOD_FILTERS) {
    await t.resolves(allow('good', 'tester', filter), what);
  }
  t.same(
    (await grantsOf('good', 'tester')).map((g) => g.filter),
    GOOD_FILTERS.map(([, filter]) => filter),
    'each stored as given',
  );
});

// Contract: a filter that does not parse is refused by relay.allow. A grant that SQL accepts and
// the relay refuses is stored without a word and then delivers nothing; a filter that SQL refuses
// and the relay accepts is one a subscriber may use but an operator cannot grant.
const AGREEMENT_CORPUS: Array<[string, unknown]> = [
  ...BAD_FILTERS.map(([what, filter]): [string, unknown] => [what, filter]),
  ...GOOD_FILTERS,
  ['a claim path with an empty segment', { hospital_id: { claim: 'org..hospital' } }],
  ['a claim path starting with a dot', { hospital_id: { claim: '.hospital' } }],
  ['1001 values in `in` lists', { qty: { in: Array.from({ length: 1001 }, (_, i) => i) } }],
  ['1000 values in `in` lists', { qty: { in: Array.from({ length: 1000 }, (_, i) => i) } }],
  ['300 conditions', { or: Array.from({ length: 300 }, (_, i) => ({ [`c${i}`]: i })) }],
  ['200 conditions', { or: Array.from({ length: 200 }, (_, i) => ({ [`c${i}`]: i })) }],
];

interface Verdicts {
  readonly what: string;
  /** relay.filter_error's message, null when relay.allow would accept the filter. */
  readonly sqlProblem: string | null;
  readonly relay: ReturnType<typeof parseFilter>;
}

async function judgeCorpus(): Promise<Verdicts[]> {
  const verdicts: Verdicts[] = [];
  for (const [what, filter] of AGREEMENT_CORPUS) {
    const { rows } = await db.pool.query<{ problem: string | null }>(`select relay.filter_error($1::jsonb) as problem`, [
      JSON.stringify(filter),
    ]);
    verdicts.push({ what, sqlProblem: rows[0]?.problem ?? null, relay: parseFilter(filter, GRANT_FILTER_LIMITS) });
  }
  return verdicts;
}

t.test('relay.allow accepts no filter that the relay refuses', async (t) => {
  const accepted = (await judgeCorpus()).filter((v) => v.sqlProblem === null && !v.relay.ok);
  t.same(
    accepted.map((v) => `${v.what}: relay.allow accepts it, the relay refuses it (${v.relay.ok ? '' : v.relay.error})`),
    [],
    'a grant the relay cannot use fails in SQL',
  );
});

t.test('relay.allow refuses no filter that the relay accepts', async (t) => {
  const refused = (await judgeCorpus()).filter((v) => v.sqlProblem !== null && v.relay.ok);
  t.same(
    refused.map((v) => `${v.what}: relay.allow refuses it (${v.sqlProblem}), the relay accepts it`),
    [],
    'subscription filters and grant filters are one language',
  );
});

t.test('relay.allow is idempotent for identical arguments', async (t) => {
  const filter = { hospital_id: { claim: 'hospital_id' }, status: { ne: 'cancelled' } };
  await allow('idem', 'hospital', filter);
  await allow('idem', 'hospital', filter);
  await db.pool.query(`select relay.allow('idem', 'hospital', '{"status": {"ne": "cancelled"}, "hospital_id": {"claim": "hospital_id"}}')`);
  t.equal((await grantsOf('idem', 'hospital')).length, 1, 'the same grant (keys in any order) is stored once');

  await allow('idem', 'hospital', filter, ['id', 'status']);
  await allow('idem', 'hospital', filter, ['id', 'status']);
  await allow('idem', 'hospital', { status: 'placed' });
  t.same(
    await grantsOf('idem', 'hospital'),
    [
      { filter, columns: null },
      { filter, columns: ['id', 'status'] },
      { filter: { status: 'placed' }, columns: null },
    ],
    'other columns or another filter make another alternative',
  );

  await db.pool.query(`select relay.allow('idem', 'everyone')`);
  await db.pool.query(`select relay.allow('idem', 'everyone', '{}')`);
  t.same(await grantsOf('idem', 'everyone'), [{ filter: {}, columns: null }], 'the default filter is {}');
});

t.test('relay.allow warns of a column that no table watched as the topic has, and grants all the same', async (t) => {
  await db.pool.query(`
    create table warned (id text primary key, hospital_id text, status text, secret text);
    create table warned_listed (id text primary key, hospital_id text, status text, secret text);
    select relay.watch('warned', 'warned'), relay.watch('warned_listed', 'warned_listed', array['id', 'status'])`);
  const client = await db.pool.connect();
  t.teardown(() => client.release());
  const warnings: Array<{ message: string; detail: string | undefined; hint: string | undefined }> = [];
  client.on('notice', (notice) => {
    if (notice.severity === 'WARNING') warnings.push({ message: notice.message ?? '', detail: notice.detail, hint: notice.hint });
  });
  /** The warnings of one relay.allow call, awaited with it (a notice arrives before the reply). */
  const warningsOf = async (topic: string, filter: unknown, columns: string[] | null = null): Promise<string[]> => {
    warnings.length = 0;
    await client.query(`select relay.allow($1, 'warned_role', $2::jsonb, $3)`, [topic, JSON.stringify(filter), columns]);
    return warnings.map((w) => w.message);
  };

  t.same(await warningsOf('warned', { hospital_id: 'h1', or: [{ status: 'placed' }, { not: { id: 'x' } }] }, ['id', 'secret']), [], 'known columns: no warning');
  t.same(
    await warningsOf('warned', { hopsital_id: 'h1', or: [{ status: 'placed' }, { not: { stauts: 'x' } }] }),
    [`relay: no table watched as topic 'warned' has the column(s) hopsital_id, stauts that this grant names`],
    'misspelt filter columns, at any depth',
  );
  t.match(warnings[0]?.hint, /relay\.publish/, 'the hint says when the column may be fine');
  // A filter reads a missing column as null: `ne` on a misspelt column matches every row change.
  t.match(warnings[0]?.detail, /ne, not or a test for null matches them all/, 'the detail says which such filters match every row change');
  t.same(
    await warningsOf('warned', {}, ['id', 'nope']),
    [`relay: no table watched as topic 'warned' has the column(s) nope that this grant names`],
    'a misspelt column of the list',
  );
  t.same(
    await warningsOf('warned_listed', { hospital_id: 'h1' }, ['secret', 'status']),
    [`relay: no table watched as topic 'warned_listed' has the column(s) hospital_id, secret that this grant names`],
    'a column of the table that the watch leaves out',
  );
  t.same(await warningsOf('warned_published_only', { anything: 1 }, ['at', 'all']), [], 'a topic no table watches: no check');
  const { rows } = await db.pool.query<{ n: number }>(`select count(*)::int as n from relay.grants where role = 'warned_role'`);
  t.equal(rows[0]?.n, 5, 'every grant was made');
});

t.test('relay.revoke removes all of a role’s grants on a topic, and nothing else', async (t) => {
  await allow('rev', 'driver', { driver_id: { claim: 'sub' } });
  await allow('rev', 'driver', { status: 'open' }, ['id']);
  await allow('rev', 'admin', {});
  await allow('rev_other', 'driver', {});
  await db.pool.query(`select relay.revoke('rev', 'driver')`);
  t.same(await grantsOf('rev', 'driver'), []);
  t.equal((await grantsOf('rev', 'admin')).length, 1, 'another role keeps its grant');
  t.equal((await grantsOf('rev_other', 'driver')).length, 1, 'the role keeps its grant on another topic');
  await db.pool.query(`select relay.revoke('rev', 'nobody')`);
  t.pass('revoking what does not exist is harmless');
});

// Topic names at the edges of what a subscriber may name: control characters (C0, DEL, C1) and
// their neighbours, which are printable.
const TOPIC_CORPUS = ['orders\n', 'a\u0001b', 'tab\there', 'del\u007f', 'c1\u0080', 'nel\u0085', 'c1\u009f', 'nbsp\u00a0', 'space here', 'zero\u200bwidth', 'emoji 🏥', 'ünï'];

t.test('relay.allow, relay.watch and relay.publish take exactly the topics a subscriber can name', async (t) => {
  for (const [index, topic] of TOPIC_CORPUS.entries()) {
    const subscribable = parseClientMessage(JSON.stringify({ type: 'subscribe', topic })).ok;
    const table = `topic_corpus_${index}`;
    await db.pool.query(`create table ${table} (id int primary key)`);
    const made = [
      ['relay.allow', () => db.pool.query(`select relay.allow($1, 'admin', '{}')`, [topic])],
      ['relay.watch', () => db.pool.query(`select relay.watch($1, $2)`, [table, topic])],
      ['relay.publish', () => db.pool.query(`select relay.publish($1, 'e', '{}')`, [topic])],
    ] as const;
    for (const [what, query] of made) {
      if (subscribable) await t.resolves(query(), `${what} takes ${JSON.stringify(topic)}, which subscribers can name`);
      else await t.rejects(query(), { code: /^(23514|22023)$/, message: /control[ _]characters/ }, `${what} refuses ${JSON.stringify(topic)}, which no subscriber can name`);
    }
  }
  const { rows } = await db.pool.query<{ count: number }>(
    `select count(*)::int from relay.topics where topic ~ '[\x01-\x1f\x7f-\x9f]'`,
  );
  t.equal(rows[0]!.count, 0, 'no topic with a control character was made');
});

t.test('a topic is known once it is watched or granted', async (t) => {
  await allow('granted_only', 'admin', {});
  await db.pool.query(`create table watched_only (id int primary key)`);
  await db.pool.query(`select relay.watch('watched_only', 'watched_only')`);
  const { rows } = await db.pool.query<{ topic: string }>(
    `select topic from relay.topics where topic in ('granted_only', 'watched_only', 'never') order by topic`,
  );
  t.same(
    rows.map((r) => r.topic),
    ['granted_only', 'watched_only'],
  );
});

t.test('grant and watch changes are announced on relay_catalog at commit', async (t) => {
  const catalog = await listenOn(db.url, 'relay_catalog', (payload) => payload);
  t.teardown(() => catalog.close());
  await allow('announced', 'admin', {});
  t.equal(await catalog.next(), 'grants', 'relay.allow');
  await db.pool.query(`select relay.revoke('announced', 'admin')`);
  t.equal(await catalog.next(), 'grants', 'relay.revoke');
  await db.pool.query(`create table announced (id int primary key)`);
  await db.pool.query(`select relay.watch('announced', 'announced')`);
  t.equal(await catalog.next(), 'watches', 'relay.watch');
  await db.pool.query(`select relay.unwatch('announced')`);
  t.equal(await catalog.next(), 'watches', 'relay.unwatch');

  const client = await db.pool.connect();
  try {
    await client.query('begin');
    await client.query(`select relay.allow('announced', 'rolled_back')`);
    await client.query('rollback');
  } finally {
    client.release();
  }
  await db.pool.query(`select relay.watch('announced', 'announced')`);
  t.equal(await catalog.next(), 'watches', 'a rolled-back grant announced nothing (the next message is the watch)');
  t.same(await grantsOf('announced', 'rolled_back'), []);
});

// PostgreSQL compiles a query whose estimated cost passes jit_above_cost (100,000 by default) when
// it was built with LLVM, as Debian's PostgreSQL 15 is; the embedded one is not.
const { rows: jitRows } = await db.pool.query<{ available: boolean }>(`select pg_jit_available() as available`);
const JIT_UNAVAILABLE = jitRows[0]?.available
  ? false
  : 'this PostgreSQL cannot JIT-compile (no LLVM, as the embedded one): run with DATABASE_URL naming one that can';

t.test('relay.allow is not JIT-compiled: a grant is made in milliseconds, not the 300 ms of a compile', { skip: JIT_UNAVAILABLE }, async (t) => {
  // Estimated as costly (a recursive walk of the filter), check_grant's reading of the filter's
  // columns was compiled on every call: relay.allow took 300 to 450 ms on PostgreSQL 15, and the
  // relay loaded a new grant at up to 971 ms of the second the contract allows.
  const client = await db.pool.connect();
  t.teardown(() => client.release(true)); // with its settings changed, not for the pool again
  const compiles: string[] = [];
  client.on('notice', (notice) => {
    if (/^time to inline/.test(notice.message ?? '')) compiles.push(notice.message ?? '');
  });
  await client.query(`set client_min_messages = debug1`);
  await client.query(`set jit_above_cost = 0`);
  await client.query(`select sum(n) from generate_series(1, 10) n`);
  t.equal(compiles.length, 1, 'a compile is seen: a query made to compile reports it');
  await client.query(`reset jit_above_cost`);
  compiles.length = 0;
  await client.query(`select relay.allow('orders', 'jit_role', $1::jsonb, array['id', 'status'])`, [
    JSON.stringify({ hospital_id: 'h1', or: [{ status: 'placed' }, { not: { id: 'x' } }] }),
  ]);
  t.same(compiles, [], 'relay.allow compiled nothing');
});
