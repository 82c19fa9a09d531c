// The event log's JSON keeps the numbers a double would change, and writes them back as they came.
import t from 'tap';
import { isSafeNumber } from 'lossless-json';
import {
  isExactNumber,
  JsonTooDeepError,
  jsonTextWithin,
  membersOf,
  parseJsonExactly,
  parseUntrustedJsonExactly,
  sameJsonValue,
} from '../../src/exact-json.ts';
import { createRandom } from '../helpers/random.ts';

/** Parses `text` and writes the whole back, as a frame with every column does. */
function roundTrip(text: string): string {
  const parsed = parseJsonExactly(text) as object;
  return jsonTextWithin(parsed, parsed)!;
}

t.test('numbers a double would change come back as PostgreSQL wrote them, nested or not', async (t) => {
  const text =
    '{"id":9007199254740993,"amount":0.1000000000000000055511151231257827,"huge":' +
    `1${'0'.repeat(400)},"tiny":0.${'0'.repeat(399)}1,"meta":{"deep":[12345678901234567890123,1.5,"x"]}}`;
  t.equal(roundTrip(text), text);
  const parsed = parseJsonExactly(text) as Record<string, unknown>;
  t.ok(isExactNumber(parsed.id) && isExactNumber(parsed.huge) && isExactNumber(parsed.tiny), 'kept as text');
  t.equal(jsonTextWithin(parsed, parsed.meta), '{"deep":[12345678901234567890123,1.5,"x"]}', 'one column alone, exact');
});

t.test('numbers a double holds become numbers, as JSON.parse makes them', async (t) => {
  const text = `{"a":12.50,"b":123456789012345.6,"c":0.${'0'.repeat(18)}12,"d":-7,"long":"${'9'.repeat(30)}"}`;
  const parsed = parseJsonExactly(text) as Record<string, unknown>;
  t.strictSame(parsed, JSON.parse(text), 'the same values, the long digit string untouched');
  t.equal(roundTrip(text), JSON.stringify(JSON.parse(text)));
});

t.test('text with no long run of digits takes JSON.parse as it is', async (t) => {
  const text = '{"id":42,"at":"2026-11-22T16:40:10.590Z","n":[1,2.5,null,true]}';
  t.strictSame(parseJsonExactly(text), JSON.parse(text));
  t.equal(roundTrip(text), JSON.stringify(JSON.parse(text)));
});

t.test('a `__proto__` key stays a plain key, on either path', async (t) => {
  for (const number of ['1', '12345678901234567890']) {
    const parsed = parseJsonExactly(`{"__proto__":{"polluted":${number}}}`) as Record<string, unknown>;
    t.equal(Object.getPrototypeOf(parsed), Object.prototype, `prototype untouched (${number})`);
    t.ok(Object.hasOwn(parsed, '__proto__'), 'an own key');
    t.equal(({} as Record<string, unknown>).polluted, undefined, 'nothing polluted');
  }
});

t.test('every number PostgreSQL writes with fewer than 16 digits and dots is one a double holds', async (t) => {
  // Why the native parser may take text without a run of 16: PostgreSQL writes numbers in full,
  // never with an exponent, so a number a double would change has such a run.
  const random = createRandom(20261122);
  const digits = (n: number): string => Array.from({ length: n }, () => String(random.int(0, 9))).join('');
  for (let i = 0; i < 20_000; i++) {
    // At most 15 characters of digits and dot: an integer part without leading zeros, maybe a fraction.
    const integerDigits = random.int(1, 15);
    const fractionDigits = integerDigits <= 13 && random.chance(0.6) ? random.int(1, 14 - integerDigits) : 0;
    const integer = integerDigits === 1 ? digits(1) : String(random.int(1, 9)) + digits(integerDigits - 1);
    const text = `${random.chance(0.3) ? '-' : ''}${integer}${fractionDigits > 0 ? `.${digits(fractionDigits)}` : ''}`;
    if (!isSafeNumber(text)) t.fail(`${text}: a double changes it`);
  }
  t.pass('20,000 random numbers');
});

