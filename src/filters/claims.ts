// Claim references -> one subscriber's values. Fail closed: a filter whose claim is missing or of
// the wrong type resolves to nothing at all, never to a weaker filter (a `not` around a missing
// claim must not turn into "match everything").

import type { Claims } from '../events.ts';
import type { ClaimReference, Filter, ResolvedFilter } from './filter-ast.ts';
import { isPlainObject, isScalar, type Scalar } from './json-values.ts';

/**
 * Why a filter cannot apply to a subscriber. Carries the claim path only, never the claim's value,
 * so it is safe to show to the client.
 */
export interface UnresolvedClaim {
  readonly path: string;
  readonly problem: 'missing' | 'not a scalar' | 'not an array of scalars';
}

export type ResolveClaimsResult =
  | { readonly ok: true; readonly filter: ResolvedFilter }
  | { readonly ok: false; readonly claim: UnresolvedClaim };

/**
 * Reads the claim at a dotted path through own properties only; undefined when missing.
 * At each level the longest own key that is a dot-prefix of the rest wins, so namespaced claims
 * such as `https://example.com/hid` (dots inside one key) are found too.
 */
export function readClaim(claims: Claims, path: string): unknown {
  let current: unknown = claims;
  let rest = path;
  while (rest !== '') {
    // Arrays are not walked: `roles.length` must not read as a claim.
    if (!isPlainObject(current)) return undefined;
    const key = longestOwnPrefix(current, rest);
    if (key === undefined) return undefined;
    current = current[key];
    rest = rest.slice(key.length + 1);
  }
  return current;
}

function longestOwnPrefix(object: Readonly<Record<string, unknown>>, path: string): string | undefined {
  for (let end = path.length; end > 0; end = path.lastIndexOf('.', end - 1)) {
    const key = path.slice(0, end);
    if (Object.hasOwn(object, key)) return key;
  }
  return undefined;
}

/** Replaces every claim reference by the subscriber's value; null when any claim is missing or mistyped. */
export function resolveClaims(filter: Filter, claims: Claims): ResolvedFilter | null {
  const result = resolveFilterClaims(filter, claims);
  return result.ok ? result.filter : null;
}

/** Like resolveClaims, but says which claim made the filter unusable. */
export function resolveFilterClaims(filter: Filter, claims: Claims): ResolveClaimsResult {
  try {
    return { ok: true, filter: resolveNode(filter, claims) };
  } catch (error) {
    if (error instanceof UnresolvedClaimError) return { ok: false, claim: error.claim };
    throw error;
  }
}

/** Unwinds from any depth of the tree; resolveFilterClaims turns it into a result. */
class UnresolvedClaimError extends Error {
  constructor(readonly claim: UnresolvedClaim) {
    super(`claim ${JSON.stringify(claim.path)} is ${claim.problem}`);
  }
}

function resolveNode(filter: Filter, claims: Claims): ResolvedFilter {
  switch (filter.kind) {
    case 'all':
      return filter;
    case 'and':
    case 'or':
      return { kind: filter.kind, children: filter.children.map((child) => resolveNode(child, claims)) };
    case 'not':
      return { kind: 'not', child: resolveNode(filter.child, claims) };
    case 'compare':
      return { ...filter, value: isClaimReference(filter.value) ? claimScalar(claims, filter.value) : filter.value };
    case 'in':
      return { ...filter, values: isClaimReference(filter.values) ? claimList(claims, filter.values) : filter.values };
  }
}

function isClaimReference(value: Scalar | readonly Scalar[] | ClaimReference): value is ClaimReference {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * A null claim counts as missing: a token saying `"hospital_id": null` must not see every row whose
 * hospital_id is null (or absent, which compares as null).
 */
function claimScalar(claims: Claims, ref: ClaimReference): Scalar {
  const value = readClaim(claims, ref.path);
  if (value === undefined || value === null) throw new UnresolvedClaimError({ path: ref.path, problem: 'missing' });
  if (!isScalar(value)) throw new UnresolvedClaimError({ path: ref.path, problem: 'not a scalar' });
  return value;
}

/** Same rule inside the list: a null element would match rows without the column. */
function claimList(claims: Claims, ref: ClaimReference): readonly Scalar[] {
  const value = readClaim(claims, ref.path);
  if (value === undefined || value === null) throw new UnresolvedClaimError({ path: ref.path, problem: 'missing' });
  if (!Array.isArray(value) || !value.every((item) => item !== null && isScalar(item))) {
    throw new UnresolvedClaimError({ path: ref.path, problem: 'not an array of scalars' });
  }
  return Array.from(value as readonly Scalar[]);
}
