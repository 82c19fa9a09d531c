// The shapes the decision side works with: an event as the relay sees it, a grant row, the claims.

/** One change event of a topic, as decoded from the database side. */
export interface RelayEvent {
  readonly topic: string;
  /** 'insert' | 'update' | 'delete' | any custom event name from relay.publish. */
  readonly event: string;
  /** Opaque, already encoded. */
  readonly cursor: string;
  /** ISO 8601 commit time. */
  readonly ts: string;
  readonly data: Readonly<Record<string, unknown>>;
  /** Update only: previous values of the changed columns. */
  readonly old?: Readonly<Record<string, unknown>>;
  /** Update only: names of the changed columns. */
  readonly changed?: readonly string[];
}

/** One row of relay.grants, as loaded from the database. */
export interface Grant {
  readonly topic: string;
  readonly role: string;
  /** Raw JSON: validated by SQL already, parsed again defensively. */
  readonly filter: unknown;
  /** The only columns the role may see; null = all columns. */
  readonly columns: readonly string[] | null;
}

/** A verified JWT payload. */
export type Claims = Readonly<Record<string, unknown>>;
