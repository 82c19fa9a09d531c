// PREPARE TRANSACTION needs max_prepared_transactions > 0, which PostgreSQL's default (and the
// embedded server's) is not: tests of prepared transactions skip, saying how to run them.

/** Something that runs a query (a pool, or a client outside a transaction). */
interface Queryable {
  query<R extends Record<string, unknown>>(text: string, values?: unknown[]): Promise<{ rows: R[] }>;
}

/** false when the server allows prepared transactions; else why their tests skip (tap's `skip`). */
export async function twoPhaseCommitOff(db: Queryable): Promise<string | false> {
  const { rows } = await db.query<{ max: string }>(`select current_setting('max_prepared_transactions') as max`);
  return Number(rows[0]?.max) > 0
    ? false
    : 'the server has max_prepared_transactions = 0, so PREPARE TRANSACTION is refused (run PostgreSQL with -c max_prepared_transactions=10 to test it)';
}
