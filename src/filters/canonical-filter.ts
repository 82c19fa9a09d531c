// A resolved filter as canonical text: equal for filters that only differ in the order of keys,
// `and`/`or` branches or `in` values, so that equivalent subscribers share one routing class.

import { isExactNumber } from '../exact-json.ts';
import { canonicalNumberText } from './exact-numbers.ts';
import type { ResolvedFilter } from './filter-ast.ts';
import type { Scalar } from './json-values.ts';

const MATCH_ALL_TEXT = '["all"]';
const MATCH_NONE_TEXT = '["or"]';

/** Canonical text of a resolved filter: order-independent, injective on the meaning it keeps. */
export function canonicalFilter(filter: ResolvedFilter): string {
  switch (filter.kind) {
    case 'all':
      return MATCH_ALL_TEXT;
    case 'and':
    case 'or':
      return canonicalJunction(filter.kind, filter.children);
    case 'not':
      return `["not",${canonicalFilter(filter.child)}]`;
    case 'compare':
      return `[${JSON.stringify(filter.op)},${JSON.stringify(filter.column)},${scalarText(filter.value)}]`;
    case 'in':
      return `["in",${JSON.stringify(filter.column)},[${sortedUnique(filter.values.map(scalarText)).join(',')}]]`;
  }
}

/**
 * JSON of a scalar; a number kept as text (one no double holds) as `{"exact":"<digits>e<power>"}`,
 * equal for equal values and never equal to a scalar's JSON. Its exact value must be in the key:
 * as their nearest double, tenants 1234567890123456789 and ...790 would share one class, and so
 * one channel, and each would receive the other's frames.
 */
function scalarText(value: Scalar): string {
  return isExactNumber(value) ? `{"exact":"${canonicalNumberText(value)}"}` : JSON.stringify(value);
}

/** Flattens nested junctions of the same kind, sorts and dedupes branches, drops neutral ones. */
function canonicalJunction(kind: 'and' | 'or', children: readonly ResolvedFilter[]): string {
  const texts = new Set<string>();
  const collect = (child: ResolvedFilter): void => {
    if (child.kind === kind) child.children.forEach(collect);
    else texts.add(canonicalFilter(child));
  };
  children.forEach(collect);
  if (kind === 'and') texts.delete(MATCH_ALL_TEXT);
  if (kind === 'or' && texts.has(MATCH_ALL_TEXT)) return MATCH_ALL_TEXT;
  if (kind === 'or') texts.delete(MATCH_NONE_TEXT);
  const sorted = [...texts].sort();
  if (sorted.length === 0) return kind === 'and' ? MATCH_ALL_TEXT : MATCH_NONE_TEXT;
  if (sorted.length === 1) return sorted[0] as string;
  return `["${kind}",${sorted.join(',')}]`;
}

function sortedUnique(texts: readonly string[]): string[] {
  return [...new Set(texts)].sort();
}
