// A subscription resuming from a cursor holds the live events that come during its replay. When
// its claims (`auth`) or its grants change meanwhile, what it was holding must go out under the
// new ones: no row and no column the subscription is no longer allowed.
import t, { type Test } from 'tap';
import { changeCatalog } from '../helpers/catalog.ts';
import { collectFrames, type FrameCollector } from '../helpers/event-collector.ts';
import { readLog } from '../helpers/event-log.ts';
import { nextFrame, subscribe } from '../helpers/frames.ts';
import { watchLogLines } from '../helpers/log-lines.ts';
import { startTestRelay, type TestRelay } from '../helpers/relay.ts';
import { tcpSocketOf, type TestClient } from '../helpers/ws-client.ts';

/** Publishes an order event and waits until the admin has it: live delivery has handed it over. */
async function publishLive(relay: TestRelay, admin: TestClient, data: Record<string, string>): Promise<void> {
  await relay.db.pool.query(`select relay.publish('orders', 'note', $1::jsonb)`, [JSON.stringify(data)]);
  await nextFrame(admin, `the admin's copy of ${data.n}`, (frame) => frame.type === 'event' && (frame.data as { n?: string }).n === data.n);
}

/**
 * An admin live on orders, and a client of `claims` resuming from the first of 600 orders of 20 KB
 * of `backlogData`: more than the kernel's buffers take for a client that does not read, so once
 * the client pauses, its replay waits and the subscription stays catching up.
 */
async function pausedResume(t: Test, claims: Record<string, unknown>, backlogData: Record<string, string>) {
  const relay = await startTestRelay(t);
  if (claims.role === 'auditor') await changeCatalog(relay, `select relay.allow('orders', 'auditor')`);
  // The admin sees only the events without a pad: 12 MB live would close it as too slow.
  const admin = await relay.connect({ role: 'admin', sub: 'admin' });
  t.match(await subscribe(admin, 'orders', { filter: { pad: null } }), { type: 'subscribed' });
  await relay.db.pool.query(
    `select relay.publish('orders', 'note', $1::jsonb || jsonb_build_object('n', n::text, 'pad', repeat('y', 20000)))
       from generate_series(1, 600) n`,
    [JSON.stringify(backlogData)],
  );
  // Once the admin has this event, live delivery is past the backlog: the backlog is the replay's.
  await publishLive(relay, admin, { n: 'backlog written' });
  const [start] = await readLog(relay.db.pool, 'orders');

  const client = await relay.connect(claims);
  const socket = tcpSocketOf(client);
  const frames = collectFrames(client);
  client.send({ type: 'subscribe', topic: 'orders', since: start!.cursor });
  await frames.waitFor((frame) => frame.type === 'subscribed', 'the subscribed reply');
  socket.pause();
  return { relay, admin, client, socket, frames };
}

function eventData(frames: FrameCollector, from = 0): Array<Record<string, unknown>> {
  return frames.frames.slice(from).filter((frame) => frame.type === 'event').map((frame) => frame.data as Record<string, unknown>);
}

t.test('auth to another hospital during a replay: nothing of the first hospital follows `authed`', async (t) => {
  const { relay, admin, client, socket, frames } = await pausedResume(
    t,
    { role: 'hospital', sub: 'nurse', hospital_id: 'H1' },
    { hospital_id: 'H1' },
  );
  // Held for the resuming client, under its H1 claims.
  await publishLive(relay, admin, { hospital_id: 'H1', n: 'live H1' });

  const logs = watchLogLines(relay.logLines);
  const mark = logs.mark();
  client.send({ type: 'auth', token: await relay.token({ role: 'hospital', sub: 'nurse', hospital_id: 'H2' }) });
  await logs.waitFor((line) => line.msg === 'auth: claims replaced', { after: mark, what: 'the relay taking the new claims' });
  await publishLive(relay, admin, { hospital_id: 'H2', n: 'live H2' });

  socket.resume();
  await frames.waitFor((frame) => frame.type === 'event' && (frame.data as { n: string }).n === 'live H2', 'the live H2 order');
  const authedAt = frames.frames.findIndex((frame) => frame.type === 'authed');
  t.ok(authedAt >= 0, 'the client got `authed`');
  const afterAuthed = eventData(frames, authedAt);
  t.strictSame(
    afterAuthed.filter((data) => data.hospital_id !== 'H2').map((data) => data.n),
    [],
    'no event of H1 after `authed`, neither the held live one nor the rest of the replay',
  );
  t.strictSame(afterAuthed.map((data) => data.n), ['live H2'], 'the H2 order, once');
});

t.test('columns narrowed during a replay: the held live event goes out with the new columns only', async (t) => {
  const { relay, admin, socket, frames } = await pausedResume(t, { role: 'auditor', sub: 'auditor' }, {});
  await publishLive(relay, admin, { n: 'live', secret: 'no longer visible' });

  await changeCatalog(
    relay,
    `begin; select relay.revoke('orders', 'auditor'); select relay.allow('orders', 'auditor', '{}', array['n']); commit`,
  );
  await publishLive(relay, admin, { n: 'after', secret: 'never visible' });

  socket.resume();
  await frames.waitFor((frame) => frame.type === 'event' && (frame.data as { n: string }).n === 'after', 'the last event');
  const live = eventData(frames).filter((data) => data.n === 'live' || data.n === 'after');
  t.strictSame(live, [{ n: 'live' }, { n: 'after' }], 'both live events, with the column the grant now allows and nothing else');
});
