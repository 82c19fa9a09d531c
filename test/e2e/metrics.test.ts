// Contract section 4, GET /metrics: Prometheus text with the series the contract names (and the
// listener's and replays'), on the relay's own registry with Node's process metrics, counting what
// clients actually received.
import t from 'tap';
import { readLog } from '../helpers/event-log.ts';
import { framesBeforePong, nextFrame, subscribe } from '../helpers/frames.ts';
import { watchLogLines } from '../helpers/log-lines.ts';
import { scrapeMetrics as scrape } from '../helpers/metrics.ts';
import { startTestRelay } from '../helpers/relay.ts';
import { upgradeRefusal } from '../helpers/ws-client.ts';

t.test('GET /metrics: the contract series, process metrics, and counts that match what clients received', async (t) => {
  const relay = await startTestRelay(t);
  const { text, samples, contentType } = await scrape(relay);
  t.match(contentType, /^text\/plain; version=0\.0\.4/, 'Prometheus text format');
  for (const [name, type] of [
    ['relay_connections', 'gauge'],
    ['relay_subscriptions', 'gauge'],
    ['relay_listening', 'gauge'],
    ['relay_started', 'gauge'],
    ['relay_live_delivery_held_back_seconds', 'gauge'],
    ['relay_events_received_total', 'counter'],
    ['relay_events_delivered_total', 'counter'],
    ['relay_connections_rejected_total', 'counter'],
    ['relay_errors_total', 'counter'],
    ['relay_delivery_lag_seconds', 'histogram'],
    ['relay_listener_reconnects_total', 'counter'],
    ['relay_replays_started_total', 'counter'],
    ['relay_replay_events_total', 'counter'],
  ]) {
    t.match(text, new RegExp(`^# TYPE ${name} ${type}$`, 'm'), `${name} is a ${type}`);
  }
  t.ok(samples.has('process_resident_memory_bytes'), 'default process metrics are included');
  t.ok(samples.has('nodejs_heap_size_used_bytes'), 'and Node heap metrics');
  t.equal(samples.get('relay_errors_total{code="rate_limited"}'), 0, 'every error code is exported from the start, at 0');
  t.equal(samples.get('relay_listening'), 1, 'relay_listening is 1 while listening');
  t.equal(samples.get('relay_started'), 1, 'relay_started is 1 once start() has resolved');
  t.equal(samples.get('relay_live_delivery_held_back_seconds'), 0, 'live delivery is held back by nothing on an idle log');
  // Dashboards read buckets by bound: the earlier bounds stay, and the lag of an idle host (well
  // under a millisecond) has buckets of its own.
  const lagBounds = [...text.matchAll(/^relay_delivery_lag_seconds_bucket\{le="([^"]+)"\}/gm)].map((match) => match[1]);
  for (const bound of ['0.00025', '0.0005', '0.00075', '0.001', '0.002', '0.0025', '0.003', '0.005', '0.0075', '0.01', '0.015', '0.025', '60', '+Inf']) {
    t.ok(lagBounds.includes(bound), `relay_delivery_lag_seconds has the bucket le="${bound}"`);
  }

  // Two admins share one channel; a hospital sees only its own hospital's orders.
  const admins = [await relay.connect({ role: 'admin', sub: 'a1' }), await relay.connect({ role: 'admin', sub: 'a2' })];
  const hospital = await relay.connect({ role: 'hospital', hospital_id: 'H1' });
  for (const client of [...admins, hospital]) t.match(await subscribe(client, 'orders'), { type: 'subscribed' });
  await relay.db.pool.query(`insert into orders (id, hospital_id) values ('m1', 'H1'), ('m2', 'H2'), ('m3', 'H1')`);
  for (const client of admins) await nextFrame(client, 'the admin receiving m3', (frame) => (frame.data as { id?: string })?.id === 'm3');
  await nextFrame(hospital, 'the hospital receiving m3', (frame) => (frame.data as { id?: string })?.id === 'm3');
  let now = (await scrape(relay)).samples;
  t.equal(now.get('relay_connections'), 3, 'relay_connections: 3');
  t.equal(now.get('relay_subscriptions'), 3, 'relay_subscriptions: 3');
  t.equal(now.get('relay_events_received_total'), 3, 'relay_events_received_total: each event once');
  t.equal(now.get('relay_events_delivered_total'), 3 + 3 + 2, 'relay_events_delivered_total: one per client reached');
  t.equal(now.get('relay_delivery_lag_seconds_count'), 3, 'the lag is observed once per event');
  const lagSum = now.get('relay_delivery_lag_seconds_sum') ?? NaN;
  t.ok(lagSum >= 0 && lagSum < 30, `the lags add up to a plausible commit-to-send time (${lagSum} s)`);

  // A resuming subscriber: replayed events count as replayed and as delivered.
  const [first] = await readLog(relay.db.pool, 'orders');
  const resuming = await relay.connect({ role: 'admin', sub: 'a3' });
  t.match(await subscribe(resuming, 'orders', { since: first!.cursor }), { type: 'subscribed' });
  await nextFrame(resuming, 'the replay reaching m3', (frame) => (frame.data as { id?: string })?.id === 'm3');
  now = (await scrape(relay)).samples;
  t.equal(now.get('relay_replays_started_total'), 1, 'relay_replays_started_total: 1');
  t.equal(now.get('relay_replay_events_total'), 2, 'relay_replay_events_total: the 2 events after the cursor');
  t.equal(now.get('relay_events_delivered_total'), 8 + 2, 'replayed events are delivered events too');

  // Refused upgrades and error frames.
  t.equal((await upgradeRefusal(relay.wsUrl)).status, 401, 'no token: 401');
  t.equal((await upgradeRefusal(`${relay.wsUrl}?access_token=not-a-jwt`)).status, 401, 'a malformed token: 401');
  const prober = await relay.connect({ role: 'admin', sub: 'prober' });
  prober.sendRaw('{"type": ');
  t.match(await nextFrame(prober, 'bad_request'), { type: 'error', code: 'bad_request' });
  t.match(await subscribe(prober, 'no-such-topic'), { type: 'error', code: 'unknown_topic' });
  t.strictSame(await framesBeforePong(prober), [], 'nothing else was sent');
  now = (await scrape(relay)).samples;
  t.equal(now.get('relay_connections_rejected_total{status="401"}'), 2, 'relay_connections_rejected_total{status="401"}: 2');
  t.equal(now.get('relay_errors_total{code="bad_request"}'), 1, 'relay_errors_total{code="bad_request"}: 1');
  t.equal(now.get('relay_errors_total{code="unknown_topic"}'), 1, 'relay_errors_total{code="unknown_topic"}: 1');

  // The listener loses its backend and listens again.
  const logs = watchLogLines(relay.logLines);
  const mark = logs.mark();
  await relay.db.pool.query(
    `select pg_terminate_backend(pid) from pg_stat_activity where application_name = 'pg-relay listener' and datname = current_database()`,
  );
  await logs.waitFor((line) => line.msg === 'listener: listening again; catching up from the event log', {
    after: mark,
    what: 'the listener listening again after its backend was killed',
  });
  now = (await scrape(relay)).samples;
  t.equal(now.get('relay_listener_reconnects_total'), 1, 'relay_listener_reconnects_total: 1');
  t.equal(now.get('relay_listening'), 1, 'relay_listening: 1 again');
});

t.test('refused upgrades are counted by status, so that a flood of bad tokens and a full relay tell apart', async (t) => {
  const relay = await startTestRelay(t, {
    RELAY_ALLOWED_ORIGINS: 'https://app.example',
    RELAY_MAX_CONNECTIONS: '2',
    RELAY_MAX_CONNECTIONS_PER_SUBJECT: '1',
  });
  const before = await scrape(relay);
  t.match(before.text, /^# HELP relay_connections_rejected_total .*401 .*403 .*429 .*503 /m, 'the help text names each status');
  for (const status of ['401', '403', '429', '503']) {
    t.equal(before.samples.get(`relay_connections_rejected_total{status="${status}"}`), 0, `status="${status}" is exported from the start, at 0`);
  }

  t.equal((await upgradeRefusal(relay.wsUrl)).status, 401, 'no token: 401');
  t.equal((await upgradeRefusal(`${relay.wsUrl}?access_token=not-a-jwt`)).status, 401, 'a malformed token: 401');
  const token = await relay.token({ role: 'admin', sub: 'a1' });
  t.equal((await upgradeRefusal(`${relay.wsUrl}?access_token=${token}`, { origin: 'https://evil.example' })).status, 403, 'another origin: 403');
  await relay.connect({ role: 'admin', sub: 'a1' });
  t.equal((await upgradeRefusal(`${relay.wsUrl}?access_token=${token}`)).status, 429, 'past RELAY_MAX_CONNECTIONS_PER_SUBJECT: 429');
  await relay.connect({ role: 'admin', sub: 'a2' });
  t.equal((await upgradeRefusal(`${relay.wsUrl}?access_token=${token}`)).status, 503, 'past RELAY_MAX_CONNECTIONS: 503');

  const { samples } = await scrape(relay);
  t.equal(samples.get('relay_connections_rejected_total{status="401"}'), 2, 'status="401": the two bad tokens');
  t.equal(samples.get('relay_connections_rejected_total{status="403"}'), 1, 'status="403": the foreign origin');
  t.equal(samples.get('relay_connections_rejected_total{status="429"}'), 1, 'status="429": the subject at its limit');
  t.equal(samples.get('relay_connections_rejected_total{status="503"}'), 1, 'status="503": the full relay');
  t.notOk(samples.has('relay_connections_rejected_total'), 'no series without a status');
});

t.test('two relays in one process keep separate registries', async (t) => {
  const [one, two] = [await startTestRelay(t), await startTestRelay(t)];
  const client = await one.connect({ role: 'admin', sub: 'x' });
  t.match(await subscribe(client, 'orders'), { type: 'subscribed' });
  t.equal((await scrape(one)).samples.get('relay_subscriptions'), 1, 'the first relay counts its subscription');
  t.equal((await scrape(two)).samples.get('relay_subscriptions'), 0, 'the second relay does not');
});
