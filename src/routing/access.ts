// What one subscriber may receive on one topic: its role's grants resolved with its claims, its
// own filter, and a key that is equal for subscribers who would receive identical frames.

import type { Claims, Grant } from '../events.ts';
import { canonicalFilter } from '../filters/canonical-filter.ts';
import { resolveFilterClaims, type UnresolvedClaim } from '../filters/claims.ts';
import type { Filter, ResolvedFilter } from '../filters/filter-ast.ts';
import { filterColumns } from '../filters/filter-columns.ts';
import { GRANT_FILTER_LIMITS, parseFilter } from '../filters/parse-filter.ts';

export { renderEvent } from './render-event.ts';

/** One grant that applies to the subscriber: events matching `filter` are sent, limited to `columns`. */
export interface AccessAlternative {
  readonly filter: ResolvedFilter;
  /** Sorted, without duplicates; null = all columns. */
  readonly columns: readonly string[] | null;
  /** The columns `filter` reads: an update that changes none of them cannot move a row in or out. */
  readonly filterColumns: ReadonlySet<string>;
}

/** The subscriber's own filter, resolved; 'match-nothing' when one of its claims is missing. */
export type ClientFilterState = ResolvedFilter | null | 'match-nothing';

export interface Access {
  readonly topic: string;
  /** At least one; an event must match one of them (grants are alternatives). */
  readonly alternatives: readonly AccessAlternative[];
  /** null = no client filter (match all). */
  readonly clientFilter: ClientFilterState;
  /** The columns the client filter reads (none without one). */
  readonly clientFilterColumns: ReadonlySet<string>;
  /**
   * Whether the subscriber asked to be told when an update takes a row out of its view (a `left`
   * frame with the previous row as it saw it).
   */
  readonly leaves: boolean;
  /**
   * Canonical text of the resolved parts: equal keys mean identical frames; forms that differ only
   * in key, branch or value order get equal keys.
   */
  readonly key: string;
}

export interface CompileAccessInput {
  readonly topic: string;
  readonly role: string;
  /** Every grant known; those of topic and role are picked here. */
  readonly grants: readonly Grant[];
  readonly claims: Claims;
  readonly clientFilter: Filter | null;
  /** The subscription asked for `left` frames (default false). */
  readonly leaves?: boolean;
}

export type CompileAccessResult =
  | { readonly ok: true; readonly access: Access }
  | { readonly ok: false; readonly code: 'forbidden'; readonly message: string };

/** Decides whether a subscriber may subscribe to a topic and what it will then receive. */
export function compileAccess(input: CompileAccessInput): CompileAccessResult {
  const { topic, role, claims } = input;
  const grants = input.grants.filter((grant) => grant.topic === topic && grant.role === role);
  const subject = `role ${JSON.stringify(role)} on topic ${JSON.stringify(topic)}`;
  if (grants.length === 0) return forbidden(`no grant for ${subject}`);

  // Against every grant of the role, not only those the claims resolve: whether a column is
  // filterable must not depend on, and so reveal, which claims the token holds.
  if (input.clientFilter !== null) {
    const hidden = firstHiddenColumn(filterColumns(input.clientFilter), grants);
    if (hidden !== undefined) return forbidden(`column ${JSON.stringify(hidden)} is not visible to ${subject}`);
  }

  const alternatives: AccessAlternative[] = [];
  const problems: string[] = [];
  for (const grant of grants) {
    const parsed = parseFilter(grant.filter, GRANT_FILTER_LIMITS);
    // A grant the relay cannot read grants nothing; relay.allow refuses such filters already.
    if (!parsed.ok) {
      problems.push('a grant filter does not parse');
      continue;
    }
    const resolved = resolveFilterClaims(parsed.filter, claims);
    if (!resolved.ok) {
      problems.push(describeClaim(resolved.claim));
      continue;
    }
    alternatives.push({ filter: resolved.filter, columns: normalizeColumns(grant.columns), filterColumns: grantFilterColumns(grant, parsed.filter) });
  }
  if (alternatives.length === 0) return forbidden(`no grant for ${subject} applies: ${unique(problems).join('; ')}`);

  const clientFilter = resolveClientFilter(input.clientFilter, claims);
  const clientFilterColumns = clientFilter === null || clientFilter === 'match-nothing' ? NO_COLUMNS : filterColumns(clientFilter);
  const leaves = input.leaves === true;
  const key = accessKey(topic, alternatives, clientFilter, leaves);
  return { ok: true, access: { topic, alternatives, clientFilter, clientFilterColumns, leaves, key } };
}

const NO_COLUMNS: ReadonlySet<string> = new Set();

/**
 * The columns a grant's filter reads, the same for every subscriber whatever its claims: worked
 * out once per grant and shared, for a relay holds an access per subscription (tens of thousands).
 */
const columnsByGrant = new WeakMap<Grant, ReadonlySet<string>>();
function grantFilterColumns(grant: Grant, filter: Filter): ReadonlySet<string> {
  let columns = columnsByGrant.get(grant);
  if (columns === undefined) columnsByGrant.set(grant, (columns = filterColumns(filter)));
  return columns;
}

function resolveClientFilter(filter: Filter | null, claims: Claims): ClientFilterState {
  if (filter === null) return null;
  const resolved = resolveFilterClaims(filter, claims);
  if (!resolved.ok) return 'match-nothing';
  // `{}` and no filter behave alike; one form keeps such subscribers in one class.
  return resolved.filter.kind === 'all' ? null : resolved.filter;
}

/** The first referenced column that some grant hides (null columns hide nothing). */
function firstHiddenColumn(columns: ReadonlySet<string>, grants: readonly Grant[]): string | undefined {
  for (const column of [...columns].sort()) {
    if (grants.some((grant) => grant.columns !== null && !grant.columns.includes(column))) return column;
  }
  return undefined;
}

function normalizeColumns(columns: readonly string[] | null): readonly string[] | null {
  return columns === null ? null : unique(columns).sort();
}

/** Names the claim and what is wrong with it; never its value, which the client may not know. */
function describeClaim(claim: UnresolvedClaim): string {
  return `claim ${JSON.stringify(claim.path)} is ${claim.problem}`;
}

/**
 * Canonical text of the resolved parts. Alternatives are sorted and deduplicated: their order
 * never changes a frame, and subscribers of different roles with the same view share a class.
 */
function accessKey(topic: string, alternatives: readonly AccessAlternative[], clientFilter: ClientFilterState, leaves: boolean): string {
  const alternativeTexts = unique(
    alternatives.map((alternative) => `[${canonicalFilter(alternative.filter)},${JSON.stringify(alternative.columns)}]`),
  ).sort();
  const clientText =
    clientFilter === null ? 'null' : clientFilter === 'match-nothing' ? '"match-nothing"' : canonicalFilter(clientFilter);
  return `[${JSON.stringify(topic)},[${alternativeTexts.join(',')}],${clientText}${leaves ? ',"leaves"' : ''}]`;
}

function forbidden(message: string): CompileAccessResult {
  return { ok: false, code: 'forbidden', message };
}

function unique<T>(items: readonly T[]): T[] {
  return [...new Set(items)];
}
