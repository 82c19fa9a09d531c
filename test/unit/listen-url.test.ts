import t from 'tap';
import { webSocketUrl } from '../../src/ws/listen-url.ts';

t.test('the URL a client can use, whatever HOST is', async (t) => {
  t.equal(webSocketUrl('127.0.0.1', 8080), 'ws://127.0.0.1:8080/ws');
  t.equal(webSocketUrl('localhost', 8080), 'ws://localhost:8080/ws');
  t.equal(webSocketUrl('::1', 18484), 'ws://[::1]:18484/ws', 'an IPv6 address in brackets');
  t.equal(webSocketUrl('::', 80), 'ws://[::]:80/ws');
  t.equal(webSocketUrl('[::1]', 80), 'ws://[::1]:80/ws', 'not twice');
  for (const host of ['127.0.0.1', '::1', '::']) {
    const url = webSocketUrl(host, 9);
    t.doesNotThrow(() => new URL(url), `${url} parses`);
  }
});
