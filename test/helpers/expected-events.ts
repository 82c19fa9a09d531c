// An independent oracle of what each subscriber must receive, written from the contract alone
// (shared/CONTRACT.md, sections 2 and 3) and deliberately naive: it imports nothing from src/.
// Rows come in as PostgreSQL's to_jsonb gives them (read back by the test), so timestamps are
// never re-derived here.

import { isDeepStrictEqual } from 'node:util';

export type Row = Record<string, unknown>;
export type Claims = Record<string, unknown>;

/** One event as the database publishes it, before any grant or filter. */
export interface ChangeEvent {
  readonly topic: string;
  readonly event: string;
  readonly data: Row;
  readonly old?: Row;
  readonly changed?: readonly string[];
}

/** What one subscriber must see of one event (`changed` sorted: the contract gives no order). */
export interface ExpectedEvent {
  readonly topic: string;
  readonly event: string;
  readonly data: Row;
  readonly old?: Row;
  readonly changed?: readonly string[];
}

// ---------------------------------------------------------------------------------------------
// Events of a row change (contract section 2, relay.watch, and the example's stock events).
// ---------------------------------------------------------------------------------------------

/**
 * The events one row change publishes: insert/delete carry the row; an update carries the new row,
 * the previous values of the changed columns and their names, and nothing at all when no column
 * changed. An inventory update whose quantity crosses low_stock_threshold also publishes its stock
 * event after the update (the test never changes the threshold, so "crossing" is unambiguous).
 */
export function rowChangeEvents(topic: string, op: 'insert' | 'update' | 'delete', before: Row | null, after: Row | null): ChangeEvent[] {
  if (op === 'insert') return [{ topic, event: 'insert', data: required(after) }];
  if (op === 'delete') return [{ topic, event: 'delete', data: required(before) }];
  const oldRow = required(before);
  const newRow = required(after);
  const changed = Object.keys(newRow).filter((column) => !isDeepStrictEqual(newRow[column], oldRow[column])).sort();
  if (changed.length === 0) return [];
  const old: Row = {};
  for (const column of changed) old[column] = oldRow[column];
  const events: ChangeEvent[] = [{ topic, event: 'update', data: newRow, old, changed }];
  if (topic === 'inventory') {
    const stock = stockEvent(oldRow, newRow);
    if (stock !== null) events.push({ topic, event: stock, data: newRow });
  }
  return events;
}

/** low_stock / out_of_stock / restocked, by the contract's wording. */
function stockEvent(oldRow: Row, newRow: Row): string | null {
  const before = Number(oldRow.quantity);
  const after = Number(newRow.quantity);
  const threshold = Number(newRow.low_stock_threshold);
  if (before === after) return null;
  if (before > 0 && after === 0) return 'out_of_stock';
  if (before > threshold && after <= threshold && after > 0) return 'low_stock';
  if (before <= threshold && after > threshold) return 'restocked';
  return null;
}

function required(row: Row | null): Row {
  if (row === null) throw new Error('oracle: a row change without its row');
  return row;
}

// ---------------------------------------------------------------------------------------------
// Grants (contract section 2, "The example application"), as plain predicates.
// ---------------------------------------------------------------------------------------------

/** One grant: which events (by their data and the subscriber's claims) and which columns. */
export interface OracleGrant {
  readonly allows: (data: Row, claims: Claims) => boolean;
  /** null = every column. */
  readonly columns: readonly string[] | null;
}

/** role -> topic -> alternatives (ORed). */
export type GrantTable = Record<string, Record<string, readonly OracleGrant[]>>;

const everything: OracleGrant = { allows: () => true, columns: null };

/** data[column] equals the (string) claim; a missing claim never matches. */
function columnIsClaim(column: string, claim: string): OracleGrant {
  return {
    allows: (data, claims) => typeof claims[claim] === 'string' && data[column] === claims[claim],
    columns: null,
  };
}

/** data[column] is one of the (array) claim's values; a missing claim never matches. */
function columnInClaim(column: string, claim: string): OracleGrant {
  return {
    allows: (data, claims) => {
      const list = claims[claim];
      return Array.isArray(list) && list.includes(data[column]);
    },
    columns: null,
  };
}

