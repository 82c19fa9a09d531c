import t from 'tap';
import { readClaim, resolveFilterClaims } from '../../src/filters/claims.ts';
import { filterOf } from './fixtures.ts';

t.test('a claim at a dotted path, own properties only', async (t) => {
  const claims = JSON.parse(
    '{"role":"admin","app":{"role":"driver","ids":["m1","m2"]},"__proto__":{"polluted":true},"n":null}',
  ) as unknown;
  const cases: Array<[string, unknown]> = [
    ['role', 'admin'],
    ['app.role', 'driver'],
    ['app.ids', ['m1', 'm2']],
    ['app.ids.1', undefined], // arrays are values, not walked into
    ['app.missing', undefined],
    ['role.length', undefined], // strings are not walked into
    ['n.x', undefined],
    ['__proto__.polluted', true], // an own key, as JSON.parse made it
    ['polluted', undefined],
    ['constructor', undefined],
    ['toString', undefined],
    ['app.ids.length', undefined],
  ];
  for (const [path, expected] of cases) t.same(readClaim(claims as Record<string, unknown>, path), expected, path);
  t.equal(readClaim({ 'https://example.com/role': 'admin' }, 'https://example.com/role'), 'admin', 'a namespaced claim with dots in its key');
});

t.test('the longest own key wins at each level, as before', async (t) => {
  const claims = { a: { b: { c: 1 }, 'b.c': 2 }, 'a.b': { c: 3 }, x: { 'y.z': 4 } } as Record<string, unknown>;
  t.equal(readClaim(claims, 'a.b.c'), 3, '"a.b" is longer than "a"');
  t.equal(readClaim(claims, 'x.y.z'), 4, 'a dotted key one level down');
  t.equal(readClaim(claims, 'a.b'), claims['a.b'], 'a whole path that is a key');
  t.equal(readClaim(claims, ''), claims, 'the empty path is the claims themselves');
});

t.test('a long path costs a look at each key of the claims, not one per dot-prefix of the path', async (t) => {
  // Counts the lookups readClaim makes: Object.hasOwn (getOwnPropertyDescriptor) and key lists.
  let lookups = 0;
  const counted = <T extends object>(target: T): T =>
    new Proxy(target, {
      getOwnPropertyDescriptor: (object, key) => (lookups++, Reflect.getOwnPropertyDescriptor(object, key)),
      ownKeys: (object) => (lookups++, Reflect.ownKeys(object)),
    });
  const claims = counted({ role: 'admin', a: counted({ a: counted({ b: 1 }) }) });
  const path = Array.from({ length: 32_000 }, () => 'a').join('.');
  t.equal(readClaim(claims, path), undefined, 'missing');
  // Before: 32,000 lookups at each level (95,997 here), each hashing a slice of the path.
  t.ok(lookups <= 3, `${lookups} lookups for a path of 32,000 segments`);
});

t.test("a filter's claim references list the claims' keys once, not once per reference", async (t) => {
  // A token of 16 KiB holds some 1,700 claims, and a client's filter 255 claim references: listed
  // for each reference, they cost 80 ms per subscribe, and as much per subscription at every
  // `auth` and grant reload, in which every other client of the relay waits.
  let keysListed = 0;
  const target: Record<string, unknown> = { role: 'admin', org: { id: 'o1' } };
  for (let i = 0; i < 1700; i++) target[`k${i}`] = i;
  const claims = new Proxy(target, {
    ownKeys: (object) => {
      const keys = Reflect.ownKeys(object);
      keysListed += keys.length;
      return keys;
    },
  });
  const filter: Record<string, unknown> = {};
  for (let i = 0; i < 255; i++) filter[`c${i}`] = { claim: i % 2 === 0 ? `k${i}` : 'org.id' };
  const resolved = resolveFilterClaims(filterOf(filter), claims);
  t.ok(resolved.ok, 'every claim resolves');
  t.same(readClaim(claims, 'k1699'), 1699);
  t.ok(keysListed <= 1702, `${keysListed} keys listed for 256 references to 1,702 claims`);
});
