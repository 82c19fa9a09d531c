/**
 * The value at a dotted path (`app.role`) in a claims object, or undefined when any step is
 * missing. Only own properties of JSON objects count: `__proto__` or `constructor` in a path never
 * reach Object.prototype, and arrays are values, not containers (`ids.length` is no claim).
 */
export function readClaim(claims: unknown, path: string): unknown {
  let value: unknown = claims;
  for (const segment of path.split('.')) {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
    if (!Object.hasOwn(value, segment)) return undefined;
    value = (value as Record<string, unknown>)[segment];
  }
  return value;
}
