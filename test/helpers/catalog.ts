// Grants and watches changed while a relay runs, awaited through the relay's own 'catalog loaded'
// log line instead of a sleep.
import { watchLogLines, type LogLine } from './log-lines.ts';
import type { TestRelay } from './relay.ts';

/** The contract promises "within a second"; this is only a guard so that a miss fails with a message. */
const CATALOG_GUARD_MS = 5_000;

/**
 * Runs `sql` (one statement or a transaction block) on the relay's database and resolves once the
 * relay has loaded a catalog holding the grants and topics that the database now has. The line's
 * counts are checked so that a reload which started before the change is not taken for it.
 */
export async function changeCatalog(relay: TestRelay, sql: string, values: unknown[] = []): Promise<LogLine> {
  const logs = watchLogLines(relay.logLines);
  const mark = logs.mark();
  await relay.db.pool.query(sql, values);
  const { rows } = await relay.db.pool.query<{ grants: number; topics: number }>(
    `select (select count(*)::int from relay.grants) as grants, (select count(*)::int from relay.topics) as topics`,
  );
  const expected = rows[0]!;
  return logs.waitFor(
    (line) => line.msg === 'catalog loaded' && line.grants === expected.grants && line.topics === expected.topics,
    {
      after: mark,
      timeoutMs: CATALOG_GUARD_MS,
      what: `the relay reloading its grants after \`${sql}\` (${expected.grants} grants, ${expected.topics} topics)`,
    },
  );
}