/** The example application's grants, exactly as the contract lists them. */
export const EXAMPLE_GRANTS: GrantTable = {
  admin: { orders: [everything], driver_locations: [everything], inventory: [everything] },
  hospital: { orders: [columnIsClaim('hospital_id', 'hospital_id')] },
  customer: { orders: [columnIsClaim('customer_id', 'sub')], driver_locations: [columnIsClaim('customer_id', 'sub')] },
  driver: { orders: [columnIsClaim('driver_id', 'sub')], driver_locations: [columnIsClaim('driver_id', 'sub')] },
  merchant: {
    orders: [columnIsClaim('merchant_id', 'merchant_id')],
    inventory: [columnIsClaim('merchant_id', 'merchant_id'), columnInClaim('merchant_id', 'merchant_ids')],
  },
};

/** A copy of `table` with one more grant (what `relay.allow(topic, role, '{}', columns)` adds). */
export function withGrant(table: GrantTable, topic: string, role: string, columns: readonly string[] | null = null): GrantTable {
  const roleGrants = { ...(table[role] ?? {}) };
  roleGrants[topic] = [...(roleGrants[topic] ?? []), { allows: () => true, columns }];
  return { ...table, [role]: roleGrants };
}

// ---------------------------------------------------------------------------------------------
// Client filters (contract section 2, "Filter language"), for literal values only.
// ---------------------------------------------------------------------------------------------

/**
 * True when data matches a client filter. Keys of one object are ANDed; a missing column reads as
 * JSON null; equality is JSON equality of scalars; lt/lte/gt/gte compare numbers only (the test
 * generates no ordered comparison on strings, whose order the contract does not state).
 */
export function matchesClientFilter(filter: Readonly<Record<string, unknown>>, data: Row): boolean {
  return Object.entries(filter).every(([key, value]) => {
    if (key === 'and') return (value as Row[]).every((child) => matchesClientFilter(child, data));
    if (key === 'or') return (value as Row[]).some((child) => matchesClientFilter(child, data));
    if (key === 'not') return !matchesClientFilter(value as Row, data);
    return matchesCondition(data[key] ?? null, value);
  });
}

