// catchup: a client that was offline while 100,000 rows were written resumes from its last cursor
// and receives every one of them, once, in order of commit; how fast, and what it costs the
// relay's memory. Then many clients resume at once (bench/scenarios/resume-storm.ts). Only
// pg-relay can: the peers have no cursor to resume from.
import pg from 'pg';
import { openRawWebSocket, type RawWebSocket } from '../lib/raw-websocket.ts';
import { rssBytes } from '../lib/process-stats.ts';
import { freshDatabase, prepareDatabase } from '../lib/postgres.ts';
import { createReceivedIds } from '../lib/received-ids.ts';
import { startSystemProcess } from '../lib/system-process.ts';
import { SYSTEMS } from '../lib/systems.ts';
import { subscriberSpecs, tenantNames } from '../lib/tokens.ts';
import { numberAfterKey } from '../lib/dialect.ts';
import type { ScenarioContext } from './context.ts';
import { CURSOR, runResumeStorm, STALL_MS, type ResumeStormOptions, type ResumeStormResult } from './resume-storm.ts';

export interface CatchupOptions {
  readonly rows: number;
  readonly rowsPerTransaction: number;
  /** Then, on the same relay: many clients resuming at once. */
  readonly storm: ResumeStormOptions;
}

export const CATCHUP_DEFAULTS: CatchupOptions = {
  rows: 100_000,
  rowsPerTransaction: 100,
  storm: { hospitals: 100, perHospital: 20, ordersBehind: 10 },
};

export interface CatchupResult {
  readonly rows: number;
  readonly received: number;
  readonly duplicates: number;
  readonly outOfOrder: number;
  readonly seconds: number;
  readonly eventsPerSecond: number;
  readonly relayRssBeforeMb: number;
  readonly relayRssPeakMb: number;
  /** The same rows read straight from the log with one SELECT: the ceiling. */
  readonly selectSeconds: number;
  readonly storm: ResumeStormResult;
}

export async function runCatchup(context: ScenarioContext, options: CatchupOptions = CATCHUP_DEFAULTS): Promise<CatchupResult> {
  const spec = SYSTEMS['pg-relay']!;
  const url = await freshDatabase(context.postgres.serverUrl, 'bench_catchup');
  await prepareDatabase(url, spec.database!);
  const system = await startSystemProcess(spec.name, spec.args, { DATABASE_URL: url, JWT_SECRET: context.jwtSecret });
  const db = new pg.Client({ connectionString: url });
  await db.connect();
  try {
    const [admin] = await subscriberSpecs(context.jwtSecret, [], 0, 1);
    const path = `/ws?access_token=${encodeURIComponent(admin!.token)}`;
    const insertRows = (count: number): Promise<unknown> =>
      db.query(
        `insert into public.bench_orders (hospital_id, status, sent_at, note)
         select 'H' || (i % 100), 'placed', 0, repeat('x', 100) from generate_series(1, $1::int) i`,
        [count],
      );

    // A live subscriber takes the cursor of one row, then goes away.
    let since = '';
    await new Promise<void>((resolve, reject) => {
      const socket = openRawWebSocket(
        { host: '127.0.0.1', port: system.port, path },
        {
          onOpen: (ws) => ws.sendText('{"type":"subscribe","topic":"orders"}'),
          onText: (text) => {
            if (text.startsWith('{"type":"subscribed"')) void insertRows(1);
            const cursor = CURSOR.exec(text)?.[1];
            if (text.startsWith('{"type":"event"') && cursor) {
              since = cursor;
              socket.close();
              resolve();
            }
          },
          onClose: (code, reason) => reject(new Error(`catchup: closed ${code} ${reason} before the first event`)),
        },
      );
    }).catch((error: unknown) => {
      if (!since) throw error;
    });

    context.log(`catchup: writing ${options.rows} rows while the subscriber is away`);
    for (let written = 0; written < options.rows; written += options.rowsPerTransaction) {
      await insertRows(Math.min(options.rowsPerTransaction, options.rows - written));
    }
    const { rows: lowRows } = await db.query<{ low: string }>('select min(id) + 1 as low from public.bench_orders');
    const firstId = Number(lowRows[0]!.low);

    const relayRssBeforeMb = rssBytes(system.pid) / 2 ** 20;
    let relayRssPeakMb = relayRssBeforeMb;
    const sampler = setInterval(() => (relayRssPeakMb = Math.max(relayRssPeakMb, rssBytes(system.pid) / 2 ** 20)), 100);
    const received = createReceivedIds();
    let count = 0;
    let duplicates = 0;
    let outOfOrder = 0;
    let lastId = 0;
    const started = performance.now();
    let finished = started;
    await new Promise<void>((resolve, reject) => {
      let socket: RawWebSocket | undefined;
      let stall = setTimeout(resolve, STALL_MS);
      socket = openRawWebSocket(
        { host: '127.0.0.1', port: system.port, path },
        {
          onOpen: (ws) => ws.sendText(JSON.stringify({ type: 'subscribe', topic: 'orders', since })),
          onText: (text) => {
            if (text.startsWith('{"type":"error"')) reject(new Error(`catchup: ${text}`));
            if (!text.startsWith('{"type":"event"')) return;
            const id = numberAfterKey(text, 'id');
            // One writer, so commit order is id order here.
            if (id < lastId) outOfOrder++;
            lastId = id;
            if (!received.add(id)) duplicates++;
            else count++;
            finished = performance.now();
            clearTimeout(stall);
            if (count >= options.rows) {
              socket?.close();
              resolve();
            } else stall = setTimeout(resolve, STALL_MS);
          },
          onClose: (code, reason) => {
            if (count < options.rows) reject(new Error(`catchup: closed ${code} ${reason} after ${count} events`));
          },
        },
      );
    }).finally(() => clearInterval(sampler));
    const seconds = (finished - started) / 1000;

    const selectStarted = performance.now();
    await db.query('select * from relay.events where topic = $1', ['orders']);
    const selectSeconds = (performance.now() - selectStarted) / 1000;
    const { hospitals, perHospital, ordersBehind } = options.storm;
    context.log(`catchup: ${hospitals * perHospital} hospital subscribers resuming at once, ${ordersBehind} orders behind each`);
    const stormSpecs = await subscriberSpecs(context.jwtSecret, tenantNames(hospitals), perHospital, 0);
    const storm = await runResumeStorm(system.port, db, stormSpecs, options.storm);
    const result: CatchupResult = {
      rows: options.rows,
      received: received.countBetween(firstId, firstId + options.rows - 1),
      duplicates,
      outOfOrder,
      seconds: Math.round(seconds * 100) / 100,
      eventsPerSecond: Math.round(count / seconds),
      relayRssBeforeMb: Math.round(relayRssBeforeMb),
      relayRssPeakMb: Math.round(relayRssPeakMb),
      selectSeconds: Math.round(selectSeconds * 100) / 100,
      storm,
    };
    context.log(`catchup: ${JSON.stringify(result)}`);
    return result;
  } finally {
    await db.end();
    await system.stop();
  }
}
