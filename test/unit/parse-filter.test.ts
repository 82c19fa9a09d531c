import t from 'tap';
import { parseJsonExactly } from '../../src/exact-json.ts';
import { GRANT_FILTER_LIMITS, parseFilter } from '../../src/filters/parse-filter.ts';

const OPERATORS = '(expected eq, ne, lt, lte, gt, gte, in)';
const SCALAR = 'a JSON scalar (string, number, boolean or null)';

t.test('valid filters compile to the expected tree', async (t) => {
  const cases: Array<[string, unknown]> = [
    ['{}', { kind: 'all' }],
    ['{"a":1}', { kind: 'compare', op: 'eq', column: 'a', value: 1 }],
    ['{"a":null}', { kind: 'compare', op: 'eq', column: 'a', value: null }],
    ['{"a":{"claim":"org.id"}}', { kind: 'compare', op: 'eq', column: 'a', value: { kind: 'claim', path: 'org.id' } }],
    ['{"a":{"ne":"x"}}', { kind: 'compare', op: 'ne', column: 'a', value: 'x' }],
    [
      '{"qty":{"gt":3,"lte":10}}',
      {
        kind: 'and',
        children: [
          { kind: 'compare', op: 'gt', column: 'qty', value: 3 },
          { kind: 'compare', op: 'lte', column: 'qty', value: 10 },
        ],
      },
    ],
    ['{"s":{"in":["a",1,true,null]}}', { kind: 'in', column: 's', values: ['a', 1, true, null] }],
    ['{"m":{"in":{"claim":"merchant_ids"}}}', { kind: 'in', column: 'm', values: { kind: 'claim', path: 'merchant_ids' } }],
    [
      '{"a":1,"b":"x"}',
      {
        kind: 'and',
        children: [
          { kind: 'compare', op: 'eq', column: 'a', value: 1 },
          { kind: 'compare', op: 'eq', column: 'b', value: 'x' },
        ],
      },
    ],
    ['{"or":[{}]}', { kind: 'or', children: [{ kind: 'all' }] }],
    ['{"not":{"a":false}}', { kind: 'not', child: { kind: 'compare', op: 'eq', column: 'a', value: false } }],
    // Only and/or/not are reserved: any other key is a column, even these.
    ['{"claim":"x"}', { kind: 'compare', op: 'eq', column: 'claim', value: 'x' }],
    ['{"in":1}', { kind: 'compare', op: 'eq', column: 'in', value: 1 }],
    ['{"__proto__":{"eq":1}}', { kind: 'compare', op: 'eq', column: '__proto__', value: 1 }],
    ['{"constructor":{"ne":null}}', { kind: 'compare', op: 'ne', column: 'constructor', value: null }],
  ];
  for (const [text, expected] of cases) {
    const result = parseFilter(JSON.parse(text));
    t.same(result, { ok: true, filter: expected }, text);
  }
});

t.test('invalid filters are refused with the path of the offending part', async (t) => {
  const cases: Array<[unknown, string]> = [
    ['[]', 'filter: expected a filter object, got an array'],
    ['null', 'filter: expected a filter object, got null'],
    ['"x"', 'filter: expected a filter object, got a string'],
    ['{"and":[{"a":1},{"b":2},{"qty":{"gtx":1}}]}', `filter.and[2].qty: unknown operator "gtx" ${OPERATORS}`],
    ['{"and":{}}', 'filter.and: expected a non-empty array of filters, got an object'],
    ['{"and":[]}', 'filter.and: expected a non-empty array of filters, got an empty array'],
    ['{"a":1,"or":[]}', 'filter.or: expected a non-empty array of filters, got an empty array'],
    ['{"or":[{},1]}', 'filter.or[1]: expected a filter object, got a number'],
    ['{"not":[]}', 'filter.not: expected a filter object, got an array'],
    ['{"not":{"or":[{"a":{"lt":{}}}]}}', `filter.not.or[0].a.lt: expected ${SCALAR} or a claim reference, got an object`],
    ['{"a":[1]}', `filter.a: expected ${SCALAR}, a claim reference or an object of operators, got an array`],
    ['{"a":{}}', 'filter.a: expected at least one operator (eq, ne, lt, lte, gt, gte, in)'],
    ['{"a":{"eq":[1]}}', `filter.a.eq: expected ${SCALAR} or a claim reference, got an array`],
    ['{"a":{"in":[1,{}]}}', `filter.a.in[1]: expected ${SCALAR}, got an object`],
    ['{"a":{"in":[{"claim":"x"}]}}', `filter.a.in[0]: expected ${SCALAR}, got an object`],
    ['{"a":{"in":"x"}}', 'filter.a.in: expected an array of scalars or a claim reference, got a string'],
    ['{"a":{"claim":"x","eq":1}}', 'filter.a: a claim reference has the single key "claim"'],
    ['{"a":{"claim":1}}', 'filter.a.claim: expected a dotted claim path string, got a number'],
    ['{"a":{"eq":{"claim":"x..y"}}}', 'filter.a.eq.claim: empty segment in claim path "x..y"'],
    ['{"a":{"claim":""}}', 'filter.a.claim: empty segment in claim path ""'],
    ['{"odd key":{"gtx":1}}', `filter["odd key"]: unknown operator "gtx" ${OPERATORS}`],
    ['{"a":{"__proto__":1}}', `filter.a: unknown operator "__proto__" ${OPERATORS}`],
    ['{"a":{"constructor":1}}', `filter.a: unknown operator "constructor" ${OPERATORS}`],
    ['{"a":{"toString":1}}', `filter.a: unknown operator "toString" ${OPERATORS}`],
  ];
  for (const [text, error] of cases) {
    t.same(parseFilter(JSON.parse(text as string)), { ok: false, error }, text as string);
  }
});