function matchesCondition(actual: unknown, condition: unknown): boolean {
  if (condition === null || typeof condition !== 'object') return actual === condition;
  return Object.entries(condition as Row).every(([op, arg]) => {
    switch (op) {
      case 'eq':
        return actual === arg;
      case 'ne':
        return actual !== arg;
      case 'in':
        return (arg as unknown[]).includes(actual);
      case 'lt':
        return typeof actual === 'number' && typeof arg === 'number' && actual < arg;
      case 'lte':
        return typeof actual === 'number' && typeof arg === 'number' && actual <= arg;
      case 'gt':
        return typeof actual === 'number' && typeof arg === 'number' && actual > arg;
      case 'gte':
        return typeof actual === 'number' && typeof arg === 'number' && actual >= arg;
      default:
        throw new Error(`oracle: operator ${op} is not modelled`);
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Delivery (contract section 3, "Rules").
// ---------------------------------------------------------------------------------------------

/** One subscription of one subscriber. */
export interface OracleSubscription {
  readonly role: string;
  readonly claims: Claims;
  readonly topic: string;
  readonly filter?: Readonly<Record<string, unknown>>;
  /** Asked for `left` frames (predicted as events named `left`, with the previous row as data). */
  readonly leaves?: boolean;
}

/**
 * What the subscription receives of the committed events, in commit order: an event some grant
 * of the role matches and the client filter matches, limited to the union of the matching grants'
 * columns; an update none of whose visible columns changed is not sent. An update's `old` and
 * `changed` are left out unless the grants matching the previous row showed every column the
 * subscriber sees now (not so for a row moved into the subscriber's grant); such an update is sent
 * with its data alone, whichever columns changed.
 */
export function expectedEvents(grants: GrantTable, subscription: OracleSubscription, events: readonly ChangeEvent[]): ExpectedEvent[] {
  const alternatives = grants[subscription.role]?.[subscription.topic] ?? [];
  const out: ExpectedEvent[] = [];
  for (const event of events) {
    if (event.topic !== subscription.topic) continue;
    const matching = alternatives.filter((grant) => grant.allows(event.data, subscription.claims));
    if (matching.length === 0 || (subscription.filter !== undefined && !matchesClientFilter(subscription.filter, event.data))) {
      if (subscription.leaves && event.old !== undefined) {
        const left = leftOf(event, alternatives, subscription);
        if (left !== null) out.push(left);
      }
      continue;
    }
    const columns = columnsOf(matching);
    if (!previousRowVisible(event, alternatives, subscription, columns)) {
      out.push({ topic: event.topic, event: event.event, data: columns === null ? event.data : pickColumns(event.data, columns) });
      continue;
    }
    const masked = mask(event, columns);
    if (masked === null) continue;
    out.push(masked);
  }
  return out;
}

/** Whether the grants matching an update's previous row showed every column the subscription sees now. */
function previousRowVisible(event: ChangeEvent, alternatives: readonly OracleGrant[], subscription: OracleSubscription, columns: ReadonlySet<string> | null): boolean {
  if (event.old === undefined) return true;
  const matchingPrevious = alternatives.filter((grant) => grant.allows({ ...event.data, ...event.old }, subscription.claims));
  if (matchingPrevious.length === 0) return false;
  const previousColumns = columnsOf(matchingPrevious);
  if (previousColumns === null) return true;
  const shown = [...Object.keys(event.data), ...Object.keys(event.old)].filter((column) => columns === null || columns.has(column));
  return shown.every((column) => previousColumns.has(column));
}

/**
 * An update that took the row out of the subscription's view: the grants or the client filter
 * matched its previous row. The subscriber gets that row, within the columns of the grants that
 * matched it.
 */
function leftOf(event: ChangeEvent, alternatives: readonly OracleGrant[], subscription: OracleSubscription): ExpectedEvent | null {
  const previous = { ...event.data, ...event.old };
  const matchingPrevious = alternatives.filter((grant) => grant.allows(previous, subscription.claims));
  if (matchingPrevious.length === 0) return null;
  if (subscription.filter !== undefined && !matchesClientFilter(subscription.filter, previous)) return null;
  const columns = columnsOf(matchingPrevious);
  return { topic: event.topic, event: 'left', data: columns === null ? previous : pickColumns(previous, columns) };
}

/** The union of the grants' columns; null = all. */
function columnsOf(grants: readonly { readonly columns: readonly string[] | null }[]): ReadonlySet<string> | null {
  return grants.some((grant) => grant.columns === null) ? null : new Set(grants.flatMap((grant) => grant.columns ?? []));
}

function pickColumns(row: Row, columns: ReadonlySet<string>): Row {
  return Object.fromEntries(Object.entries(row).filter(([column]) => columns.has(column)));
}

function mask(event: ChangeEvent, columns: ReadonlySet<string> | null): { -readonly [K in keyof ExpectedEvent]: ExpectedEvent[K] } | null {
  const base = { topic: event.topic, event: event.event };
  if (columns === null) {
    return {
      ...base,
      data: event.data,
      ...(event.old ? { old: event.old } : {}),
      ...(event.changed ? { changed: [...event.changed].sort() } : {}),
    };
  }
  const pick = (row: Row): Row => pickColumns(row, columns);
  if (event.changed) {
    const changed = event.changed.filter((column) => columns.has(column)).sort();
    if (changed.length === 0) return null;
    return { ...base, data: pick(event.data), old: pick(event.old ?? {}), changed };
  }
  return { ...base, data: pick(event.data) };
}

/** A received event or left frame reduced to what the oracle predicts (`changed` sorted). */
export function comparable(frame: Readonly<Record<string, unknown>>): ExpectedEvent {
  return {
    topic: String(frame.topic),
    event: frame.type === 'left' ? 'left' : String(frame.event),
    data: frame.data as Row,
    ...(frame.old !== undefined ? { old: frame.old as Row } : {}),
    ...(frame.changed !== undefined ? { changed: [...(frame.changed as string[])].sort() } : {}),
  };
}

/** Deep equality of an expected and a received event. */
export function sameEvent(expected: ExpectedEvent, received: ExpectedEvent): boolean {
  return isDeepStrictEqual(expected, received);
}
