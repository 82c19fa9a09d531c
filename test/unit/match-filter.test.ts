// Filters x claims x event data -> delivered or not.
import t from 'tap';
import type { Claims } from '../../src/events.ts';
import { parseJsonExactly } from '../../src/exact-json.ts';
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

t.test('a number kept as its text (more digits than a double) compares as the nearest double', async (t) => {
  const data = parseJsonExactly('{"account_id":1234567890123456789}') as Record<string, unknown>;
  const claims = { ...CLAIMS, account: Number('1234567890123456789') } as Claims;
  const matches = (filter: unknown): boolean => {
    const resolved = resolvedOf(filter, claims);
    return resolved !== null && matchesFilter(resolved, data);
  };
  t.ok(matches({ account_id: { claim: 'account' } }), 'equal to the claim, a double as every JSON number of a token');
  t.ok(matches({ account_id: { gt: 1 } }), 'ordered as a number');
  t.ok(matches({ account_id: { in: [1, Number('1234567890123456789')] } }), 'in a list');
  t.notOk(matches({ account_id: '1234567890123456789' }), 'never equal to a string');
});
