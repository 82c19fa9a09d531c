// Filters x claims x event data -> delivered or not.
import { LosslessNumber } from 'lossless-json';
import t from 'tap';
import type { Claims } from '../../src/events.ts';
import { parseJsonExactly, parseUntrustedJsonExactly } from '../../src/exact-json.ts';
import type { ResolvedFilter } from '../../src/filters/filter-ast.ts';
import { matchesFilter } from '../../src/filters/match-filter.ts';
import { CLAIMS, resolvedOf } from './fixtures.ts';

interface Case {
  readonly filter: unknown;
  readonly data: Record<string, unknown>;
  readonly expected: boolean;
  readonly claims?: Claims;
}

/** One filter against several rows: [data, expected]. */
function rows(filter: unknown, ...cases: Array<[Record<string, unknown>, boolean]>): Case[] {
  return cases.map(([data, expected]) => ({ filter, data, expected }));
}

const cases: Case[] = [
  ...rows({}, [{}, true], [{ a: 1 }, true]),
  // eq: strict JSON equality of scalars.
  ...rows({ status: 'new' }, [{ status: 'new' }, true], [{ status: 'old' }, false], [{}, false]),
  ...rows({ id: 1 }, [{ id: 1 }, true], [{ id: '1' }, false], [{ id: 1.0 }, true], [{ id: true }, false]),
  ...rows({ id: '1' }, [{ id: 1 }, false], [{ id: '1' }, true]),
  ...rows({ ok: true }, [{ ok: true }, true], [{ ok: 1 }, false], [{ ok: 'true' }, false]),
  // A missing column compares as null.
  ...rows({ c: null }, [{ c: null }, true], [{}, true], [{ c: 0 }, false], [{ c: '' }, false], [{ c: false }, false]),
  ...rows({ c: { ne: 5 } }, [{ c: 5 }, false], [{ c: '5' }, true], [{}, true], [{ c: null }, true]),
  ...rows({ c: { ne: null } }, [{}, false], [{ c: null }, false], [{ c: 0 }, true]),
  // Non-scalar data never equals a scalar.
  ...rows({ rider: 1 }, [{ rider: { id: 1 } }, false], [{ rider: [1] }, false]),
  ...rows({ rider: { ne: 1 } }, [{ rider: { id: 1 } }, true]),
  ...rows({ rider: { in: [1] } }, [{ rider: [1] }, false]),
  // Ordering: numbers numerically, strings by code unit, anything else false.
  ...rows({ qty: { lt: 3 } }, [{ qty: 2 }, true], [{ qty: 3 }, false], [{ qty: -1.5 }, true]),
  ...rows({ qty: { lte: 3 } }, [{ qty: 3 }, true], [{ qty: 4 }, false]),
  ...rows({ qty: { gt: 3 } }, [{ qty: 4 }, true], [{ qty: 3 }, false], [{ qty: 10 }, true]),
  ...rows({ qty: { gte: 3 } }, [{ qty: 3 }, true], [{ qty: 2.99 }, false]),
  ...rows({ qty: { gt: 3, lte: 10 } }, [{ qty: 3 }, false], [{ qty: 5 }, true], [{ qty: 10 }, true], [{ qty: 11 }, false]),
  ...rows({ qty: { lt: '10' } }, [{ qty: 3 }, false], [{ qty: '1' }, true], [{ qty: '9' }, false]),
  ...rows({ qty: { lt: 10 } }, [{ qty: '3' }, false], [{}, false], [{ qty: null }, false], [{ qty: { n: 1 } }, false]),
  ...rows({ qty: { gte: null } }, [{ qty: null }, false], [{}, false]),
  ...rows({ f: { lt: true } }, [{ f: false }, false]),
  ...rows(
    { created_at: { gte: '2024-01-01T00:00:00Z', lt: '2024-02-01T00:00:00Z' } },
    [{ created_at: '2024-01-15T08:30:00Z' }, true],
    [{ created_at: '2023-12-31T23:59:59Z' }, false],
    [{ created_at: '2024-02-01T00:00:00Z' }, false],
  ),
  // in: membership with the same equality as eq.
  ...rows({ s: { in: ['a', 'b'] } }, [{ s: 'a' }, true], [{ s: 'b' }, true], [{ s: 'c' }, false], [{}, false]),
  ...rows({ s: { in: [1, null] } }, [{ s: '1' }, false], [{ s: 1 }, true], [{}, true]),
  ...rows({ s: { in: [] } }, [{ s: 'a' }, false], [{}, false]),
  // Combinators.
  ...rows({ and: [{ a: 1 }, { b: 2 }] }, [{ a: 1, b: 2 }, true], [{ a: 1, b: 3 }, false]),
  ...rows({ a: 1, b: 2 }, [{ a: 1, b: 2 }, true], [{ a: 2, b: 2 }, false]),
  ...rows({ or: [{ a: 1 }, { b: 2 }] }, [{ a: 1 }, true], [{ b: 2 }, true], [{ a: 2, b: 1 }, false]),
  ...rows({ not: { a: 1 } }, [{ a: 1 }, false], [{ a: 2 }, true], [{}, true]),
  ...rows({ not: { or: [{ a: 1 }, { and: [{ b: 2 }, { c: { gt: 0 } }] }] } }, [{ b: 2, c: 1 }, false], [{ b: 2, c: 0 }, true]),
  // Own properties only: inherited names are missing columns, own `__proto__` is a column.
  ...rows({ constructor: null }, [{}, true]),
  ...rows({ toString: { ne: null } }, [{}, false]),
  ...rows(JSON.parse('{"__proto__":"x"}'), [JSON.parse('{"__proto__":"x"}') as Record<string, unknown>, true], [{}, false]),
  // Claims.
  ...rows({ hospital_id: { claim: 'hid' } }, [{ hospital_id: 'H7' }, true], [{ hospital_id: 'H8' }, false]),
  ...rows({ org_id: { claim: 'org.id' } }, [{ org_id: 'o1' }, true], [{ org_id: 'o2' }, false]),
  ...rows({ hospital_id: { claim: 'https://example.com/hid' } }, [{ hospital_id: 'H9' }, true]),
  ...rows({ qty: { lte: { claim: 'n' } } }, [{ qty: 5 }, true], [{ qty: 6 }, false]),
  ...rows({ ok: { claim: 'flag' } }, [{ ok: true }, true], [{ ok: 'true' }, false]),
  ...rows({ merchant_id: { in: { claim: 'merchant_ids' } } }, [{ merchant_id: 'm2' }, true], [{ merchant_id: 'm3' }, false]),
  // Missing or mistyped claims: the filter never matches, even where the row would otherwise pass.
  ...rows({ hospital_id: { claim: 'hospital_id' } }, [{}, false], [{ hospital_id: null }, false]),
  ...rows({ not: { hospital_id: { claim: 'missing' } } }, [{ hospital_id: 'H7' }, false], [{}, false]),
  ...rows({ or: [{ a: 1 }, { b: { claim: 'missing' } }] }, [{ a: 1 }, false]),
  ...rows({ c: { claim: 'nothing' } }, [{ c: null }, false], [{}, false]),
  ...rows({ not: { c: { claim: 'nothing' } } }, [{ c: 1 }, false]),
  ...rows({ c: { claim: 'org' } }, [{ c: { id: 'o1' } }, false]),
  ...rows({ c: { claim: 'merchant_ids' } }, [{ c: 'm1' }, false]),
  ...rows({ c: { in: { claim: 'sub' } } }, [{ c: 'u1' }, false]),
  ...rows({ c: { in: { claim: 'mixed_ids' } } }, [{ c: 'm1' }, false]),
  ...rows({ c: { in: { claim: 'null_ids' } } }, [{ c: 'm1' }, false], [{}, false]),
  ...rows({ c: { in: { claim: 'merchant_ids.length' } } }, [{ c: 2 }, false]),
  ...rows({ c: { claim: 'merchant_ids.0' } }, [{ c: 'm1' }, false]),
  ...rows({ c: { claim: 'constructor' } }, [{ c: null }, false]),
];

