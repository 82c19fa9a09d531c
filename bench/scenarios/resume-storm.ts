// Part of catchup: many clients resume at once, as the clients of a relay that was restarted or
// stopped reconnect to another. Each was connected, took the cursor of the same last event (they
// are admins: every row reaches each), went away while a few more were committed, and comes back
// with `since`. How long until every one has all it missed, against the same clients subscribing
// afresh (the first connections the relay takes: its code is not warm yet).
import type pg from 'pg';
import { numberAfterKey } from '../lib/dialect.ts';
import { openRawWebSocket, type RawWebSocket } from '../lib/raw-websocket.ts';
import type { SubscriberSpec } from '../lib/subscriber-messages.ts';

export interface ResumeStormOptions {
  readonly clients: number;
  /** Events committed while the clients were away. */
  readonly eventsBehind: number;
}

export interface ResumeStormResult {
  readonly clients: number;
  readonly eventsBehind: number;
  /** Every client opening and subscribing afresh, all at once: until the last `subscribed`. */
  readonly freshSeconds: number;
  /** Every client resuming at once: until the last one has every event it missed. */
  readonly resumeSeconds: number;
  readonly resumesPerSecond: number;
  /** Events a client missed and did not get (of clients × eventsBehind). */
  readonly missing: number;
  readonly duplicates: number;
}

/** An event frame's cursor. */
export const CURSOR = /"cursor":"([^"]+)"/;
/** How long a catch-up waits for an event before it counts what is missing. */
export const STALL_MS = 10_000;

/** Opens a connection and subscribes to orders (from `since` if given); events go to `onEvent`. */
function subscribeClient(port: number, spec: SubscriberSpec, since: string | undefined, onEvent: (text: string) => void): Promise<RawWebSocket> {
  return new Promise<RawWebSocket>((resolve, reject) => {
    const socket = openRawWebSocket(
      { host: '127.0.0.1', port, path: `/ws?access_token=${encodeURIComponent(spec.token)}` },
      {
        onOpen: (ws) => ws.sendText(JSON.stringify({ type: 'subscribe', topic: 'orders', ...(since ? { since } : {}) })),
        onText: (text) => {
          if (text.startsWith('{"type":"subscribed"')) resolve(socket);
          else if (text.startsWith('{"type":"event"')) onEvent(text);
          else if (text.startsWith('{"type":"error"')) reject(new Error(`resume storm: ${text}`));
        },
        onClose: (code, reason) => reject(new Error(`resume storm: closed ${code} ${reason}`)),
      },
    );
  });
}

/**
 * Runs the storm against a relay on `port` whose database `db` holds public.bench_orders. `specs`
 * are admins (every row reaches each). `insertRows(n)` commits n rows in one transaction.
 */
export async function runResumeStorm(
  port: number,
  db: pg.Client,
  specs: readonly SubscriberSpec[],
  insertRows: (count: number) => Promise<unknown>,
  options: ResumeStormOptions,
): Promise<ResumeStormResult> {
  // Live first, all at once: each client keeps the cursor of the first row it receives.
  const cursors: string[] = [];
  let withCursor = 0;
  let everyCursor!: () => void;
  const allHaveCursors = new Promise<void>((resolve) => (everyCursor = resolve));
  const freshStarted = performance.now();
  const live = await Promise.all(
    specs.map((spec, index) =>
      subscribeClient(port, spec, undefined, (text) => {
        if (cursors[index] !== undefined) return;
        cursors[index] = CURSOR.exec(text)?.[1] ?? '';
        if (++withCursor === specs.length) everyCursor();
      }),
    ),
  );
  const freshSeconds = (performance.now() - freshStarted) / 1000;
  await insertRows(1);
  await allHaveCursors;
  for (const socket of live) socket.close();

  // Away: each row in its own transaction, as writers commit them.
  for (let i = 0; i < options.eventsBehind; i++) await insertRows(1);
  const { rows } = await db.query<{ low: string; high: string }>(
    `select max(id) - $1::int + 1 as low, max(id) as high from public.bench_orders`,
    [options.eventsBehind],
  );
  const low = Number(rows[0]!.low);
  const high = Number(rows[0]!.high);

  // Back, all at once.
  const seen = specs.map(() => new Set<number>());
  /** Of the events each client missed, how many it has. */
  const caughtUp = specs.map(() => 0);
  let duplicates = 0;
  let complete = 0;
  const resumeStarted = performance.now();
  let resumeEnded = resumeStarted;
  let stall: NodeJS.Timeout | undefined;
  let endWait!: () => void;
  const waited = new Promise<void>((resolve) => (endWait = resolve));
  // A client short of events ends the wait once nothing has arrived for a while.
  const restartStall = (): void => {
    clearTimeout(stall);
    stall = setTimeout(endWait, STALL_MS);
  };
  const onEvent = (index: number, text: string): void => {
    const id = numberAfterKey(text, 'id');
    const mine = seen[index]!;
    restartStall();
    if (mine.has(id)) {
      duplicates++;
      return;
    }
    mine.add(id);
    if (id < low || id > high || ++caughtUp[index]! < options.eventsBehind) return;
    resumeEnded = performance.now();
    if (++complete === specs.length) endWait();
  };
  restartStall();
  const subscriptions = Promise.all(specs.map((spec, index) => subscribeClient(port, spec, cursors[index], (text) => onEvent(index, text))));
  try {
    await Promise.race([waited, subscriptions.then(() => waited)]);
  } finally {
    clearTimeout(stall);
  }
  const resumed = await subscriptions;
  for (const socket of resumed) socket.close();
  const resumeSeconds = (resumeEnded - resumeStarted) / 1000;
  let missing = 0;
  for (const mine of seen) for (let id = low; id <= high; id++) if (!mine.has(id)) missing++;
  return {
    clients: specs.length,
    eventsBehind: options.eventsBehind,
    freshSeconds: round2(freshSeconds),
    resumeSeconds: round2(resumeSeconds),
    resumesPerSecond: Math.round(specs.length / resumeSeconds),
    missing,
    duplicates,
  };
}

function round2(value: number): number {
  return Math.round(value * 100) / 100;
}
