// A grant change that ends a client's subscriptions sends it one `forbidden` per subscription; a
// client that has stopped reading can pass its send budget in the middle of them, and the relay
// closes it right there (4008). Its other subscriptions end with the close. Subscribers of other
// roles who share an access class with one of them (same topic, filter and columns) must keep
// receiving their events.
import { readFileSync } from 'node:fs';
import t from 'tap';
import { changeCatalog } from '../helpers/catalog.ts';
import { nextFrame, subscribe } from '../helpers/frames.ts';
import { guarded } from '../helpers/guard.ts';
import { scrapeMetrics } from '../helpers/metrics.ts';
import { startTestRelay } from '../helpers/relay.ts';
import { tcpSocketOf, type Frame } from '../helpers/ws-client.ts';

const SEND_BUDGET_BYTES = 64 * 1024;
/** Each `forbidden` frame names the role and the topic: about 750 bytes each, 300 KB in all. */
const REVOKED_TOPICS = 400;
const HOARDER_ROLE = `hoarder-${'h'.repeat(240)}`;
const FILLER = 'filler';
const SHARED = 'shared-notes';
/** Filler events: small next to the budget, so that the relay's own buffer starts well under it. */
const FILLER_PAD_BYTES = 8 * 1024;
/** A guard only: the close frame follows what the relay still held for the hoarder. */
const CLOSE_GUARD_MS = 30_000;
/** A guard only: loopback buffers of a paused client hold a few MB. */
const MAX_FILLER_EVENTS = 4000;

const paddedTopic = (n: number): string => `padded-${String(n).padStart(240, '0')}`;
const isEvent = (frame: Frame): boolean => frame.type === 'event';

/** A TCP connection's bytes held by the kernel (unacknowledged on the sending side, unread on the receiving one), from /proc/net/tcp. */
function kernelQueuedBytes(fromPort: number, toPort: number): number {
  const queues = new Map<string, { tx: number; rx: number }>();
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const fields = line.trim().split(/\s+/);
    if (fields.length < 5) continue;
    const [tx, rx] = fields[4]!.split(':').map((hex) => parseInt(hex, 16));
    const local = parseInt(fields[1]!.split(':')[1]!, 16);
    const remote = parseInt(fields[2]!.split(':')[1]!, 16);
    queues.set(`${local}>${remote}`, { tx: tx!, rx: rx! });
  }
  const sending = queues.get(`${fromPort}>${toPort}`);
  const receiving = queues.get(`${toPort}>${fromPort}`);
  if (!sending || !receiving) throw new Error(`no connection ${fromPort} > ${toPort} in /proc/net/tcp`);
  return sending.tx + receiving.rx;
}

t.test('a client closed for its backlog while its subscriptions are revoked leaves the access classes it shared intact', async (t) => {
  const relay = await startTestRelay(t, {
    RELAY_MAX_BACKPRESSURE: String(SEND_BUDGET_BYTES),
    RELAY_MAX_SUBSCRIPTIONS: String(REVOKED_TOPICS + 2),
    RELAY_MAX_MESSAGES_PER_SECOND: '100000',
  });
  await changeCatalog(
    relay,
    `insert into relay.grants (topic, role)
     select t, $1 from (select 'padded-' || lpad(n::text, 240, '0') from generate_series(1, $2::int) n) s(t)
     union all select $3, $1 union all select $4, $1 union all select $3, 'witness' union all select $4, 'witness'`,
    [HOARDER_ROLE, REVOKED_TOPICS, FILLER, SHARED],
  );
  const witness = await relay.connect({ role: 'witness', sub: 'witness' });
  await subscribe(witness, FILLER);
  await subscribe(witness, SHARED);
  const hoarder = await relay.connect({ role: HOARDER_ROLE, sub: 'hoarder' });
  // The shared topic last: the revoke goes through the subscriptions in this order.
  for (const topic of [FILLER, ...Array.from({ length: REVOKED_TOPICS }, (_, i) => paddedTopic(i + 1)), SHARED]) {
    hoarder.send({ type: 'subscribe', topic });
  }
  const replies = await hoarder.take(REVOKED_TOPICS + 2);
  t.equal(replies.filter((frame) => frame.type === 'subscribed').length, REVOKED_TOPICS + 2, 'the hoarder subscribed to every topic');

  // The hoarder stops reading. Filler events go to it (and to the witness, who reads) until the
  // kernel has taken less than half of each of three in a row (it then holds a few MB): the rest
  // waits in the relay, well under the budget. One such event alone proves nothing: the client
  // reading what it took before its pause took hold shows as less held.
  const hoarderSocket = tcpSocketOf(hoarder);
  hoarderSocket.pause();
  const kernelHeld = (): number => kernelQueuedBytes(relay.port, hoarderSocket.localPort);
  let shortSteps = 0;
  for (let n = 0; n < MAX_FILLER_EVENTS && shortSteps < 3; n++) {
    const before = kernelHeld();
    await relay.db.pool.query(`select relay.publish($1, 'filler', jsonb_build_object('n', $2::int, 'pad', repeat('x', $3::int)))`, [
      FILLER,
      n,
      FILLER_PAD_BYTES,
    ]);
    await nextFrame(witness, `filler event ${n} at the witness`, (frame) => isEvent(frame) && (frame.data as { n: number }).n === n);
    const grew = kernelHeld() - before;
    shortSteps = grew >= 0 && grew < FILLER_PAD_BYTES / 2 ? shortSteps + 1 : 0;
  }
  t.equal(shortSteps, 3, 'the kernel stopped taking the hoarder’s frames whole: the relay holds the rest');
  t.equal(relay.logLines.filter((line) => line.msg === 'a client fell too far behind; closing it').length, 0, 'the hoarder is still open');

  const hoarderClosed = hoarder.closed();
  await changeCatalog(relay, `delete from relay.grants where role = $1`, [HOARDER_ROLE]);
  t.equal(
    relay.logLines.filter((line) => line.msg === 'a client fell too far behind; closing it').length,
    1,
    'the forbidden frames took the hoarder past its budget, and the relay closed it',
  );
  hoarderSocket.resume();
  t.match(await guarded(hoarderClosed, CLOSE_GUARD_MS, 'the hoarder’s close'), { code: 4008 }, 'with 4008');

  await relay.db.pool.query(`select relay.publish($1, 'note', '{"n": 1}')`, [SHARED]);
  t.match(
    await nextFrame(witness, 'the witness receiving the shared topic’s next event', isEvent),
    { topic: SHARED, data: { n: 1 } },
    'the witness, who shared an access class with the hoarder, still receives it',
  );
  await relay.db.pool.query(`select relay.publish($1, 'filler', '{"n": -1}')`, [FILLER]);
  t.match(await nextFrame(witness, 'the witness receiving the filler topic’s next event', isEvent), { topic: FILLER, data: { n: -1 } });
  const { samples } = await scrapeMetrics(relay);
  t.equal(samples.get('relay_subscriptions'), 2, 'the relay counts the witness’s two subscriptions, and no more');
});
