import t from 'tap';
import type { Claims, Grant } from '../../src/events.ts';
import { parseUntrustedJsonExactly } from '../../src/exact-json.ts';
import { compileAccess, type Access } from '../../src/routing/access.ts';
import { GRANTS, filterOf } from './fixtures.ts';

function compile(role: string, claims: Claims, clientFilter: unknown = null, topic = 'orders', grants: readonly Grant[] = GRANTS) {
  return compileAccess({ topic, role, grants, claims, clientFilter: clientFilter === null ? null : filterOf(clientFilter) });
}

function accessOf(role: string, claims: Claims, clientFilter: unknown = null, topic = 'orders', grants = GRANTS): Access {
  const result = compile(role, claims, clientFilter, topic, grants);
  if (!result.ok) throw new Error(`expected access, got forbidden: ${result.message}`);
  return result.access;
}

t.test('who may subscribe', async (t) => {
  const forbidden: Array<[string, Claims, unknown, string, string]> = [
    ['nobody', {}, null, 'orders', 'no grant for role "nobody" on topic "orders"'],
    ['hospital', {}, null, 'inventory', 'no grant for role "hospital" on topic "inventory"'],
    ['hospital', { sub: 'u1' }, null, 'orders', 'no grant for role "hospital" on topic "orders" applies: claim "hospital_id" is missing'],
    [
      'hospital',
      { hospital_id: { secret: 'S3CR3T' } },
      null,
      'orders',
      'no grant for role "hospital" on topic "orders" applies: claim "hospital_id" is not a scalar',
    ],
    ['broken', {}, null, 'orders', 'no grant for role "broken" on topic "orders" applies: a grant filter does not parse'],
    [
      'merchant',
      { merchant_id: 'm1' },
      { total: { gt: 100 } },
      'orders',
      'column "total" is not visible to role "merchant" on topic "orders"',
    ],
    // Visible under one of the auditor's grants is not enough: the other would reveal it.
    ['auditor', { hospital_id: 'H7' }, { total: { gt: 100 } }, 'orders', 'column "total" is not visible to role "auditor" on topic "orders"'],
    ['auditor', { hospital_id: 'H7' }, { or: [{ id: '1' }, { status: 'new' }] }, 'orders', 'column "status" is not visible to role "auditor" on topic "orders"'],
  ];
  for (const [role, claims, clientFilter, topic, message] of forbidden) {
    t.same(compile(role, claims, clientFilter, topic), { ok: false, code: 'forbidden', message }, message);
  }
  t.same(
    compile('auditor', {}, { total: 1 }),
    { ok: false, code: 'forbidden', message: 'column "total" is not visible to role "auditor" on topic "orders"' },
    'the column check does not depend on which claims the token holds',
  );

  const allowed: Array<[string, Claims, unknown, string, number]> = [
    ['admin', {}, null, 'orders', 1],
    ['admin', {}, { anything: { gt: 1 } }, 'orders', 1],
    ['hospital', { hospital_id: 'H7' }, null, 'orders', 1],
    ['merchant', { merchant_id: 'm1' }, { status: 'new' }, 'orders', 1],
    ['merchant', { merchant_ids: ['m1'] }, null, 'inventory', 1],
    ['auditor', {}, { id: '1' }, 'orders', 1],
    ['auditor', { hospital_id: 'H7' }, { id: '1' }, 'orders', 2],
  ];
  for (const [role, claims, clientFilter, topic, alternatives] of allowed) {
    const access = accessOf(role, claims, clientFilter, topic);
    t.equal(access.topic, topic);
    t.equal(access.alternatives.length, alternatives, `${role} on ${topic}: ${alternatives} alternative(s)`);
  }
});

t.test('forbidden messages never echo claim values', async (t) => {
  const result = compile('hospital', { hospital_id: ['S3CR3T'] });
  t.equal(result.ok, false);
  t.notMatch(JSON.stringify(result), /S3CR3T/);
});

t.test('the resolved parts of an access', async (t) => {
  const merchant = accessOf('merchant', { merchant_id: 'm1' }, { status: 'new' });
  t.same(merchant.alternatives, [
    {
      filter: { kind: 'compare', op: 'eq', column: 'merchant_id', value: 'm1' },
      columns: ['id', 'merchant_id', 'status'],
      filterColumns: new Set(['merchant_id']),
    },
  ]);
  t.same(merchant.clientFilter, { kind: 'compare', op: 'eq', column: 'status', value: 'new' });
  t.equal(accessOf('admin', {}).clientFilter, null, 'no client filter');
  t.equal(accessOf('admin', {}, {}).clientFilter, null, '{} is no client filter');
  t.equal(accessOf('admin', {}, { driver_id: { claim: 'sub' } }).clientFilter, 'match-nothing', 'missing claim in the client filter');
  t.same(accessOf('auditor', {}).alternatives[0]?.columns, ['id', 'status'], 'columns are sorted');
});

