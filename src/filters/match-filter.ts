// Does an event's data satisfy a resolved filter?
//
// Equality is strict JSON equality of scalars: "1" is not 1, null equals null. A column missing
// from data compares exactly like a JSON null, as SQL's IS [NOT] DISTINCT FROM would: `{"c": null}`
// matches it and `{"c": {"ne": 5}}` matches it too. Ordering compares numbers with numbers and
// strings with strings (code-unit order, right for ISO timestamps); anything else is false.

import { isExactNumber } from '../exact-json.ts';
import type { ComparisonOperator, ResolvedFilter } from './filter-ast.ts';
import { isScalar, type Scalar } from './json-values.ts';

/** True when data satisfies the filter. */
export function matchesFilter(filter: ResolvedFilter, data: Readonly<Record<string, unknown>>): boolean {
  switch (filter.kind) {
    case 'all':
      return true;
    case 'and':
      return filter.children.every((child) => matchesFilter(child, data));
    case 'or':
      return filter.children.some((child) => matchesFilter(child, data));
    case 'not':
      return !matchesFilter(filter.child, data);
    case 'compare':
      return compare(filter.op, columnValue(data, filter.column), filter.value);
    case 'in': {
      const actual = columnValue(data, filter.column);
      return isScalar(actual) && filter.values.includes(actual);
    }
  }
}

/**
 * The column's value, with a missing column read as null; own keys only (`__proto__` is a column).
 * A number kept as its text (more digits than a double holds) compares as the nearest double, as
 * filters' own numbers and the claims of a token do.
 */
export function columnValue(data: Readonly<Record<string, unknown>>, column: string): unknown {
  const value = Object.hasOwn(data, column) ? (data[column] ?? null) : null;
  return isExactNumber(value) ? Number(value.value) : value;
}

function compare(op: ComparisonOperator, actual: unknown, expected: Scalar): boolean {
  if (op === 'eq') return isScalar(actual) && actual === expected;
  if (op === 'ne') return !(isScalar(actual) && actual === expected);
  const order = orderOf(actual, expected);
  return order !== undefined && ORDER_HOLDS[op](order);
}

const ORDER_HOLDS = {
  lt: (order: number) => order < 0,
  lte: (order: number) => order <= 0,
  gt: (order: number) => order > 0,
  gte: (order: number) => order >= 0,
} as const satisfies Record<Exclude<ComparisonOperator, 'eq' | 'ne'>, (order: number) => boolean>;

/** Negative, zero or positive like a sort comparator; undefined when the pair has no order. */
function orderOf(actual: unknown, expected: Scalar): number | undefined {
  if (typeof actual === 'number' && typeof expected === 'number' && Number.isFinite(actual)) {
    return actual - expected;
  }
  if (typeof actual === 'string' && typeof expected === 'string') {
    return actual < expected ? -1 : actual > expected ? 1 : 0;
  }
  return undefined;
}
