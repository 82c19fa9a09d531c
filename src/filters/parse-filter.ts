// JSON filter -> Filter tree, refusing anything outside the filter language with a message that
// says where (`filter.and[2].qty: ...`). Input may be hostile: it is walked with own keys only,
// nesting is checked before descending, and work is capped by node and in-value budgets.

import {
  COLUMN_OPERATORS,
  COMPARISON_OPERATORS,
  type ClaimReference,
  type ComparisonOperator,
  type Filter,
} from './filter-ast.ts';
import { exactScalar } from './exact-numbers.ts';
import { isPlainObject, isScalar, type Scalar } from './json-values.ts';

export interface FilterLimits {
  /** Filter objects nested inside each other (`and`/`or` elements, `not`); the root is level 1. */
  readonly maxDepth: number;
  /** Nodes of the compiled tree: column conditions and combinators. */
  readonly maxNodes: number;
  /** Literal values of all `in` lists of the filter, added together. */
  readonly maxInValues: number;
  /** Characters of one claim path (`{"claim": "a.b"}`), in UTF-16 code units. */
  readonly maxClaimPathChars: number;
  /** Dot-separated segments of one claim path. */
  readonly maxClaimPathSegments: number;
}

/**
 * Limits of a client's filter: it is untrusted input, evaluated on every event it may receive.
 * Its claim paths are resolved at every subscribe, every `auth` and every grant reload, so they
 * are kept far below what one frame could carry (a 64 KiB frame holds a path of 32,000 segments)
 * and far above what a real claim needs (`https://example.com/claims.tenant.id` is 4 segments).
 */
export const DEFAULT_FILTER_LIMITS: FilterLimits = {
  maxDepth: 16,
  maxNodes: 256,
  maxInValues: 1000,
  maxClaimPathChars: 256,
  maxClaimPathSegments: 32,
};

/**
 * Limits of a grant's filter: written by the database owner and checked by relay.allow, which
 * enforces the same depth and no size limit; these sizes are only a guard against absurd rows.
 * Claim paths are not limited: relay.allow accepts any length, and a grant the relay refused would
 * silently grant nothing.
 */
export const GRANT_FILTER_LIMITS: FilterLimits = {
  maxDepth: 16,
  maxNodes: 100_000,
  maxInValues: 1_000_000,
  maxClaimPathChars: Infinity,
  maxClaimPathSegments: Infinity,
};

export type ParseFilterResult = { readonly ok: true; readonly filter: Filter } | { readonly ok: false; readonly error: string };

/** Parses a JSON filter; on failure the error names the path of the offending part. */
export function parseFilter(json: unknown, limits: Partial<FilterLimits> = {}): ParseFilterResult {
  const parser = new FilterParser({ ...DEFAULT_FILTER_LIMITS, ...limits });
  try {
    return { ok: true, filter: parser.filter(json, 'filter', 1) };
  } catch (error) {
    if (error instanceof FilterSyntaxError) return { ok: false, error: error.message };
    throw error;
  }
}

/** Thrown inside the parser only, to unwind from any depth; parseFilter turns it into a result. */
class FilterSyntaxError extends Error {}

const SCALAR_EXPECTED = 'a JSON scalar (string, number, boolean or null)';
const OPERATOR_LIST = COLUMN_OPERATORS.join(', ');

class FilterParser {
  private nodes = 0;
  private inValues = 0;

  constructor(private readonly limits: FilterLimits) {}

  filter(json: unknown, path: string, depth: number): Filter {
    // Checked before looking inside, so hostile nesting costs at most maxDepth stack frames.
    if (depth > this.limits.maxDepth) this.fail(path, `nested deeper than ${this.limits.maxDepth} levels`);
    if (!isPlainObject(json)) this.fail(path, `expected a filter object, got ${describe(json)}`);
    const keys = Object.keys(json);
    if (keys.length === 0) return this.node(path, { kind: 'all' });
    const parts = keys.map((key) => this.entry(key, json[key], `${path}${pathKey(key)}`, depth));
    return parts.length === 1 ? (parts[0] as Filter) : this.node(path, { kind: 'and', children: parts });
  }

  private entry(key: string, value: unknown, path: string, depth: number): Filter {
    switch (key) {
      case 'and':
      case 'or': {
        // Empty lists are refused, as relay.allow refuses them: `{"or": []}` would silently match nothing.
        if (!Array.isArray(value)) this.fail(path, `expected a non-empty array of filters, got ${describe(value)}`);
        if (value.length === 0) this.fail(path, 'expected a non-empty array of filters, got an empty array');
        const kind = key as 'and' | 'or';
        this.count(path);
        const children = value.map((child, i) => this.filter(child, `${path}[${i}]`, depth + 1));
        return { kind, children };
      }
      case 'not':
        this.count(path);
        return { kind: 'not', child: this.filter(value, path, depth + 1) };
      default:
        return this.column(key, value, path);
    }
  }

