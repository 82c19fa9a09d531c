// The compiled filter: a small tree that parseFilter builds and the other modules walk.

import type { Scalar } from './json-values.ts';

/** Operators that compare a column with one value. */
export const COMPARISON_OPERATORS = ['eq', 'ne', 'lt', 'lte', 'gt', 'gte'] as const;
export type ComparisonOperator = (typeof COMPARISON_OPERATORS)[number];

/** Every operator allowed inside a column's operator object, in the order error messages list them. */
export const COLUMN_OPERATORS = [...COMPARISON_OPERATORS, 'in'] as const;
export type ColumnOperator = (typeof COLUMN_OPERATORS)[number];

/** `{"claim": "dotted.path"}`: the subscriber's claim at that path, known only per subscriber. */
export interface ClaimReference {
  readonly kind: 'claim';
  readonly path: string;
}

/**
 * A filter tree. `Value` is what a comparison holds and `List` what `in` holds, so that one shape
 * serves both the parsed filter (values may be claim references) and the resolved one (only data).
 */
export type FilterNode<Value, List> =
  | { readonly kind: 'all' }
  | { readonly kind: 'and'; readonly children: readonly FilterNode<Value, List>[] }
  | { readonly kind: 'or'; readonly children: readonly FilterNode<Value, List>[] }
  | { readonly kind: 'not'; readonly child: FilterNode<Value, List> }
  | { readonly kind: 'compare'; readonly op: ComparisonOperator; readonly column: string; readonly value: Value }
  | { readonly kind: 'in'; readonly column: string; readonly values: List };

/** A parsed filter, which may still reference claims. */
export type Filter = FilterNode<Scalar | ClaimReference, readonly Scalar[] | ClaimReference>;

/** A filter whose claim references were replaced by one subscriber's claim values. */
export type ResolvedFilter = FilterNode<Scalar, readonly Scalar[]>;