t.test('filters x claims x data', async (t) => {
  for (const { filter, data, expected, claims } of cases) {
    const resolved = resolvedOf(filter, claims ?? CLAIMS);
    const delivered = resolved !== null && matchesFilter(resolved, data);
    t.equal(delivered, expected, `${JSON.stringify(filter)} on ${JSON.stringify(data)}`);
  }
});

// Rows as the event log parses them, filters and claims as a client's frame or a token's payload
// are parsed: numbers a double would change are kept as text on every side.
const row = (text: string): Record<string, unknown> => parseJsonExactly(text) as Record<string, unknown>;
const json = (text: string): unknown => parseUntrustedJsonExactly(text);

t.test('numbers compare by exact decimal value, as jsonb compares them', async (t) => {
  const claims = json('{"acc":9007199254740993,"accs":[9007199254740993,7],"two53":9007199254740992}') as Claims;
  const cases: Array<[string, string, boolean]> = [
    // A grant's or a client's literal.
    ['{"account_id":9007199254740993}', '{"account_id":9007199254740993}', true],
    ['{"account_id":9007199254740993}', '{"account_id":9007199254740992}', false],
    ['{"account_id":9007199254740992}', '{"account_id":9007199254740993}', false],
    ['{"account_id":9007199254740992}', '{"account_id":9007199254740992}', true],
    ['{"account_id":1234567890123456789}', '{"account_id":1234567890123456790}', false],
    ['{"account_id":{"ne":9007199254740993}}', '{"account_id":9007199254740992}', true],
    ['{"account_id":{"ne":9007199254740993}}', '{"account_id":9007199254740993}', false],
    // A claim.
    ['{"account_id":{"claim":"acc"}}', '{"account_id":9007199254740993}', true],
    ['{"account_id":{"claim":"acc"}}', '{"account_id":9007199254740992}', false],
    ['{"account_id":{"claim":"two53"}}', '{"account_id":9007199254740992}', true],
    ['{"account_id":{"claim":"two53"}}', '{"account_id":9007199254740993}', false],
    // in, with literals and with an array claim.
    ['{"account_id":{"in":[9007199254740993,1]}}', '{"account_id":9007199254740993}', true],
    ['{"account_id":{"in":[9007199254740993,1]}}', '{"account_id":9007199254740992}', false],
    ['{"account_id":{"in":[9007199254740992,1]}}', '{"account_id":9007199254740992}', true],
    ['{"account_id":{"in":{"claim":"accs"}}}', '{"account_id":9007199254740993}', true],
    ['{"account_id":{"in":{"claim":"accs"}}}', '{"account_id":9007199254740992}', false],
    ['{"account_id":{"in":{"claim":"accs"}}}', '{"account_id":7.0}', true],
    // Ranges.
    ['{"level":{"lte":3}}', '{"level":3.0000000000000001}', false],
    ['{"level":{"lt":3}}', '{"level":2.9999999999999999}', true],
    ['{"level":{"gt":3}}', '{"level":3.0000000000000001}', true],
    ['{"level":{"gte":3.0000000000000001}}', '{"level":3}', false],
    ['{"level":{"lt":3.0000000000000002}}', '{"level":3.0000000000000001}', true],
    ['{"n":{"gt":-9007199254740993}}', '{"n":-9007199254740992}', true],
    ['{"n":{"lt":-9007199254740992}}', '{"n":-9007199254740993}', true],
    ['{"n":{"gt":1e-400}}', '{"n":0}', false],
    ['{"n":{"gt":0}}', '{"n":0.0000000000000000000000000000000000000000000000000000000001}', true],
    ['{"n":{"lt":1e400}}', `{"n":1${'0'.repeat(400)}}`, false],
    ['{"n":{"lte":1e400}}', `{"n":1${'0'.repeat(400)}}`, true],
    // One value, however written.
    ['{"n":1e0}', '{"n":1.0}', true],
    ['{"n":12.5}', '{"n":12.50000000000000000000}', true],
    ['{"n":9.007199254740993e15}', '{"n":9007199254740993}', true],
    ['{"n":-0}', '{"n":0}', true],
    // Never a string.
    ['{"account_id":"9007199254740993"}', '{"account_id":9007199254740993}', false],
    ['{"account_id":9007199254740993}', '{"account_id":"9007199254740993"}', false],
    ['{"account_id":{"lt":9007199254740994}}', '{"account_id":"9007199254740993"}', false],
  ];
  for (const [filter, data, expected] of cases) {
    const resolved = resolvedOf(json(filter), claims);
    t.equal(resolved !== null && matchesFilter(resolved, row(data)), expected, `${filter} on ${data}`);
  }
});