t.test('access keys: equal for identical views, different otherwise', async (t) => {
  const key = (role: string, claims: Claims, clientFilter: unknown = null, topic = 'orders', grants = GRANTS) =>
    accessOf(role, claims, clientFilter, topic, grants).key;
  const same: Array<[string, string, string]> = [
    [key('hospital', { hospital_id: 'H7', sub: 'a' }), key('hospital', { hospital_id: 'H7', sub: 'b' }), 'claims the filter does not use'],
    [key('admin', {}, { status: 'a', driver_id: 'd' }), key('admin', {}, { driver_id: 'd', status: 'a' }), 'client filter key order'],
    [key('admin', {}, { driver_id: { claim: 'sub' } }, 'orders'), key('admin', {}, { driver_id: { claim: 'x' } }), 'match-nothing'],
    [key('admin', {}), key('superuser', {}), 'roles with the same resolved view'],
    [key('admin', {}), key('admin', {}, {}), 'no client filter and {}'],
    [
      key('auditor', { hospital_id: 'H7' }),
      key('auditor', { hospital_id: 'H7' }, null, 'orders', [...GRANTS].reverse()),
      'grant order',
    ],
  ];
  for (const [left, right, why] of same) t.equal(left, right, why);

  const different: Array<[string, string, string]> = [
    [key('hospital', { hospital_id: 'H7' }), key('hospital', { hospital_id: 'H8' }), 'other claim value'],
    [key('hospital', { hospital_id: '1' }), key('hospital', { hospital_id: 1 }), 'claim type'],
    [key('admin', {}), key('admin', {}, { status: 'a' }), 'client filter'],
    [key('admin', {}, { status: 'a' }), key('admin', {}, { status: 'b' }), 'client filter value'],
    [key('admin', {}, { status: 'a' }), key('admin', {}, { driver_id: { claim: 'x' } }), 'match-nothing'],
    [key('merchant', { merchant_id: 'm1' }), key('hospital', { hospital_id: 'm1' }), 'filter column'],
    [key('auditor', {}), key('auditor', { hospital_id: 'H7' }), 'alternatives'],
    [key('merchant', { merchant_ids: ['m1'] }, null, 'inventory'), key('admin', {}), 'topic'],
    [
      key('admin', {}),
      key('admin', {}, null, 'orders', [{ topic: 'orders', role: 'admin', filter: {}, columns: ['id'] }]),
      'columns',
    ],
  ];
  for (const [left, right, why] of different) t.not(left, right, why);
});

t.test('access keys tell apart numbers that only differ past a double', async (t) => {
  // Equal keys share one class and one channel: each of the two would receive the other's frames.
  const exact = (text: string): unknown => parseUntrustedJsonExactly(text);
  const tenantGrants = (account: string): readonly Grant[] => [
    { topic: 'ledger', role: 'tenant', filter: exact(`{"account_id": ${account}}`), columns: null },
  ];
  const grantKey = (account: string): string => accessOf('tenant', {}, null, 'ledger', tenantGrants(account)).key;
  t.not(grantKey('1234567890123456789'), grantKey('1234567890123456790'), 'grant literals');
  t.equal(grantKey('1234567890123456789'), grantKey('1.234567890123456789e18'), 'one value, written two ways');

  const memberGrants: readonly Grant[] = [{ topic: 'ledger', role: 'member', filter: { account_id: { claim: 'acc' } }, columns: null }];
  const claimKey = (account: string): string =>
    accessOf('member', exact(`{"acc": ${account}}`) as Claims, null, 'ledger', memberGrants).key;
  t.not(claimKey('9007199254740993'), claimKey('9007199254740992'), 'claims');
  t.not(claimKey('9007199254740993'), grantKey('9007199254740992'), 'a claim and a literal');

  const clientKey = (account: string): string => accessOf('admin', {}, exact(`{"account_id": ${account}}`)).key;
  t.not(clientKey('9007199254740993'), clientKey('9007199254740992'), 'client filters');
});
