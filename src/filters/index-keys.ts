// Routing keys of a filter: column values that every matching event is sure to hit, so that an
// event finds its candidate subscribers by lookup instead of testing every subscriber.

import { isExactNumber } from '../exact-json.ts';
import type { ResolvedFilter } from './filter-ast.ts';
import { isScalar, type Scalar } from './json-values.ts';

/** Every matching event has, in `column`, a value whose indexValueOf is one of `values`. */
export interface IndexKey {
  readonly column: string;
  readonly values: readonly string[];
}

/**
 * 'unindexed': the filter may match events with any value in any column. An empty array: the
 * filter matches no event at all (e.g. `{"or": []}` or an empty `in` list).
 */
export type IndexKeys = readonly IndexKey[] | 'unindexed';

/** The canonical key text of a data value: JSON of a scalar, undefined for objects and arrays. */
export function indexValueOf(value: unknown): string | undefined {
  return isScalar(value) ? scalarKey(value) : undefined;
}

/**
 * A number kept as text is keyed by its nearest double, on the row's side and the filter's alike.
 * Keys only narrow the classes that matchesFilter then decides for, exactly; equal decimals round
 * to equal doubles, so every exact match is still a candidate (as are neighbours that round the
 * same way, which matchesFilter turns down). An infinity (1e400) gets a key no JSON scalar has.
 */
function scalarKey(value: Scalar): string {
  if (!isExactNumber(value)) return JSON.stringify(value);
  const double = Number(value.value);
  return Number.isFinite(double) ? JSON.stringify(double) : String(double);
}

/** The keys every event matching the filter hits at least one of, or 'unindexed'. */
export function indexKeys(filter: ResolvedFilter): IndexKeys {
  switch (filter.kind) {
    case 'compare':
      return filter.op === 'eq' ? [{ column: filter.column, values: [scalarKey(filter.value)] }] : 'unindexed';
    case 'in':
      return [{ column: filter.column, values: unique(filter.values.map(scalarKey)) }];
    case 'and':
      return narrowest(filter.children.map(indexKeys));
    case 'or':
      return unionOfIndexKeys(filter.children.map(indexKeys));
    case 'all':
    case 'not':
      // `not` could be pushed inward (not ne = eq), but grants written that way are rare.
      return 'unindexed';
  }
}

/** Keys of a disjunction: the union of its parts' keys, 'unindexed' as soon as one part is. */
export function unionOfIndexKeys(parts: readonly IndexKeys[]): IndexKeys {
  const byColumn = new Map<string, Set<string>>();
  for (const keys of parts) {
    if (keys === 'unindexed') return 'unindexed';
    for (const { column, values } of keys) {
      const set = byColumn.get(column) ?? new Set<string>();
      for (const value of values) set.add(value);
      byColumn.set(column, set);
    }
  }
  return [...byColumn].map(([column, values]) => ({ column, values: [...values] }));
}

/**
 * Keys of a conjunction: any one part's keys are valid, since an event must satisfy every part;
 * take the one with the fewest values, which wakes the fewest subscribers (eq before in).
 */
function narrowest(parts: readonly IndexKeys[]): IndexKeys {
  let best: IndexKeys = 'unindexed';
  let bestCount = Infinity;
  for (const keys of parts) {
    if (keys === 'unindexed') continue;
    const count = keys.reduce((sum, key) => sum + key.values.length, 0);
    if (count < bestCount) [best, bestCount] = [keys, count];
  }
  return best;
}

function unique(values: readonly string[]): string[] {
  return [...new Set(values)];
}
