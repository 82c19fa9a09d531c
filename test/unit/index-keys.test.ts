import t from 'tap';
import { parseJsonExactly, parseUntrustedJsonExactly } from '../../src/exact-json.ts';
import { indexKeys, indexValueOf, type IndexKeys } from '../../src/filters/index-keys.ts';
import { columnValue, matchesFilter } from '../../src/filters/match-filter.ts';
import { CLAIMS, resolvedOf } from './fixtures.ts';

function keysOf(filter: unknown): IndexKeys {
  const resolved = resolvedOf(filter, CLAIMS);
  if (resolved === null) throw new Error(`test filter does not resolve: ${JSON.stringify(filter)}`);
  return indexKeys(resolved);
}

const FILTERS_AND_KEYS: Array<[unknown, IndexKeys]> = [
  [{}, 'unindexed'],
  [{ h: 'H7' }, [{ column: 'h', values: ['"H7"'] }]],
  [{ h: { claim: 'hid' } }, [{ column: 'h', values: ['"H7"'] }]],
  [{ q: 3 }, [{ column: 'q', values: ['3'] }]],
  [{ c: null }, [{ column: 'c', values: ['null'] }]],
  [{ c: true }, [{ column: 'c', values: ['true'] }]],
  [{ q: { gt: 3 } }, 'unindexed'],
  [{ q: { ne: 3 } }, 'unindexed'],
  [{ not: { h: 'H7' } }, 'unindexed'],
  [{ s: { in: ['a', 'b', 'a'] } }, [{ column: 's', values: ['"a"', '"b"'] }]],
  [{ m: { in: { claim: 'merchant_ids' } } }, [{ column: 'm', values: ['"m1"', '"m2"'] }]],
  [{ s: { in: [] } }, [{ column: 's', values: [] }]],
  // A conjunction picks its narrowest indexed part.
  [{ s: { in: ['a', 'b'] }, h: 'H7' }, [{ column: 'h', values: ['"H7"'] }]],
  [{ q: { gt: 1 }, s: { in: ['a'] } }, [{ column: 's', values: ['"a"'] }]],
  [{ q: { gt: 1, lt: 9 } }, 'unindexed'],
  [{ and: [{ q: { gt: 1 } }, { or: [{ h: 'H1' }, { h: 'H2' }] }] }, [{ column: 'h', values: ['"H1"', '"H2"'] }]],
  // A disjunction needs every branch indexed and gets the union.
  [
    { or: [{ h: 'H1' }, { h: 'H2' }, { c: 'x' }, { h: 'H1', q: { gt: 0 } }] },
    [
      { column: 'h', values: ['"H1"', '"H2"'] },
      { column: 'c', values: ['"x"'] },
    ],
  ],
  [{ or: [{ h: 'H1' }, { q: { gt: 0 } }] }, 'unindexed'],
];

t.test('index keys of filters', async (t) => {
  for (const [filter, expected] of FILTERS_AND_KEYS) t.same(keysOf(filter), expected, JSON.stringify(filter));
});

const ROWS: Array<Record<string, unknown>> = [
  {},
  { h: 'H7' },
  { h: 'H1', q: 1 },
  { h: 'H2', q: 5, s: 'a' },
  { h: null, c: 'x', s: 'b' },
  { q: 3, c: true, m: 'm2' },
  { h: { nested: 1 }, s: 'c' },
  { q: '3', m: 'm3' },
];

t.test('every row a filter matches hits one of its index keys', async (t) => {
  let checked = 0;
  for (const [filter] of FILTERS_AND_KEYS) {
    const resolved = resolvedOf(filter, CLAIMS);
    const keys = resolved === null ? 'unindexed' : indexKeys(resolved);
    if (resolved === null || keys === 'unindexed') continue;
    for (const row of ROWS) {
      if (!matchesFilter(resolved, row)) continue;
      checked += 1;
      const hit = keys.some(({ column, values }) => values.includes(indexValueOf(columnValue(row, column)) ?? '\u0000'));
      t.ok(hit, `${JSON.stringify(row)} matches ${JSON.stringify(filter)} and hits one of its keys`);
    }
  }
  t.ok(checked >= 8, `enough matching pairs were checked (${checked})`);
});

t.test('index values are canonical JSON of scalars only', async (t) => {
  t.equal(indexValueOf('H7'), '"H7"');
  t.equal(indexValueOf(7), '7');
  t.equal(indexValueOf(-0), '0');
  t.equal(indexValueOf(null), 'null');
  t.equal(indexValueOf(false), 'false');
  t.equal(indexValueOf({ a: 1 }), undefined);
  t.equal(indexValueOf([1]), undefined);
  t.equal(indexValueOf(undefined), undefined);
});

t.test('numbers kept as text: every row a filter matches exactly hits one of its keys', async (t) => {
  // Keys stay on doubles; equal decimals round to equal doubles, so an exact match is a candidate.
  const filters = [
    '{"a":9007199254740993}',
    '{"a":{"in":[9007199254740993,1e400,1.5]}}',
    '{"a":9007199254740992}',
    '{"a":1e-400}',
    '{"a":{"in":[3.0000000000000001]}}',
  ];
  const rows = [
    '{"a":9007199254740993}',
    '{"a":9007199254740992}',
    `{"a":1${'0'.repeat(400)}}`,
    '{"a":1.50}',
    `{"a":0.${'0'.repeat(399)}1}`,
    '{"a":3.0000000000000001}',
  ];
  let checked = 0;
  for (const filterText of filters) {
    const resolved = resolvedOf(parseUntrustedJsonExactly(filterText), CLAIMS)!;
    const keys = indexKeys(resolved);
    for (const rowText of rows) {
      const row = parseJsonExactly(rowText) as Record<string, unknown>;
      if (!matchesFilter(resolved, row) || keys === 'unindexed') continue;
      checked += 1;
      const hit = keys.some(({ column, values }) => values.includes(indexValueOf(columnValue(row, column)) ?? '\u0000'));
      t.ok(hit, `${rowText.slice(0, 40)} matches ${filterText} and hits one of its keys`);
    }
  }
  t.equal(checked, 7, 'every filter matched its rows: 1 + 3 + 1 + 1 + 1');
  const exact = (text: string): unknown => (parseJsonExactly(`{"a":${text}}`) as Record<string, unknown>).a;
  t.equal(indexValueOf(exact('9007199254740993')), '9007199254740992', 'keyed as the nearest double');
  t.equal(indexValueOf(exact(`1${'0'.repeat(400)}`)), 'Infinity', 'past a double: a key no JSON scalar has');
});
