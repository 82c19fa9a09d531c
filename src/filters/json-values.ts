// Type guards for values that come from JSON (filters, claims, row data).

import { isExactNumber } from '../exact-json.ts';
import type { ExactNumber } from './exact-numbers.ts';

/** A JSON scalar: the only kind of value a filter compares. A number may be kept as its text. */
export type Scalar = string | number | ExactNumber | boolean | null;

/** True for a JSON scalar; non-finite numbers cannot come from JSON and are refused anyway. */
export function isScalar(value: unknown): value is Scalar {
  return (
    value === null ||
    typeof value === 'string' ||
    typeof value === 'boolean' ||
    (typeof value === 'number' && Number.isFinite(value)) ||
    isExactNumber(value)
  );
}

/**
 * True for an object as JSON.parse makes it. Arrays, class instances (Date, Map...) are refused:
 * a Date has no own keys and would otherwise read as the match-everything filter `{}`.
 */
export function isPlainObject(value: unknown): value is Readonly<Record<string, unknown>> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}