t.test('JSON nested deeper than the stack is parsed and written all the same, its numbers exact', async (t) => {
  const depth = 50_000;
  const exact = `${'['.repeat(depth)}12345678901234567890${']'.repeat(depth)}`;
  let parsed: unknown;
  t.doesNotThrow(() => (parsed = parseJsonExactly(exact)), 'parsed, past lossless-json stack');
  t.equal(jsonTextWithin(parsed as object, parsed), exact, 'written with its long number as it came');
  // One deep document in a row: the row's other long numbers stay exact too (they were rounded,
  // and a grant on account 9007199254740992 matched the row of account 9007199254740993).
  const row =
    `{"id": 9007199254740993, "amount": -12345678901234567890.50, "small": 1.5, "__proto__": 98765432109876543210, ` +
    `"note": "9007199254740993 \\" [ {", "doc": ${'['.repeat(10_000)}{"k": 123456789012345678901}${']'.repeat(10_000)}}`;
  const deepRow = parseJsonExactly(row) as Record<string, unknown>;
  t.ok(isExactNumber(deepRow.id) && deepRow.id.value === '9007199254740993', 'the id, exact');
  t.ok(isExactNumber(deepRow.amount) && deepRow.amount.value === '-12345678901234567890.50', 'a negative fraction, exact');
  t.equal(deepRow.small, 1.5, 'a number a double holds is a number');
  t.equal(deepRow.note, '9007199254740993 " [ {', 'a string with digits, a quote and brackets is left as it is');
  t.ok(Object.hasOwn(deepRow, '__proto__') && isExactNumber(deepRow['__proto__']), 'a `__proto__` key stays a plain key, its number exact');
  t.equal(Object.getPrototypeOf(deepRow), Object.prototype, 'and the prototype is untouched');
  t.equal(jsonTextWithin(deepRow, deepRow.doc)?.slice(10_000, -10_000), '{"k":123456789012345678901}', 'the deep number, exact');
  t.equal(
    jsonTextWithin(deepRow, deepRow),
    row.replaceAll(': ', ':').replaceAll(', ', ','),
    'the row written back as it came (without the spaces)',
  );
  const holdingNul = `{"a": "\\u0000", "b": ${'['.repeat(10_000)}12345678901234567890${']'.repeat(10_000)}}`;
  t.throws(() => parseJsonExactly(holdingNul), SyntaxError, 'text holding U+0000, which jsonb never does, is refused');
  const plain = `{"a":${'['.repeat(depth)}1${']'.repeat(depth)}}`;
  const parsedPlain = parseJsonExactly(plain) as object;
  t.equal(jsonTextWithin(parsedPlain, parsedPlain), plain, 'no long number: written past JSON.stringify stack too');
});

t.test('with numbers kept as text, the rest is written exactly as JSON.stringify writes it', async (t) => {
  const random = createRandom(4242);
  const strings = ['', 'a', '__proto__', 'constructor', 'quote " and \\ backslash', 'line\nbreak', 'é 🚀 \u0000', '12345678901234567890'];
  const valueOf = (depth: number): unknown => {
    const kind = random.int(0, depth > 3 ? 3 : 5);
    if (kind === 0) return random.pick(strings);
    if (kind === 1) return random.pick([0, -1, 1.5, 123456789012345, -0.25, 1e-7]);
    if (kind === 2) return random.pick([true, false]);
    if (kind === 3) return null;
    if (kind === 4) return Array.from({ length: random.int(0, 4) }, () => valueOf(depth + 1));
    return Object.fromEntries(Array.from({ length: random.int(0, 4) }, () => [random.pick(strings), valueOf(depth + 1)]));
  };
  for (let i = 0; i < 2_000; i++) {
    const value = valueOf(0);
    const text = `{"value":${JSON.stringify(value)},"big":12345678901234567890123}`;
    const parsed = parseJsonExactly(text) as Record<string, unknown>;
    const expected = `{"value":${JSON.stringify(JSON.parse(text).value)},"big":12345678901234567890123}`;
    const written = jsonTextWithin(parsed, parsed);
    if (written !== expected) {
      t.equal(written, expected, `value ${i}`);
      return;
    }
  }
  t.pass('2,000 random values');
});

