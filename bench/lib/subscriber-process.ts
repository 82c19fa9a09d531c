// A bench load process: holds many subscriber connections, checks every received row against what
// its subscriber must get, and measures latency against the writer's stamp. Forked by the harness;
// several run side by side so that no single process is the bottleneck or exceeds its fd limit.

import { dialectNamed } from './dialects.ts';
import { bucketOf, createHistogram, recordInBucket, type Histogram } from './histogram.ts';
import { openRawWebSocket, type RawWebSocket } from './raw-websocket.ts';
import { createReceivedIds, type ReceivedIds } from './received-ids.ts';
import type { SubscriberCommand, SubscriberReport, SubscriberSpec } from './subscriber-messages.ts';

interface Subscriber {
  readonly spec: SubscriberSpec;
  readonly received: ReceivedIds;
  socket?: RawWebSocket;
  events: number;
  duplicates: number;
  closed: boolean;
}

const subscribers: Subscriber[] = [];
let window = createHistogram();
let windowEvents = 0;
let windowLastEventUs = 0;
let progressHistogram = createHistogram();

function send(report: SubscriberReport): void {
  process.send?.(report);
}

async function connectAll(command: Extract<SubscriberCommand, { type: 'connect' }>): Promise<void> {
  const dialect = dialectNamed(command.dialect);
  let next = 0;
  let opened = 0;
  let failed = 0;
  let firstError: string | undefined;
  const openOne = (subscriber: Subscriber, index: number): Promise<void> =>
    new Promise((resolve) => {
      let settled = false;
      const settle = (ok: boolean, error?: string): void => {
        if (settled) return;
        settled = true;
        if (ok) opened++;
        else {
          failed++;
          firstError ??= error;
        }
        resolve();
      };
      const localAddress = command.localAddresses[index % command.localAddresses.length];
      subscriber.socket = openRawWebSocket(
        {
          host: command.host,
          port: command.port,
          path: dialect.upgradePath(subscriber.spec.token),
          protocol: dialect.protocol,
          localAddress,
        },
        {
          onOpen(socket) {
            for (const frame of dialect.greeting(subscriber.spec.token)) socket.sendText(frame);
            settle(true);
          },
          onText(text, receivedUs) {
            const meaning = dialect.read(text);
            if (meaning.kind === 'event') {
              const latency = receivedUs - meaning.sentAtUs;
              windowLastEventUs = receivedUs;
              const bucket = bucketOf(latency);
              recordInBucket(window, bucket, latency);
              recordInBucket(progressHistogram, bucket, latency);
              windowEvents++;
              subscriber.events++;
              if (!subscriber.received.add(meaning.rowId)) subscriber.duplicates++;
            } else if (meaning.kind === 'reply') subscriber.socket?.sendText(meaning.text);
            else if (meaning.kind === 'error') {
              firstError ??= meaning.message;
              process.stderr.write(`subscriber error: ${meaning.message.slice(0, 300)}\n`);
            }
          },
          onClose(code, reason) {
            subscriber.closed = true;
            settle(false, `closed ${code} ${reason}`);
          },
        },
      );
    });
  const workers = Array.from({ length: Math.max(1, command.concurrency) }, async () => {
    while (next < subscribers.length) {
      const index = next++;
      await openOne(subscribers[index]!, index);
    }
  });
  await Promise.all(workers);
  send({ type: 'connected', opened, failed, firstError });
}

function settle(command: Extract<SubscriberCommand, { type: 'settle' }>): SubscriberReport {
  let missing = 0;
  let duplicates = 0;
  const total = Object.values(command.rowsByTenant).reduce((sum, rows) => sum + rows, 0);
  for (const subscriber of subscribers) {
    const expected = subscriber.spec.tenant === null ? total : (command.rowsByTenant[subscriber.spec.tenant] ?? 0);
    missing += expected - subscriber.received.countBetween(command.low, command.high);
    duplicates += subscriber.duplicates;
  }
  return { type: 'settled', missing, duplicates, events: windowEvents, histogram: window, lastEventUs: windowLastEventUs };
}

process.on('message', (command: SubscriberCommand) => {
  switch (command.type) {
    case 'connect':
      for (const spec of command.subscribers) {
        subscribers.push({ spec, received: createReceivedIds(), events: 0, duplicates: 0, closed: false });
      }
      void connectAll(command);
      return;
    case 'begin-window':
      window = createHistogram();
      windowEvents = 0;
      windowLastEventUs = 0;
      for (const subscriber of subscribers) subscriber.duplicates = 0;
      return;
    case 'progress': {
      const histogram: Histogram = progressHistogram;
      progressHistogram = createHistogram();
      send({
        type: 'progress',
        events: windowEvents,
        withoutEvents: subscribers.filter((subscriber) => subscriber.events === 0).length,
        closed: subscribers.filter((subscriber) => subscriber.closed).length,
        histogram,
      });
      return;
    }
    case 'settle':
      send(settle(command));
      return;
    case 'close':
      for (const subscriber of subscribers) subscriber.socket?.close();
      send({ type: 'closed' });
      process.disconnect?.();
      return;
  }
});

