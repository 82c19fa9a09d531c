// Tokens never reach a log line: credential parameters of any logged url/path/query are blanked,
// and anything shaped like a JWS is blanked wherever it appears in a line.
import { Writable } from 'node:stream';
import t from 'tap';
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
    [`/ws?access_token=secret#frag`, '/ws?access_token=[redacted]#frag'],
    [`/ws?%E0%A4%A=1&access_token=s`, '/ws?%E0%A4%A=1&access_token=[redacted]'],
    ['ws://127.0.0.1:8080/ws?topic=orders', 'ws://127.0.0.1:8080/ws?topic=orders'],
  ];
  for (const [url, expected] of cases) t.equal(redactUrl(url), expected, url);
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
  t.equal(lines.length, 8, 'every line is written');
  for (const line of lines) {
    const parsed = JSON.parse(line) as Record<string, unknown>;
    t.notMatch(line, 'opaque-secret-value', `${parsed.msg}: no opaque token`);
    t.notMatch(line, 'c2lnbmF0dXJl', `${parsed.msg}: no signature of a JWT`);
    t.notMatch(line, 'eyJ', `${parsed.msg}: no part of a JWT`);
  }
  t.match(JSON.parse(lines[0]!), { url: '/ws?access_token=[redacted]' }, 'the url still says a token was given');
  t.match(JSON.parse(lines[6]!), { connection: 7 }, 'a child keeps its bindings');
});