t.test('values compare as jsonb compares them', async (t) => {
  const deep = (inner: string): string => `${'['.repeat(50_000)}${inner}${']'.repeat(50_000)}`;
  const cases: [string, string, boolean, string][] = [
    ['{"a":1,"b":[1,{"c":null}]}', '{"b":[1,{"c":null}],"a":1}', true, 'keys in another order'],
    ['12.50', '12.5', true, 'a number with another scale'],
    ['12345678901234567890.100', '12345678901234567890.1', true, 'a number kept as text, with another scale'],
    ['12345678901234567890.000', '12345678901234567890', true, 'a number kept as text, with and without a fraction'],
    [`1.${'0'.repeat(16_000)}1`, `1.${'0'.repeat(16_000)}10`, true, 'a fraction of 16,000 digits, with another scale'],
    [`1.${'0'.repeat(16_000)}1`, `1.${'0'.repeat(16_000)}2`, false, 'a fraction of 16,000 digits, one unit apart'],
    ['-0', '0', true, '-0 and 0'],
    ['12345678901234567891', '12345678901234567890', false, 'numbers kept as text that differ in the last digit'],
    ['9007199254740993', '9007199254740992', false, 'a number kept as text and the double next to it'],
    ['[1,2]', '[2,1]', false, 'array items in another order'],
    ['{"a":1}', '{"a":1,"b":null}', false, 'a key more, even null'],
    ['{"a":null}', '{"b":null}', false, 'another key'],
    ['"1"', '1', false, 'a string and a number'],
    ['[]', '{}', false, 'an array and an object'],
    ['{"__proto__":1}', '{}', false, 'a __proto__ key is a key'],
    [deep('1'), deep('1.0'), true, 'nested 50,000 levels, equal'],
    [deep('1'), deep('2'), false, 'nested 50,000 levels, different'],
  ];
  for (const [a, b, equal, what] of cases) {
    t.equal(sameJsonValue(parseJsonExactly(a), parseJsonExactly(b)), equal, `${what}: ${equal ? 'equal' : 'distinct'}`);
  }
});

t.test('members of a parsed object are written as the whole would write them', async (t) => {
  const parsed = parseJsonExactly(`{"id":${'9'.repeat(20)},"__proto__":{"n":1},"note":"x"}`) as object;
  const members = membersOf(parsed, ['id', '__proto__']);
  t.equal(Object.getPrototypeOf(members), Object.prototype, 'prototype untouched');
  t.equal(jsonTextWithin(members, members), `{"id":${'9'.repeat(20)},"__proto__":{"n":1}}`, 'the long number as written');
});

t.test('JSON from outside keeps what a double would change, exponents included', async (t) => {
  const parsed = parseUntrustedJsonExactly(
    '{"acc":9007199254740993,"big":1e400,"tiny":1e-400,"sci":1.0000000000000001e0,"short":1e5,"neg":-2.5E-3,"s":"1e400"}',
  ) as Record<string, unknown>;
  const texts = Object.fromEntries(Object.entries(parsed).map(([key, value]) => [key, isExactNumber(value) ? `exact ${value.value}` : value]));
  t.strictSame(texts, {
    acc: 'exact 9007199254740993',
    big: 'exact 1e400',
    tiny: 'exact 1e-400',
    sci: 'exact 1.0000000000000001e0',
    short: 1e5,
    neg: -0.0025,
    s: '1e400',
  });
  const plain = '{"role":"admin","exp":1790000000,"ids":[1,2.5,-3],"o":{"x":null}}';
  t.strictSame(parseUntrustedJsonExactly(plain), JSON.parse(plain), 'text without such a number: as JSON.parse makes it');
});

t.test('JSON from outside: duplicate keys, __proto__ and bad text as JSON.parse has them', async (t) => {
  for (const number of ['1', '1e400']) {
    const text = `{"a":1,"a":${number},"__proto__":{"polluted":true}}`;
    const parsed = parseUntrustedJsonExactly(text) as Record<string, unknown>;
    t.equal(String(parsed.a), number, `the last duplicate wins (${number})`);
    t.equal(Object.getPrototypeOf(parsed), Object.prototype, 'prototype untouched');
    t.ok(Object.hasOwn(parsed, '__proto__'), '__proto__ an own key');
  }
  t.throws(() => parseUntrustedJsonExactly('{"a":1e400,}'), SyntaxError, 'not JSON');
  t.throws(() => parseUntrustedJsonExactly('{"a":1,}'), SyntaxError, 'not JSON, on the native path');
  const deep = `{"a":${'['.repeat(20_000)}9007199254740993${']'.repeat(20_000)}}`;
  t.throws(() => parseUntrustedJsonExactly(deep), JsonTooDeepError, 'refused, not rounded');
  t.doesNotThrow(() => parseUntrustedJsonExactly(`{"a":${'['.repeat(20_000)}1${']'.repeat(20_000)}}`), 'deep with short numbers: JSON.parse');
});
