// Part of catchup: many clients resume at once, as the clients of a relay that was restarted or
// stopped reconnect to another. They are hospital subscribers, several per hospital: each was
// connected, took the cursor of its hospital's last order, went away while each hospital got a few
// more, and comes back with `since`. Clients of one hospital share a cursor; each replay reads the
// whole topic after its cursor and sends what its grant allows. How long until every one has all
// it missed, against the same clients subscribing afresh (the first connections the relay takes:
// its code is not warm yet).
import type pg from 'pg';
import { numberAfterKey } from '../lib/dialect.ts';
import { openRawWebSocket, type RawWebSocket } from '../lib/raw-websocket.ts';
import type { SubscriberSpec } from '../lib/subscriber-messages.ts';

export interface ResumeStormOptions {
  readonly hospitals: number;
  readonly perHospital: number;
  /** Orders each hospital got while its clients were away: the events each client missed. */
  readonly ordersBehind: number;
}

export interface ResumeStormResult {
  readonly clients: number;
  readonly hospitals: number;
  readonly ordersBehind: number;
  /** Events of the topic after the clients' cursors: what each replay reads from the log. */
  readonly eventsAfterCursors: number;
  /** Every client opening and subscribing afresh, all at once: until the last `subscribed`. */
  readonly freshSeconds: number;
  /** Every client resuming at once: until the last one has every event it missed. */
  readonly resumeSeconds: number;
  readonly resumesPerSecond: number;
  /** Events a client missed and did not get (of clients × ordersBehind). */
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

/** One order for each hospital, in one transaction; returns their ids by hospital. */
async function orderForEach(db: pg.Client, hospitals: readonly string[]): Promise<Map<string, number>> {
  const { rows } = await db.query<{ id: string; hospital_id: string }>(
    `insert into public.bench_orders (hospital_id, status, sent_at, note)
     select h, 'placed', 0, repeat('x', 100) from unnest($1::text[]) h
     returning id, hospital_id`,
    [hospitals],
  );
  return new Map(rows.map((row) => [row.hospital_id, Number(row.id)]));
}

/**
 * Runs the storm against a relay on `port` whose database `db` holds public.bench_orders. `specs`
 * are hospital subscribers (`tenant`: their hospital).
 */
export async function runResumeStorm(port: number, db: pg.Client, specs: readonly SubscriberSpec[], options: ResumeStormOptions): Promise<ResumeStormResult> {
  const hospitals = [...new Set(specs.map((spec) => spec.tenant ?? ''))];
  // Live first, all at once: each client keeps the cursor of the first order it receives.
  const cursors: string[] = [];
  const seen = specs.map(() => new Set<number>());
  let withCursor = 0;
  let everyCursor!: () => void;
  const allHaveCursors = new Promise<void>((resolve) => (everyCursor = resolve));
  const freshStarted = performance.now();
  const live = await Promise.all(
    specs.map((spec, index) =>
      subscribeClient(port, spec, undefined, (text) => {
        if (cursors[index] !== undefined) return;
        cursors[index] = CURSOR.exec(text)?.[1] ?? '';
        // Had already: the replay must not send it again.
        seen[index]!.add(numberAfterKey(text, 'id'));
        if (++withCursor === specs.length) everyCursor();
      }),
    ),
  );
  const freshSeconds = (performance.now() - freshStarted) / 1000;
  await orderForEach(db, hospitals);
  await allHaveCursors;
  for (const socket of live) socket.close();

  // Away: each hospital gets its orders, a transaction per round.
  const missedBy = new Map(hospitals.map((hospital) => [hospital, new Set<number>()]));
  for (let i = 0; i < options.ordersBehind; i++) {
    for (const [hospital, id] of await orderForEach(db, hospitals)) missedBy.get(hospital)!.add(id);
  }

  // Back, all at once.
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
    if (!missedBy.get(specs[index]!.tenant ?? '')?.has(id) || ++caughtUp[index]! < options.ordersBehind) return;
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
  const missing = specs.reduce((sum, _, index) => sum + options.ordersBehind - caughtUp[index]!, 0);
  return {
    clients: specs.length,
    hospitals: hospitals.length,
    ordersBehind: options.ordersBehind,
    eventsAfterCursors: hospitals.length * options.ordersBehind,
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
