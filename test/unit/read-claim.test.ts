import t from 'tap';
import { readClaim } from '../../src/filters/claims.ts';

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
