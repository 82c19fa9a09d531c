// RELAY_MAX_CONNECTIONS_PER_SUBJECT: how many connections each token subject (`sub`) has open, so
// that one token (or one user's tokens) cannot take every connection of a relay. A connection
// counts for the subject of the token it was opened with, for its whole life: an `auth` that
// changes the subject does not move it. To exceed a subject's limit that way, a client needs tokens
// of as many other subjects, which it could use directly.

/** Open connections per subject, against a limit (null: none). Tokens without `sub` are not counted. */
export interface SubjectConnections {
  /** Whether one more connection of `sub` is within the limit. */
  admits(sub: string | null): boolean;
  opened(sub: string | null): void;
  closed(sub: string | null): void;
}

export function createSubjectConnections(limit: number | null): SubjectConnections {
  const open = new Map<string, number>();
  return {
    admits: (sub) => limit === null || sub === null || (open.get(sub) ?? 0) < limit,
    opened(sub) {
      if (limit === null || sub === null) return;
      open.set(sub, (open.get(sub) ?? 0) + 1);
    },
    closed(sub) {
      if (limit === null || sub === null) return;
      const left = (open.get(sub) ?? 0) - 1;
      // Deleted at 0: a relay sees many subjects over its life, and keeps only those connected.
      if (left > 0) open.set(sub, left);
      else open.delete(sub);
    },
  };
}
