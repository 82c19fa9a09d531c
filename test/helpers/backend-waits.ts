// What another session is waiting for, as pg_stat_activity shows it: a test that must know that a
// session is blocked (or that it never is) polls that condition instead of sleeping.
import type pg from 'pg';

/** Where the observing queries run: a connection other than the one observed. */
type Queryable = pg.Pool | pg.ClientBase;

const POLL_MS = 5;

/**
 * Polls backend `pid`, which runs `work`, until it waits with a wait event of one of `types`
 * (`Lock` for a lock, `Timeout` for pg_sleep, ...): resolves to that type, or to 'finished' if
 * `work` settles first. `work`'s rejection is the caller's to handle.
 */
export async function waitOrFinish(observer: Queryable, pid: number, work: Promise<unknown>, types: readonly string[]): Promise<string> {
  let settled = false;
  work.then(
    () => (settled = true),
    () => (settled = true),
  );
  for (;;) {
    if (settled) return 'finished';
    const { rows } = await observer.query<{ type: string | null }>(
      `select wait_event_type as type from pg_stat_activity where pid = $1`,
      [pid],
    );
    const type = rows[0]?.type;
    // A statement that ended while this query ran shows no wait, or its session's next one.
    if (settled) return 'finished';
    if (type && types.includes(type)) return type;
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

/**
 * Whether `work`, running on backend `pid`, finishes without that backend ever being seen waiting
 * for a lock. If it is seen waiting, `unblock` is called so that the test can go on and end, and
 * the answer is false, once `work` has settled.
 */
export async function finishesWithoutLockWait(
  observer: Queryable,
  pid: number,
  work: Promise<unknown>,
  unblock: () => Promise<unknown>,
): Promise<boolean> {
  const outcome = await waitOrFinish(observer, pid, work, ['Lock']);
  if (outcome !== 'finished') await unblock();
  await work;
  return outcome === 'finished';
}

/** Polls `sql`, a query of one row with one boolean column, until it says true. */
export async function untilTrue(observer: Queryable, sql: string): Promise<void> {
  for (;;) {
    const { rows } = await observer.query<Record<string, unknown>>(sql);
    if (Object.values(rows[0] ?? {})[0] === true) return;
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}
