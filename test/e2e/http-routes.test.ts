// The relay's HTTP side, apart from /health and /metrics: a plain GET of the WebSocket path says
// that it wants an upgrade (a browser or curl pointed at the relay's URL got 404, as if the path
// were wrong), any other path is not_found, and WebSocket clients still connect on /ws.
import t from 'tap';
import { startTestRelay } from '../helpers/relay.ts';

const ADMIN = { role: 'admin', sub: 'admin-1' };

t.test('GET /ws without an upgrade gets 426 saying to use a WebSocket client; other paths 404; /ws still upgrades', async (t) => {
  const relay = await startTestRelay(t);

  const plain = await fetch(`${relay.httpUrl}/ws`);
  t.equal(plain.status, 426, 'GET /ws: 426 Upgrade Required');
  t.equal(plain.headers.get('upgrade'), 'websocket', 'naming the protocol to upgrade to');
  t.match(await plain.json(), { error: 'upgrade_required', message: /WebSocket client/ });

  const withQuery = await fetch(`${relay.httpUrl}/ws?access_token=x`);
  t.equal(withQuery.status, 426, 'with a query string too');
  await withQuery.body?.cancel();

  const other = await fetch(`${relay.httpUrl}/wss`);
  t.equal(other.status, 404, 'another path: 404');
  t.strictSame(await other.json(), { error: 'not_found' });

  const client = await relay.connect(ADMIN);
  t.match(client.welcome, { type: 'welcome', role: 'admin' }, 'a WebSocket client is welcomed on /ws');
});
