import t from 'tap';
import { readClaim, resolveClaims, resolveFilterClaims } from '../../src/filters/claims.ts';
import { CLAIMS, filterOf } from './fixtures.ts';

t.test('readClaim walks dotted paths through own properties only', async (t) => {
  const claims = {
    ...CLAIMS,
    app: { meta: { hospital_id: 'H1' } },
    'https://example.com/app': { hid: 'H2' },
    'a.b': 'flat',
    a: { b: 'nested', c: 'only nested' },
  };
  const cases: Array<[string, unknown]> = [
    ['sub', 'u1'],
    ['app.meta.hospital_id', 'H1'],
    ['app.meta', { hospital_id: 'H1' }],
    ['app.missing', undefined],
    ['sub.length', undefined],
    ['https://example.com/hid', 'H9'],
    ['https://example.com/app.hid', 'H2'],
    ['a.b', 'flat'],
    ['a.c', 'only nested'],
    ['merchant_ids', ['m1', 'm2']],
    ['merchant_ids.0', undefined],
    ['merchant_ids.length', undefined],
    ['nothing', null],
    ['constructor', undefined],
    ['toString', undefined],
    ['org.constructor', undefined],
    ['__proto__', undefined],
  ];
  for (const [path, expected] of cases) t.same(readClaim(claims, path), expected, path);
  t.same(readClaim(JSON.parse('{"__proto__":{"a":1}}'), '__proto__.a'), 1, 'an own __proto__ claim is read');
  t.equal(readClaim(Object.assign(Object.create(null), { x: 1 }), 'x'), 1, 'null-prototype claims work');
});

t.test('resolveClaims replaces references and fails closed', async (t) => {
  t.same(resolveClaims(filterOf({ h: { claim: 'hid' }, m: { in: { claim: 'merchant_ids' } } }), CLAIMS), {
    kind: 'and',
    children: [
      { kind: 'compare', op: 'eq', column: 'h', value: 'H7' },
      { kind: 'in', column: 'm', values: ['m1', 'm2'] },
    ],
  });
  t.equal(resolveClaims(filterOf({ not: { h: { claim: 'hid2' } } }), CLAIMS), null);
  const cases: Array<[unknown, string, string]> = [
    [{ not: { h: { claim: 'hospital.id' } } }, 'hospital.id', 'missing'],
    [{ h: { claim: 'nothing' } }, 'nothing', 'missing'],
    [{ h: { gt: { claim: 'org' } } }, 'org', 'not a scalar'],
    [{ h: { claim: 'merchant_ids' } }, 'merchant_ids', 'not a scalar'],
    [{ h: { in: { claim: 'hid' } } }, 'hid', 'not an array of scalars'],
    [{ h: { in: { claim: 'mixed_ids' } } }, 'mixed_ids', 'not an array of scalars'],
    [{ h: { in: { claim: 'null_ids' } } }, 'null_ids', 'not an array of scalars'],
    [{ and: [{ a: 1 }, { or: [{ b: { claim: 'sub' } }, { c: { in: { claim: 'gone' } } }] }] }, 'gone', 'missing'],
  ];
  for (const [filter, path, problem] of cases) {
    t.same(resolveFilterClaims(filterOf(filter), CLAIMS), { ok: false, claim: { path, problem } }, JSON.stringify(filter));
  }
});

t.test('a resolved list does not share the claims array', async (t) => {
  const claims = { ids: ['a'] };
  const resolved = resolveClaims(filterOf({ c: { in: { claim: 'ids' } } }), claims);
  claims.ids.push('b');
  t.same(resolved, { kind: 'in', column: 'c', values: ['a'] });
});
