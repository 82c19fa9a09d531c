// Commits made to look an hour old to retention (relay.prune), without waiting an hour: their
// stamps are set back, and a retention mark an hour old records every transaction of the log as
// committed by then (relay.prune deletes a commit only once a mark that old saw it committed).

/** Something that runs a query (a pool, or a client outside a transaction). */
interface Queryable {
  query(text: string, values?: unknown[]): Promise<unknown>;
}

/** Sets back by an hour the stamps of the commits `where` (SQL over relay.commits, with `values`). */
export async function ageCommits(db: Queryable, where = 'true', values: unknown[] = []): Promise<void> {
  await db.query(`update relay.commits set committed_at = committed_at - interval '1 hour' where ${where}`, values);
  // Tests write commits with made-up transaction ids too: the mark covers those as well.
  await db.query(
    `insert into relay.prune_marks (taken_at, snapshot)
     select now() - interval '1 hour', format('%s:%s:', x, x)::pg_snapshot
       from (select greatest(pg_snapshot_xmax(pg_current_snapshot())::text::bigint,
                             (select max(xid::text::bigint) + 1 from relay.commits)) as x) newest
     on conflict (taken_at) do nothing`,
  );
}
