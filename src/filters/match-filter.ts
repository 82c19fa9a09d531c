// Does an event's data satisfy a resolved filter?
//
// Equality is strict JSON equality of scalars: "1" is not 1, null equals null. A column missing
// from data compares exactly like a JSON null, as SQL's IS [NOT] DISTINCT FROM would: `{"c": null}`
// matches it and `{"c": {"ne": 5}}` matches it too. Ordering compares numbers with numbers and
// strings with strings (code-unit order, right for ISO timestamps); anything else is false.
// Numbers compare by exact decimal value, as jsonb does (exact-numbers.ts): a bigint past 2^53
// equals only itself, never the neighbours that round to the same double.

//
// A client's filter is evaluated for every event of its topic, so its cost is per event, not per
// subscribe: work that depends on the filter alone (an `in` list's lookup, a number's digits) is
// done once per filter, never per event (test/unit/match-filter.test.ts counts it).

import { isExactNumber } from '../exact-json.ts';
import { canonicalNumberText, compareNumbers, exactOrDouble, isJsonNumber } from './exact-numbers.ts';
import type { ComparisonOperator, ResolvedFilter } from './filter-ast.ts';
import { isScalar, type Scalar } from './json-values.ts';

/** True when data satisfies the filter. */
export function matchesFilter(filter: ResolvedFilter, data: Readonly<Record<string, unknown>>): boolean {
  switch (filter.kind) {
    case 'all':
      return true;
    // Loops, not every()/some(): no closure per node and per event.
    case 'and':
      for (const child of filter.children) if (!matchesFilter(child, data)) return false;
      return true;
    case 'or':
      for (const child of filter.children) if (matchesFilter(child, data)) return true;
      return false;
    case 'not':
      return !matchesFilter(filter.child, data);
    case 'compare':
      return compare(filter.op, columnValue(data, filter.column), filter.value);
    case 'in':
      return lookupOf(filter.values).has(columnValue(data, filter.column));
  }
}

/** An `in` list as Sets: a lookup per event where a scan of up to 1,000 values was. */
interface InLookup {
  has(actual: unknown): boolean;
}

/** Per list (resolved filters are immutable and live as long as their subscription's access). */
const lookups = new WeakMap<readonly Scalar[], InLookup>();

/**
 * A double is never equal to a filter's number kept as text (exactOrDouble made every number a
 * double holds a double), so a Set of the list's primitives decides for it (Set, like includes,
 * takes -0 for 0). A row's number kept as text is looked up by value: as its double when a double
 * holds it, else by its canonical text among the list's numbers kept as text.
 */
function lookupOf(values: readonly Scalar[]): InLookup {
  let lookup = lookups.get(values);
  if (lookup !== undefined) return lookup;
  const primitives = new Set<Scalar>();
  const exactTexts = new Set<string>();
  for (const value of values) {
    if (isExactNumber(value)) exactTexts.add(canonicalNumberText(value));
    else primitives.add(value);
  }
  lookup = {
    has(actual) {
      if (!isExactNumber(actual)) return isScalar(actual) && primitives.has(actual);
      const number = exactOrDouble(actual);
      return typeof number === 'number' ? primitives.has(number) : exactTexts.has(canonicalNumberText(number));
    },
  };
  lookups.set(values, lookup);
  return lookup;
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