// A filter is evaluated for every event of its topic, for every subscriber whose filter the index
// cannot use: work that depends on the filter alone must be done once, not per event. Counted in
// reads of the filter's parts (no clock): a 1,000-value `in` list scanned per event, and a number's
// digits read per comparison, made one subscription cost up to 470 µs of every event
// (/tmp/exh/bench/filter-cost.mjs in the review that found it).
t.test('filter work is done once per filter, not per event', async (t) => {
  const evaluations = 100;

  t.test('an `in` list is read once, however many events it is tested against', async (t) => {
    let reads = 0;
    const values = new Proxy(Array.from({ length: 1000 }, (_, i) => `v${i}`), {
      get(target, key, receiver) {
        if (typeof key === 'string' && /^\d+$/.test(key)) reads++;
        return Reflect.get(target, key, receiver) as unknown;
      },
    });
    const filter: ResolvedFilter = { kind: 'not', child: { kind: 'in', column: 'status', values } };
    for (let i = 0; i < evaluations; i++) t.equal(matchesFilter(filter, { status: `other${i}` }), true);
    t.ok(matchesFilter(filter, { status: 'v999' }) === false, 'a listed value still matches');
    t.ok(reads <= values.length, `list values read ${reads} times for ${evaluations + 1} events (at most ${values.length})`);
  });

  t.test("a number kept as text is read once, however many comparisons it is in", async (t) => {
    let reads = 0;
    const counted = (text: string): LosslessNumber =>
      new Proxy(new LosslessNumber(text), {
        get(target, key, receiver) {
          if (key === 'value') reads++;
          return Reflect.get(target, key, receiver) as unknown;
        },
      });
    // The filter's number: no double holds it, and it rounds to the row's 5, so its digits decide.
    const filter: ResolvedFilter = { kind: 'compare', op: 'ne', column: 'qty', value: counted(`5.${'0'.repeat(200)}1`) };
    for (let i = 0; i < evaluations; i++) t.equal(matchesFilter(filter, { qty: 5 }), true);
    t.ok(reads <= 2, `the filter's number was read ${reads} times for ${evaluations} events (at most 2)`);
    // A row's big number against an `in` list of 1,000 numbers: looked up, not compared with each.
    reads = 0;
    const list: ResolvedFilter = { kind: 'in', column: 'id', values: Array.from({ length: 1000 }, (_, i) => i) };
    t.equal(matchesFilter(list, { id: counted('12345678901234567890') }), false);
    t.ok(reads <= 2, `the row's number was read ${reads} times against 1,000 values (at most 2)`);
  });
});