t.test('values JSON cannot hold are refused too', async (t) => {
  const cases: Array<[unknown, string]> = [
    [{ a: Infinity }, `filter.a: expected ${SCALAR}, a claim reference or an object of operators, got a non-finite number`],
    [{ a: { gt: NaN } }, `filter.a.gt: expected ${SCALAR} or a claim reference, got a non-finite number`],
    [{ a: undefined }, `filter.a: expected ${SCALAR}, a claim reference or an object of operators, got undefined`],
    // A Date has no own keys: read as an object it would be `{}`, the filter that matches everything.
    [new Date(0), 'filter: expected a filter object, got an object'],
    [{ not: new Map() }, 'filter.not: expected a filter object, got an object'],
  ];
  for (const [value, error] of cases) t.same(parseFilter(value), { ok: false, error }, error);
  t.same(parseFilter(Object.create(null)), { ok: true, filter: { kind: 'all' } }, 'a null-prototype object is a filter');
});

t.test('parsing hostile keys does not touch any prototype', async (t) => {
  const result = parseFilter(JSON.parse('{"__proto__":{"polluted":1},"constructor":{"prototype":1}}'));
  t.same(result, { ok: false, error: `filter.__proto__: unknown operator "polluted" ${OPERATORS}` });
  t.equal(({} as Record<string, unknown>)['polluted'], undefined);
});

t.test('nesting is limited, and checked before descending', async (t) => {
  const nest = (levels: number): unknown => {
    let filter: unknown = { a: 1 };
    for (let i = 1; i < levels; i += 1) filter = { not: filter };
    return filter;
  };
  t.ok(parseFilter(nest(16)).ok, '16 levels are accepted');
  t.same(parseFilter(nest(17)), { ok: false, error: `filter${'.not'.repeat(16)}: nested deeper than 16 levels` });
  // Deep enough to overflow the stack if the parser recursed into all of it.
  const deep = nest(200_000);
  const result = parseFilter(deep);
  t.equal(result.ok, false);
  t.match(!result.ok && result.error, /nested deeper than 16 levels$/);
  const viaJson = parseFilter(JSON.parse(`${'{"and":['.repeat(1000)}{}${']}'.repeat(1000)}`));
  t.match(!viaJson.ok && viaJson.error, /^filter(\.and\[0\]){16}: nested deeper than 16 levels$/);
  t.same(parseFilter({ or: [{ not: { a: 1 } }] }, { maxDepth: 2 }), {
    ok: false,
    error: 'filter.or[0].not: nested deeper than 2 levels',
  });
});

t.test('node and in-value budgets are enforced', async (t) => {
  const branches = (count: number) => ({ or: Array.from({ length: count }, (_, i) => ({ a: i })) });
  t.ok(parseFilter(branches(255)).ok, '256 nodes are accepted');
  t.same(parseFilter(branches(256)), { ok: false, error: 'filter.or[255].a: more than 256 nodes in the filter' });
  t.same(parseFilter(branches(1_000_000)), { ok: false, error: 'filter.or[255].a: more than 256 nodes in the filter' });
  t.same(parseFilter(branches(5), { maxNodes: 3 }), { ok: false, error: 'filter.or[2].a: more than 3 nodes in the filter' });

  const values = (count: number) => Array.from({ length: count }, (_, i) => i);
  t.ok(parseFilter({ a: { in: values(1000) } }).ok, '1000 in-values are accepted');
  t.same(parseFilter({ a: { in: values(1001) } }), { ok: false, error: 'filter.a.in: more than 1000 "in" values in the filter' });
  t.same(parseFilter({ a: { in: values(600) }, b: { in: values(600) } }), {
    ok: false,
    error: 'filter.b.in: more than 1000 "in" values in the filter',
  });
  t.same(parseFilter({ a: { in: values(3) } }, { maxInValues: 2 }), {
    ok: false,
    error: 'filter.a.in: more than 2 "in" values in the filter',
  });
});

t.test('claim paths are limited in length and segments; grants are not', async (t) => {
  const claimFilter = (path: string): unknown => ({ id: { claim: path } });
  const dotted = (segments: number): string => Array.from({ length: segments }, () => 'a').join('.');
  t.ok(parseFilter(claimFilter(dotted(32))).ok, '32 segments are accepted');
  t.same(parseFilter(claimFilter(dotted(33))), { ok: false, error: 'filter.id.claim: claim path of more than 32 segments' });
  t.ok(parseFilter(claimFilter('x'.repeat(256))).ok, '256 characters are accepted');
  t.same(parseFilter(claimFilter('x'.repeat(257))), {
    ok: false,
    error: 'filter.id.claim: claim path longer than 256 characters',
  });
  // What one 64 KiB frame can carry: refused by its length, without splitting it.
  t.same(parseFilter({ id: { in: { claim: dotted(32_000) } } }), {
    ok: false,
    error: 'filter.id.in.claim: claim path longer than 256 characters',
  });
  t.same(parseFilter(claimFilter('a.b.c'), { maxClaimPathSegments: 2 }), {
    ok: false,
    error: 'filter.id.claim: claim path of more than 2 segments',
  });
  t.ok(parseFilter(claimFilter(dotted(32_000)), GRANT_FILTER_LIMITS).ok, 'a grant may hold any path relay.allow accepted');
});

t.test('numbers kept as text (a grant read exactly, a client frame) are accepted wherever a number is', async (t) => {
  const filter = parseJsonExactly(
    '{"a":9007199254740993,"b":{"lte":3.0000000000000001},"c":{"in":[1234567890123456789,1]},"not":{"e":{"ne":9007199254740993}}}',
  );
  t.equal(parseFilter(filter).ok, true);
});
