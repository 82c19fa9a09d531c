// A token's payload keeps the numbers a double would change as their text, so that claims can be
// compared with row data by exact value.
import t from 'tap';
import { parseCompactJws } from '../../src/auth/compact-jws.ts';
import { createTokenVerifier } from '../../src/auth/verify-token.ts';
import { isExactNumber } from '../../src/exact-json.ts';
import { TEST_SECRET, nowSeconds, signHmacTokenText } from '../helpers/tokens.ts';

const MAX_CHARS = 16 * 1024;

/** A parsed value with each number kept as text shown as `exact <text>`. */
function shown(value: unknown): unknown {
  if (isExactNumber(value)) return `exact ${value.value}`;
  if (Array.isArray(value)) return value.map(shown);
  if (typeof value === 'object' && value !== null) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, shown(v)]));
  return value;
}

t.test('payload numbers that a double would change keep their text; the rest are numbers', async (t) => {
  const token = signHmacTokenText(
    TEST_SECRET,
    '{"acc":9007199254740993,"org":{"ids":[1234567890123456789,7]},"lvl":3.0000000000000001,"n":42,"big":1e400}',
  );
  t.strictSame(shown(parseCompactJws(token, MAX_CHARS).payload), {
    acc: 'exact 9007199254740993',
    org: { ids: ['exact 1234567890123456789', 7] },
    lvl: 'exact 3.0000000000000001',
    n: 42,
    big: 'exact 1e400',
  });
});

t.test('a verified token carries such claims as they were signed; a registered claim must still be a number', async (t) => {
  const verifier = createTokenVerifier(
    { kind: 'secret', secret: TEST_SECRET, algorithms: ['HS256'] },
    { roleClaim: 'role' },
  );
  const exp = nowSeconds() + 600;
  const verified = verifier.verifyNow(signHmacTokenText(TEST_SECRET, `{"role":"member","acc":9007199254740993,"exp":${exp}}`));
  t.match(verified, { role: 'member', exp });
  t.equal(shown(verified?.claims.acc), 'exact 9007199254740993');
  // A NumericDate may carry more digits than a double holds (RFC 7519 allows fractions): it is
  // the same second, as JSON.parse read it before claims kept their exact numbers.
  t.match(verifier.verifyNow(signHmacTokenText(TEST_SECRET, `{"role":"member","exp":${exp}.00000000000000001}`)), {
    role: 'member',
    exp,
  });
  t.throws(
    () => verifier.verifyNow(signHmacTokenText(TEST_SECRET, `{"role":"member","exp":${exp - 700}.00000000000000001}`)),
    { name: 'TokenError', reason: 'token expired' },
    'and such an exp in the past has expired',
  );
});
