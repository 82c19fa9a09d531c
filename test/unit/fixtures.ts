// Shared inputs of the decision-side unit tests: claims, grants and events shaped like the example app.

import type { Claims, Grant, RelayEvent } from '../../src/events.ts';
import type { Filter, ResolvedFilter } from '../../src/filters/filter-ast.ts';
import { parseFilter } from '../../src/filters/parse-filter.ts';
import { resolveClaims } from '../../src/filters/claims.ts';

/** Parses a filter that the test expects to be valid, failing loudly otherwise. */
export function filterOf(json: unknown): Filter {
  const parsed = parseFilter(json);
  if (!parsed.ok) throw new Error(`test filter does not parse: ${parsed.error}`);
  return parsed.filter;
}

/** Parses and resolves a filter; null when a claim is missing or mistyped. */
export function resolvedOf(json: unknown, claims: Claims = {}): ResolvedFilter | null {
  return resolveClaims(filterOf(json), claims);
}

export const CLAIMS: Claims = {
  sub: 'u1',
  hid: 'H7',
  n: 5,
  flag: true,
  nothing: null,
  org: { id: 'o1' },
  merchant_ids: ['m1', 'm2'],
  mixed_ids: ['m1', { id: 'm2' }],
  null_ids: ['m1', null],
  'https://example.com/hid': 'H9',
};

export const GRANTS: readonly Grant[] = [
  { topic: 'orders', role: 'admin', filter: {}, columns: null },
  { topic: 'orders', role: 'hospital', filter: { hospital_id: { claim: 'hospital_id' } }, columns: null },
  {
    topic: 'orders',
    role: 'merchant',
    filter: { merchant_id: { claim: 'merchant_id' } },
    columns: ['id', 'merchant_id', 'status'],
  },
  { topic: 'inventory', role: 'merchant', filter: { merchant_id: { in: { claim: 'merchant_ids' } } }, columns: null },
  // Two alternatives with different masks: delivered orders anywhere (id, status), and every
  // order of the auditor's own hospital (id, hospital_id, total).
  { topic: 'orders', role: 'auditor', filter: { status: 'delivered' }, columns: ['status', 'id'] },
  { topic: 'orders', role: 'auditor', filter: { hospital_id: { claim: 'hospital_id' } }, columns: ['id', 'hospital_id', 'total'] },
  { topic: 'orders', role: 'broken', filter: { qty: { gtx: 1 } }, columns: null },
  { topic: 'orders', role: 'superuser', filter: {}, columns: null },
];

let cursor = 0;

/** An event with the given data; the rest defaults to an orders insert. */
export function eventOf(data: Record<string, unknown>, extra: Partial<RelayEvent> = {}): RelayEvent {
  cursor += 1;
  return { topic: 'orders', event: 'insert', cursor: `k${cursor}`, ts: '2024-05-01T12:00:00.000Z', data, ...extra };
}

/** Freezes an object graph, so a test fails if code under test writes to it. */
export function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const key of Object.keys(value)) deepFreeze((value as Record<string, unknown>)[key]);
    Object.freeze(value);
  }
  return value;
}