  /** `{"col": v}` (equality) or `{"col": {"op": v, ...}}` (several operators are ANDed). */
  private column(column: string, value: unknown, path: string): Filter {
    if (isScalar(value) || isClaimObject(value)) {
      return this.node(path, { kind: 'compare', op: 'eq', column, value: this.operand(value, path) });
    }
    if (!isPlainObject(value)) {
      this.fail(path, `expected ${SCALAR_EXPECTED}, a claim reference or an object of operators, got ${describe(value)}`);
    }
    const operators = Object.keys(value);
    if (operators.length === 0) this.fail(path, `expected at least one operator (${OPERATOR_LIST})`);
    const parts = operators.map((op) => this.operator(column, op, value[op], path));
    return parts.length === 1 ? (parts[0] as Filter) : this.node(path, { kind: 'and', children: parts });
  }

  private operator(column: string, op: string, value: unknown, columnPath: string): Filter {
    const path = `${columnPath}${pathKey(op)}`;
    if (op === 'in') return this.node(path, { kind: 'in', column, values: this.list(value, path) });
    if (!isComparisonOperator(op)) {
      this.fail(columnPath, `unknown operator ${JSON.stringify(op)} (expected ${OPERATOR_LIST})`);
    }
    return this.node(path, { kind: 'compare', op, column, value: this.operand(value, path) });
  }

  private operand(json: unknown, path: string): Scalar | ClaimReference {
    const value = exactScalar(json);
    if (isScalar(value)) return value;
    if (isPlainObject(value) && Object.hasOwn(value, 'claim')) return this.claim(value, path);
    return this.fail(path, `expected ${SCALAR_EXPECTED} or a claim reference, got ${describe(value)}`);
  }

  private list(value: unknown, path: string): readonly Scalar[] | ClaimReference {
    if (isPlainObject(value) && Object.hasOwn(value, 'claim')) return this.claim(value, path);
    if (!Array.isArray(value)) this.fail(path, `expected an array of scalars or a claim reference, got ${describe(value)}`);
    // Checked before walking the list, so a huge list is refused without being read.
    this.inValues += value.length;
    if (this.inValues > this.limits.maxInValues) this.fail(path, `more than ${this.limits.maxInValues} "in" values in the filter`);
    return value.map((json: unknown, i) => {
      const item = exactScalar(json);
      if (!isScalar(item)) this.fail(`${path}[${i}]`, `expected ${SCALAR_EXPECTED}, got ${describe(item)}`);
      return item;
    });
  }

  private claim(value: Readonly<Record<string, unknown>>, path: string): ClaimReference {
    const claimPath = `${path}.claim`;
    if (Object.keys(value).length !== 1) this.fail(path, 'a claim reference has the single key "claim"');
    const dotted = value['claim'];
    if (typeof dotted !== 'string') this.fail(claimPath, `expected a dotted claim path string, got ${describe(dotted)}`);
    // Length first, so that a hostile path is refused before it is split (and without echoing it).
    const { maxClaimPathChars, maxClaimPathSegments } = this.limits;
    if (dotted.length > maxClaimPathChars) this.fail(claimPath, `claim path longer than ${maxClaimPathChars} characters`);
    const segments = dotted.split('.');
    if (segments.length > maxClaimPathSegments) this.fail(claimPath, `claim path of more than ${maxClaimPathSegments} segments`);
    if (segments.some((segment) => segment === '')) this.fail(claimPath, `empty segment in claim path ${JSON.stringify(dotted)}`);
    return { kind: 'claim', path: dotted };
  }

  private node(path: string, node: Filter): Filter {
    this.count(path);
    return node;
  }

  private count(path: string): void {
    this.nodes += 1;
    if (this.nodes > this.limits.maxNodes) this.fail(path, `more than ${this.limits.maxNodes} nodes in the filter`);
  }

  private fail(path: string, message: string): never {
    throw new FilterSyntaxError(`${path}: ${message}`);
  }
}

function isComparisonOperator(op: string): op is ComparisonOperator {
  return (COMPARISON_OPERATORS as readonly string[]).includes(op);
}

function isClaimObject(value: unknown): boolean {
  return isPlainObject(value) && Object.hasOwn(value, 'claim');
}

/** `.qty` for identifier-like keys, `["odd key"]` otherwise, so a path is never ambiguous. */
function pathKey(key: string): string {
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(key) ? `.${key}` : `[${JSON.stringify(key)}]`;
}

function describe(value: unknown): string {
  if (value === null || value === undefined) return String(value);
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'number' && !Number.isFinite(value)) return 'a non-finite number';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}
