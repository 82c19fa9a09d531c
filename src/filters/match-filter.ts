// Does an event's data satisfy a resolved filter?
//
// Equality is strict JSON equality of scalars: "1" is not 1, null equals null. A column missing
// from data compares exactly like a JSON null, as SQL's IS [NOT] DISTINCT FROM would: `{"c": null}`
// matches it and `{"c": {"ne": 5}}` matches it too. Ordering compares numbers with numbers and
// strings with strings (code-unit order, right for ISO timestamps); anything else is false.
// Numbers compare by exact decimal value, as jsonb does (exact-numbers.ts): a bigint past 2^53
// equals only itself, never the neighbours that round to the same double.

import { isExactNumber } from '../exact-json.ts';
import { compareNumbers, isJsonNumber, type ExactNumber } from './exact-numbers.ts';
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
      // A double is never equal to a filter's number kept as text (exactOrDouble made every
      // number a double holds a double), so includes() decides for it; a row's number kept as
      // text is compared by value.
      return isScalar(actual) && (filter.values.includes(actual) || (isExactNumber(actual) && includesNumber(filter.values, actual)));
    }
  }
}

/**
 * The column's value, with a missing column read as null; own keys only (`__proto__` is a column).
 * A number kept as its text (more digits than a double holds) stays so, to be compared exactly.
 */
export function columnValue(data: Readonly<Record<string, unknown>>, column: string): unknown {
  return Object.hasOwn(data, column) ? (data[column] ?? null) : null;
}

function compare(op: ComparisonOperator, actual: unknown, expected: Scalar): boolean {
  if (op === 'eq') return sameScalar(actual, expected);
  if (op === 'ne') return !sameScalar(actual, expected);
  const order = orderOf(actual, expected);
  return order !== undefined && ORDER_HOLDS[op](order);
}

/**
 * === decides for two doubles and for anything but numbers; a number kept as text (on either
 * side: a row's bigint, a grant's or a claim's) is compared with a number by value. A row's number
 * kept as text may be one a double holds (2^53 is), so it is compared with doubles too.
 */
function sameScalar(actual: unknown, expected: Scalar): boolean {
  return actual === expected || ((isExactNumber(actual) || isExactNumber(expected)) && equalNumbers(actual, expected));
}

function includesNumber(values: readonly Scalar[], actual: ExactNumber): boolean {
  return values.some((value) => equalNumbers(actual, value));
}

function equalNumbers(a: unknown, b: unknown): boolean {
  return isJsonNumber(a) && isJsonNumber(b) && compareNumbers(a, b) === 0;
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
  if (isJsonNumber(actual) && isJsonNumber(expected)) return compareNumbers(actual, expected);
  return undefined;
}
