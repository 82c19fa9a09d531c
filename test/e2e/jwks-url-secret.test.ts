// JWT_JWKS_URL may carry an identity provider's API key in its query (`?api_key=...`). When the
// JWKS cannot be fetched (a 500, an answer that is not JSON, a dropped connection), the relay's log
// says what failed and at which address, with every query value blanked: the key is in no log
// line and in no answer to a client.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignJWT } from 'jose';
import t, { type Test } from 'tap';
import { watchLogLines } from '../helpers/log-lines.ts';
import { startTestRelay } from '../helpers/relay.ts';
import { generateTestKeyPair, nowSeconds } from '../helpers/tokens.ts';
import { upgradeRefusal } from '../helpers/ws-client.ts';

const API_KEY = 'sk_live_4f9a2c7e1b3d5f60';
const signingKey = generateTestKeyPair('ec-p256');

/** A JWKS endpoint on a free port that answers every request with `fail`; `requests` holds when each came (ms). */
async function startFailingJwks(t: Test, fail: (request: IncomingMessage, response: ServerResponse) => void) {
  const requests: number[] = [];
  const server = createServer((request, response) => {
    requests.push(Date.now());
    fail(request, response);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks`;
  return { url: `${base}?api_key=${API_KEY}&tenant=acme`, redacted: `${base}?api_key=[redacted]&tenant=[redacted]`, requests };
}

const FAILURES: Array<[name: string, fail: (request: IncomingMessage, response: ServerResponse) => void, said: RegExp]> = [
  ['a 500', (request, response) => response.writeHead(500, { 'content-type': 'text/plain' }).end(`no keys for ${request.url}`), /Expected 200 OK/],
  // An error page quoting the request, key and all.
  [
    'an answer that is not JSON',
    (request, response) => response.writeHead(200, { 'content-type': 'text/html' }).end(`<p>unknown key in ${request.url}</p>`),
    /Failed to parse the JSON Web Key Set HTTP response as JSON/,
  ],
  ['a closed connection', (request) => request.socket.destroy(), /fetch failed: other side closed/],
];

for (const [name, fail, said] of FAILURES) {
  t.test(`the JWKS endpoint fails with ${name}: the log says so, and never shows the API key`, async (t) => {
    const jwks = await startFailingJwks(t, fail);
    const env = { JWT_SECRET: undefined as unknown as string, JWT_JWKS_URL: jwks.url };
    const relay = await startTestRelay(t, env);
    const logs = watchLogLines(relay.logLines);
    const startup = relay.logLines.find((line) => line.msg === 'cannot fetch the JWKS yet');
    const startupError = (startup?.err ?? {}) as { message?: string };
    t.match(startupError.message, `cannot fetch the JWKS at ${jwks.redacted}: `, 'the start-up warning names the address, its query values blanked');
    t.match(startupError.message, said, 'and says what failed');

    // A token that needs the keys, within the cooldown: refused without a fetch, and its cause says
    // when the relay tries again (a refusal after a failed fetch: test/auth/verify-token.test.ts).
    const mark = logs.mark();
    const token = await new SignJWT({ role: 'admin', exp: nowSeconds() + 600 }).setProtectedHeader({ alg: 'ES256', kid: 'k1' }).sign(signingKey.privateKey);
    const refusal = await upgradeRefusal(`${relay.wsUrl}?access_token=${token}`);
    t.match(refusal, { status: 401, body: { error: 'unauthorized', reason: 'signing keys unavailable' } }, 'the client is told the keys are unavailable');
    const refused = await logs.waitFor((line) => line.msg === 'upgrade refused', { after: mark, what: 'the refused upgrade' });
    t.match(refused.cause, /tried again once JWT_JWKS_COOLDOWN has passed/, 'the refusal logs its cause');
    t.equal(jwks.requests.length, 1, 'no fetch within the cooldown');

    t.notOk(JSON.stringify(refusal).includes(API_KEY), 'the 401 does not hold the API key');
    const text = relay.logLines.map((line) => JSON.stringify(line)).join('\n');
    t.notOk(text.includes(API_KEY), 'no log line holds the API key');
    t.notOk(text.includes('acme'), 'nor any other query value');
  });
}
