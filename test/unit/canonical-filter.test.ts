import t from 'tap';
import { canonicalFilter } from '../../src/filters/canonical-filter.ts';
import { parseUntrustedJsonExactly } from '../../src/exact-json.ts';
import { filterColumns } from '../../src/filters/filter-columns.ts';
import { CLAIMS, filterOf, resolvedOf } from './fixtures.ts';

function textOf(filter: unknown): string {
  const resolved = resolvedOf(filter, CLAIMS);
  if (resolved === null) throw new Error(`test filter does not resolve: ${JSON.stringify(filter)}`);
  return canonicalFilter(resolved);
}

t.test('equivalent forms get the same canonical text', async (t) => {
  const same: Array<[unknown, unknown]> = [
    [{ a: 1, b: 2 }, { b: 2, a: 1 }],
    [{ a: 1, b: 2 }, { and: [{ b: 2 }, { a: 1 }] }],
    [{ and: [{ a: 1 }, { and: [{ b: 2 }, { c: 3 }] }] }, { c: 3, b: 2, a: 1 }],
    [{ or: [{ a: 1 }, { b: 2 }] }, { or: [{ b: 2 }, { or: [{ a: 1 }] }] }],
    [{ q: { gt: 1, lt: 9 } }, { q: { lt: 9, gt: 1 } }],
    [{ s: { in: ['b', 'a', 'b'] } }, { s: { in: ['a', 'b'] } }],
    [{ h: { claim: 'hid' } }, { h: 'H7' }],
    [{ or: [{ a: 1 }, {}] }, {}],
  ];
  for (const [left, right] of same) t.equal(textOf(left), textOf(right), `${JSON.stringify(left)} ~ ${JSON.stringify(right)}`);
});

t.test('different filters get different canonical text', async (t) => {
  const different: Array<[unknown, unknown]> = [
    [{ a: 1 }, { a: '1' }],
    [{ a: 1 }, { a: { ne: 1 } }],
    [{ a: 1 }, { b: 1 }],
    [{ a: 1, b: 2 }, { or: [{ a: 1 }, { b: 2 }] }],
    [{ a: 1 }, { not: { a: 1 } }],
    [{ s: { in: ['a'] } }, { s: { in: ['a', 'b'] } }],
    [{ s: { in: [1] } }, { s: { in: ['1'] } }],
    [{ a: null }, { a: 'null' }],
  ];
  for (const [left, right] of different) {
    t.not(textOf(left), textOf(right), `${JSON.stringify(left)} vs ${JSON.stringify(right)}`);
  }
});

t.test('numbers by exact value: distinct past a double, equal however written', async (t) => {
  const text = (json: string): string => textOf(parseUntrustedJsonExactly(json));
  t.not(text('{"a":1234567890123456789}'), text('{"a":1234567890123456790}'), 'two ids that are one double');
  t.not(text('{"a":{"in":[9007199254740993]}}'), text('{"a":{"in":[9007199254740992]}}'), 'in lists');
  t.not(text('{"a":{"lte":3.0000000000000001}}'), text('{"a":{"lte":3}}'), 'a bound');
  t.not(text('{"a":9007199254740993}'), text('{"a":"9007199254740993"}'), 'a number and a string');
  t.equal(text('{"a":9007199254740993}'), text('{"a":9.007199254740993e15}'), 'one value, two writings');
  t.equal(text('{"a":{"in":[9007199254740993,9.007199254740993e15]}}'), text('{"a":{"in":[9007199254740993]}}'), 'deduplicated');
  t.equal(text('{"a":9007199254740992}'), text('{"a":9007199254740992.0}'), 'a double holds 2^53: one key');
});

t.test('filterColumns lists every referenced column', async (t) => {
  const columns = filterColumns(filterOf({ a: 1, or: [{ b: { gt: 1 } }, { not: { c: { in: { claim: 'x' } } } }] }));
  t.same([...columns].sort(), ['a', 'b', 'c']);
  t.same([...filterColumns(filterOf({}))], []);
});
