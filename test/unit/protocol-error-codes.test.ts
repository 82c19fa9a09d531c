import t from 'tap';
import { CLOSE_CODES, ERROR_CODES, isErrorCode } from '../../src/protocol/error-codes.ts';

t.test('the error codes are those of the contract plus its extensions, each with a meaning', async (t) => {
  const contract = ['bad_request', 'unknown_topic', 'forbidden', 'already_subscribed', 'not_subscribed', 'cursor_expired', 'rate_limited', 'token_expired', 'too_large'];
  // Added since contract v1, each named in the README's changelog.
  const extensions = ['too_many_subscriptions'];
  t.same(Object.keys(ERROR_CODES).sort(), [...contract, ...extensions].sort());
  for (const [code, meaning] of Object.entries(ERROR_CODES)) t.ok(meaning.length > 10 && !meaning.includes('\n'), `${code} has a one-line meaning`);
  for (const code of contract) t.ok(isErrorCode(code), code);
  for (const notCode of ['unauthorized', 'constructor', '__proto__', 'toString', '']) t.notOk(isErrorCode(notCode), notCode);
});

t.test('the close codes of the contract, and whether to reconnect', async (t) => {
  t.same(
    Object.fromEntries(Object.entries(CLOSE_CODES).map(([name, { code, reconnect }]) => [name, { code, reconnect }])),
    {
      frameTooLarge: { code: 1009, reconnect: false },
      serviceRestart: { code: 1012, reconnect: true },
      tokenExpired: { code: 4001, reconnect: true },
      rateLimited: { code: 1008, reconnect: true },
      eventsPruned: { code: 1011, reconnect: true },
      slowConsumer: { code: 4008, reconnect: true },
    },
  );
});
