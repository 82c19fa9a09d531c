// Claim references -> one subscriber's values. Fail closed: a filter whose claim is missing or of
// the wrong type resolves to nothing at all, never to a weaker filter (a `not` around a missing
// claim must not turn into "match everything").

import type { Claims } from '../events.ts';
import { exactScalar } from './exact-numbers.ts';
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
  let start = 0;
  while (start < path.length) {
    // Arrays are not walked: `roles.length` must not read as a claim.
    if (!isPlainObject(current)) return undefined;
    const key = longestOwnKeyAt(current, path, start);
    if (key === undefined) return undefined;
    current = current[key];
    start += key.length + 1;
  }
  return current;
}

/**
 * The longest own key of `object` that `path` holds at `start`, followed by a dot or the end.
 * Only the slices of the path as long as one of the object's keys are looked up, longest first:
 * looking up every dot-prefix of a long path grew with its square (a path of 32,000 segments took
 * about 100 ms), comparing every key with the path grew with the claims at each of a filter's 255
 * claim references (80 ms per resolve for a token of 1,700 claims). This is bounded by the
 * object's distinct key lengths, which a token's size limit bounds.
 */
function longestOwnKeyAt(object: Readonly<Record<string, unknown>>, path: string, start: number): string | undefined {
  const { keys, lengthsLongestFirst } = ownKeysOf(object);
  for (const length of lengthsLongestFirst) {
    const end = start + length;
    if (end > path.length || (end < path.length && path.charCodeAt(end) !== DOT)) continue;
    const candidate = path.slice(start, end);
    if (keys.has(candidate)) return candidate;
  }
  return undefined;
}

const DOT = '.'.charCodeAt(0);

/** A claims object's own keys (getOwnPropertyNames, as Object.hasOwn did: enumerable or not). */
interface OwnKeys {
  readonly keys: ReadonlySet<string>;
  /** The keys' distinct lengths, longest first; the empty key is never a segment. */
  readonly lengthsLongestFirst: readonly number[];
}

/** Each claims object's own keys, listed once: claims are never changed once verified. */
const ownKeysByObject = new WeakMap<object, OwnKeys>();

function ownKeysOf(object: object): OwnKeys {
  let ownKeys = ownKeysByObject.get(object);
  if (ownKeys === undefined) {
    const keys = new Set(Object.getOwnPropertyNames(object));
    const lengths = new Set([...keys].map((key) => key.length).filter((length) => length > 0));
    ownKeys = { keys, lengthsLongestFirst: [...lengths].sort((a, b) => b - a) };
    ownKeysByObject.set(object, ownKeys);
  }
  return ownKeys;
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

/** By its kind: a number kept as text is an object too. */
function isClaimReference(value: Scalar | readonly Scalar[] | ClaimReference): value is ClaimReference {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && (value as Partial<ClaimReference>).kind === 'claim';
}

/**
 * A null claim counts as missing: a token saying `"hospital_id": null` must not see every row whose
 * hospital_id is null (or absent, which compares as null).
 */
function claimScalar(claims: Claims, ref: ClaimReference): Scalar {
  const value = exactScalar(readClaim(claims, ref.path));
  if (value === undefined || value === null) throw new UnresolvedClaimError({ path: ref.path, problem: 'missing' });
  if (!isScalar(value)) throw new UnresolvedClaimError({ path: ref.path, problem: 'not a scalar' });
  return value;
}

/** Same rule inside the list: a null element would match rows without the column. */
function claimList(claims: Claims, ref: ClaimReference): readonly Scalar[] {
  const claim = readClaim(claims, ref.path);
  const value = Array.isArray(claim) ? claim.map(exactScalar) : claim;
  if (value === undefined || value === null) throw new UnresolvedClaimError({ path: ref.path, problem: 'missing' });
  if (!Array.isArray(value) || !value.every((item) => item !== null && isScalar(item))) {
    throw new UnresolvedClaimError({ path: ref.path, problem: 'not an array of scalars' });
  }
  return Array.from(value as readonly Scalar[]);
}
