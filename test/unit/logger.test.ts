// Tokens never reach a log line: credential parameters of any logged url/path/query are blanked,
// and anything shaped like a JWS is blanked wherever it appears in a line.
import { Writable } from 'node:stream';
import t from 'tap';
import { extractToken } from '../../src/auth/extract-token.ts';
import { createLogger, redactUrl } from '../../src/logger.ts';

const JWT = 'eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoiYWRtaW4ifQ.c2lnbmF0dXJlLW9mLXRoZS10b2tlbg';

t.test('redactUrl blanks the value of credential parameters and keeps the rest', async (t) => {
  const cases: Array<[string, string]> = [
    ['/ws', '/ws'],
    ['/ws?', '/ws?'],
    [`/ws?access_token=${JWT}`, '/ws?access_token=[redacted]'],
    [`/ws?a=1&access_token=${JWT}&b=2`, '/ws?a=1&access_token=[redacted]&b=2'],
    [`/ws?ACCESS_TOKEN=secret`, '/ws?ACCESS_TOKEN=[redacted]'],
    [`/ws?access%5Ftoken=secret`, '/ws?access%5Ftoken=[redacted]'],
    [`/ws?token=secret&jwt=other`, '/ws?token=[redacted]&jwt=[redacted]'],
    [`/ws?access_token`, '/ws?access_token=[redacted]'],
    [`/ws?access_token=a&access_token=b`, '/ws?access_token=[redacted]&access_token=[redacted]'],
    // To URLSearchParams, as to the relay, `#` is part of the value: `secret#frag` is the token.
    [`/ws?access_token=secret#frag`, '/ws?access_token=[redacted]'],
    [`/ws?%E0%A4%A=1&access_token=s`, '/ws?%E0%A4%A=1&access_token=[redacted]'],
    ['ws://127.0.0.1:8080/ws?topic=orders', 'ws://127.0.0.1:8080/ws?topic=orders'],
  ];
  for (const [url, expected] of cases) t.equal(redactUrl(url), expected, url);
});

// JWT with the first letter of each of its JSON parts percent-encoded (`e` is %65): the relay
// decodes it back to JWT, and the eyJ pattern of the last line of defence does not see it.
const ENCODED_JWT = JWT.replace(/^e/, '%65').replace('.e', '.%65');
// Every character percent-encoded.
const FULLY_ENCODED_JWT = [...JWT].map((char) => `%${char.charCodeAt(0).toString(16).padStart(2, '0')}`).join('');

/** The token the relay would read from `url`'s query (src/ws/server.ts hands it what follows the first `?`). */
function tokenTheRelayReads(url: string): string | null {
  const start = url.indexOf('?');
  return start < 0 ? null : extractToken({ query: url.slice(start + 1), authorization: '' });
}

t.test('redactUrl blanks whatever the relay reads as the token, however the query is written', async (t) => {
  // The audit's attack URLs: before, the logger's own split of the query disagreed with the relay's.
  const attacks: Array<[string, string]> = [
    [`/ws??access_token=${ENCODED_JWT}`, '/ws??access_token=[redacted]'],
    [`/ws??access_token=${JWT}`, '/ws??access_token=[redacted]'],
    [`/ws?x=1#&access_token=${ENCODED_JWT}`, '/ws?x=1#&access_token=[redacted]'],
    [`/ws?#&access_token=${JWT}`, '/ws?#&access_token=[redacted]'],
    [`/ws?access_token=${ENCODED_JWT}`, '/ws?access_token=[redacted]'],
    [`/ws?%61ccess_token=${FULLY_ENCODED_JWT}`, '/ws?%61ccess_token=[redacted]'],
  ];
  for (const [url, expected] of attacks) {
    t.equal(tokenTheRelayReads(url), JWT, `the relay reads the token from ${url.slice(0, 30)}...`);
    t.equal(redactUrl(url), expected, `${url.slice(0, 30)}...: blanked`);
  }

  // Every combination of what comes before the parameter, how its name and value are written, and
  // what follows: wherever the relay reads a token, the result holds none of it, in any encoding.
  const prefixes = ['', '?', '??', 'x=1&', 'x=1#&', '#&', '&&', 'x=1#frag&', '%E0%A4%A=1&', '=&', 'access_token&'];
  const names = ['access_token', 'access%5Ftoken', '%61ccess_token', '%61%63%63%65%73%73%5F%74%6F%6B%65%6E', 'Access_Token'];
  const values: Array<[string, string]> = [
    [JWT, JWT],
    [ENCODED_JWT, JWT],
    [FULLY_ENCODED_JWT, JWT],
    ['opaque+secret%2Bvalue', 'opaque secret+value'],
  ];
  const suffixes = ['', '&y=2', '#frag', '&access_token=second'];
  let read = 0;
  for (const prefix of prefixes) {
    for (const name of names) {
      for (const [written, token] of values) {
        for (const suffix of suffixes) {
          const url = `/ws?${prefix}${name}=${written}${suffix}`;
          const relayToken = tokenTheRelayReads(url);
          if (relayToken !== null && relayToken !== 'second') read++;
          const redacted = redactUrl(url);
          const leaked = [written, token, ...(relayToken === null ? [] : [relayToken])].some((secret) => redacted.includes(secret));
          const stillReadable = tokenTheRelayReads(redacted);
          if (leaked || (stillReadable !== null && stillReadable !== '[redacted]')) t.fail(`${url} logged as ${redacted}`);
        }
      }
    }
  }
  t.ok(read > 500, `the relay reads a token from ${read} of the URLs, and none is logged`);
});

t.test('a log line holds no token, whichever field carries it', async (t) => {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(...chunk.toString().split('\n').filter(Boolean));
      done();
    },
  });
  const logger = createLogger('debug', sink);
  logger.info({ url: `/ws?access_token=opaque-secret-value` }, 'url');
  logger.info({ path: `/ws?token=opaque-secret-value` }, 'path');
  logger.info({ query: `a=1&access_token=opaque-secret-value` }, 'query');
  logger.info({ token: JWT }, 'token field');
  logger.info({ frame: { type: 'auth', token: JWT } }, 'nested token field');
  logger.info({ reason: `unknown type "${JWT.slice(0, 40)}..."` }, 'part of a token in a message');
  logger.child({ connection: 7 }).warn({ detail: `Bearer ${JWT}` }, 'child logger');
  logger.info(`message text ${JWT}`);
  logger.info({ url: `/ws??access_token=${ENCODED_JWT}` }, 'url with two question marks');
  logger.info({ url: `/ws?x=1#&access_token=${ENCODED_JWT}` }, 'url with a hash');
  logger.info({ query: `?access_token=${ENCODED_JWT}` }, 'query with a question mark');
  t.equal(lines.length, 11, 'every line is written');
  for (const line of lines) {
    const parsed = JSON.parse(line) as Record<string, unknown>;
    t.notMatch(line, 'opaque-secret-value', `${parsed.msg}: no opaque token`);
    t.notMatch(line, 'c2lnbmF0dXJl', `${parsed.msg}: no signature of a JWT`);
    t.notMatch(line, 'eyJ', `${parsed.msg}: no part of a JWT`);
    t.notMatch(line, 'hbGciOiJIUzI1NiJ9', `${parsed.msg}: no part of a percent-encoded JWT`);
  }
  t.match(JSON.parse(lines[0]!), { url: '/ws?access_token=[redacted]' }, 'the url still says a token was given');
  t.match(JSON.parse(lines[6]!), { connection: 7 }, 'a child keeps its bindings');
});
