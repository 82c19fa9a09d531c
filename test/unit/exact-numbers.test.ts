// Numbers compare by exact decimal value, as jsonb compares them.
import { LosslessNumber } from 'lossless-json';
import t from 'tap';
import { isExactNumber } from '../../src/exact-json.ts';
import { canonicalNumberText, compareNumbers, exactOrDouble, type JsonNumber } from '../../src/filters/exact-numbers.ts';

/** A string is a number kept as that text; a number is a double. */
const num = (value: string | number): JsonNumber => (typeof value === 'string' ? new LosslessNumber(value) : value);

t.test('compareNumbers orders by exact decimal value', async (t) => {
  const cases: Array<[string | number, string | number, -1 | 0 | 1]> = [
    // One value, several ways to write it.
    ['1', '1.0', 0],
    ['1', '1e0', 0],
    ['1.0', '10e-1', 0],
    ['100', '1E2', 0],
    ['1200', '1.2e+3', 0],
    ['0.0001230', '1.23e-4', 0],
    ['12.3400', 12.34, 0],
    ['0.1', 0.1, 0],
    ['-0', '0', 0],
    ['-0.0e5', 0, 0],
    ['-0', -0, 0],
    ['9.007199254740993e15', '9007199254740993', 0],
    // Neighbours that one double holds.
    ['9007199254740993', '9007199254740992', 1],
    ['9007199254740993', 9007199254740992, 1],
    ['-9007199254740993', '-9007199254740992', -1],
    ['1234567890123456789', '1234567890123456790', -1],
    ['3.0000000000000001', 3, 1],
    ['2.9999999999999999', 3, -1],
    ['-3.0000000000000001', -3, -1],
    ['0.1000000000000000055511151231257827', 0.1, 1],
    // Digits against digits, same leading power.
    ['12', '123', -1],
    ['13', '123', -1],
    ['0.13', '0.123', 1],
    ['-0.13', '-0.123', -1],
    // Past a double's range: both 1e400 and 1e401 are Infinity, 1e-400 and 1e-401 are 0.
    ['1e400', '1e401', -1],
    ['-1e400', '-1e401', 1],
    ['1e400', 1.7976931348623157e308, 1],
    ['1e-400', '1e-401', 1],
    ['1e-400', 0, 1],
    ['-1e-400', '0', -1],
    ['1e-400', 5e-324, -1],
    ['-1e400', '1e-400', -1],
    // Exponents past a double's integers.
    ['1e99999999999999999999', '1e99999999999999999998', 1],
    ['1e-99999999999999999999', '1e-99999999999999999998', -1],
    // Plain doubles.
    [2, 3, -1],
    [-1.5, -1.5, 0],
  ];
  for (const [a, b, expected] of cases) {
    t.equal(Math.sign(compareNumbers(num(a), num(b))), expected, `${a} vs ${b}`);
    t.equal(Math.sign(compareNumbers(num(b), num(a))), -expected || 0, `${b} vs ${a}`);
  }
});

t.test('exactOrDouble: a double where one holds the value, the text otherwise', async (t) => {
  const cases: Array<[string, number | string]> = [
    ['9007199254740992', 9007199254740992],
    ['100000000000000000000', 1e20],
    ['1.50', 1.5],
    ['-0', -0],
    ['9007199254740993', 'exact'],
    ['3.0000000000000001', 'exact'],
    ['1e400', 'exact'],
    ['1e-400', 'exact'],
  ];
  for (const [text, expected] of cases) {
    const result = exactOrDouble(new LosslessNumber(text));
    t.equal(isExactNumber(result) ? 'exact' : result, expected, text);
  }
});

t.test('canonicalNumberText is equal exactly for equal values', async (t) => {
  const text = (value: string): string => canonicalNumberText(new LosslessNumber(value));
  t.equal(text('9007199254740993'), text('9.007199254740993e15'));
  t.equal(text('1.0e400'), text('10e399'));
  t.equal(text('-0.0'), text('0'));
  t.not(text('9007199254740993'), text('9007199254740992'));
  t.not(text('1e400'), text('-1e400'));
  t.not(text('1e400'), text('1e-400'));
  t.equal(text('-12.5e-3'), '-125e-2', 'digits, then the power of ten of the first one');
});
