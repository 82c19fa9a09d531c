// Numbers by their exact decimal value, as PostgreSQL's jsonb and numeric compare them: 1 = 1.0 =
// 1e0, and 9007199254740993 is not 9007199254740992, although both are the same double.
//
// A number is either a double, standing for the decimal its shortest text writes (String(0.1) is
// "0.1": the value the JSON said), or a number kept as its text (exact-json's LosslessNumber) where
// no double holds it. Comparing two doubles is comparing those decimals, so only the rarer pairs
// with a number kept as text need the decimal work here.

import type { LosslessNumber } from 'lossless-json';
import { isExactNumber } from '../exact-json.ts';

/** A JSON number that a double would change, kept as the text it was written with. */
export type ExactNumber = LosslessNumber;

/** A JSON number in either form. */
export type JsonNumber = number | ExactNumber;

/** True for a finite double or a number kept as text. */
export function isJsonNumber(value: unknown): value is JsonNumber {
  return (typeof value === 'number' && Number.isFinite(value)) || isExactNumber(value);
}

/** Negative, zero or positive as `a` is below, equal to or above `b`, by exact decimal value. */
export function compareNumbers(a: JsonNumber, b: JsonNumber): number {
  const x = typeof a === 'number' ? a : readingOf(a).double;
  const y = typeof b === 'number' ? b : readingOf(b).double;
  // Rounding to the nearest double never reverses an order: distinct doubles decide at once, and
  // only numbers that round to the same double (or to the same infinity) need their digits.
  if (x !== y) return x < y ? -1 : 1;
  if (typeof a === 'number' && typeof b === 'number') return 0;
  // A double is the decimal its text writes, so against the double it rounds to, a number kept
  // as text is on the side worked out once for it (a finite double is never equal to an infinity).
  if (typeof a === 'number') return -readingOf(b as ExactNumber).sideOfDouble;
  if (typeof b === 'number') return readingOf(a).sideOfDouble;
  return compareDecimals(readingOf(a).decimal, readingOf(b).decimal);
}

/**
 * The double that holds a number kept as text exactly, else the number as it is. Filter values
 * and claims go through this, so that a number is a double whenever a double holds it: then a
 * double never equals a number kept as text, and `in` can look a double up in a Set.
 */
export function exactOrDouble(value: ExactNumber): JsonNumber {
  const { double, sideOfDouble } = readingOf(value);
  return Number.isFinite(double) && sideOfDouble === 0 ? double : value;
}

/** A number kept as text as exactOrDouble has it; any other value as it is. */
export function exactScalar(value: unknown): unknown {
  return isExactNumber(value) ? exactOrDouble(value) : value;
}

/** Text that is equal for numbers kept as text exactly when their values are (`1.50e1` and `15.0`). */
export function canonicalNumberText(value: ExactNumber): string {
  const { sign, digits, exponent } = readingOf(value).decimal;
  return sign === 0 ? '0' : `${sign < 0 ? '-' : ''}${digits}e${exponent}`;
}

/**
 * A decimal as sign, significant digits (no leading or trailing zero) and the power of ten of its
 * first digit. The exponent is a bigint: JSON allows `1e99999999999999999999`, which a double's
 * integer would confuse with its neighbours.
 */
interface Decimal {
  readonly sign: -1 | 0 | 1;
  readonly digits: string;
  readonly exponent: bigint;
}

const ZERO: Decimal = { sign: 0, digits: '', exponent: 0n };

/** JSON's number grammar, and String(double)'s (`1e+21`). */
const NUMBER_TEXT = /^(-?)(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/;

function decimalOf(text: string): Decimal {
  const match = NUMBER_TEXT.exec(text);
  if (match === null) throw new Error(`not a JSON number: ${text.slice(0, 40)}`);
  const [, minus, integer = '', fraction = '', exponent = '0'] = match;
  const coefficient = integer + fraction;
  // Loops, not /^0+/ and /0+$/: the second backtracks through every run of zeros.
  let start = 0;
  while (coefficient.charCodeAt(start) === ZERO_CODE) start++;
  if (start === coefficient.length) return ZERO;
  let end = coefficient.length;
  while (coefficient.charCodeAt(end - 1) === ZERO_CODE) end--;
  // The first significant digit sits at position `start` of the coefficient, whose point is
  // after `integer`: its power of ten is integer.length - 1 - start, plus the written exponent.
  return {
    sign: minus === '-' ? -1 : 1,
    digits: coefficient.slice(start, end),
    exponent: BigInt(exponent) + BigInt(integer.length - 1 - start),
  };
}

const ZERO_CODE = '0'.charCodeAt(0);

function compareDecimals(a: Decimal, b: Decimal): number {
  if (a.sign !== b.sign) return a.sign < b.sign ? -1 : 1;
  if (a.sign === 0) return 0;
  // Same sign: compare magnitudes, then flip for negatives. Digit strings without trailing zeros
  // and with the same leading power compare as text ("12" < "123" < "13").
  const magnitude =
    a.exponent !== b.exponent ? (a.exponent < b.exponent ? -1 : 1) : a.digits === b.digits ? 0 : a.digits < b.digits ? -1 : 1;
  return a.sign * magnitude;
}

// A number kept as text is read (its double, its decimal) once per number object: a filter's
// number is compared with every event of its topic, and a row's with every filter the event meets.
// Reading the digits at each comparison cost a filter of 254 of them (a 64 KiB frame holds 60,000
// digits) 470 µs per event.
interface Reading {
  readonly double: number;
  readonly decimal: Decimal;
  /** Negative, zero or positive as the number is below, equal to or above `double` (0 for an infinity). */
  readonly sideOfDouble: number;
}

const readings = new WeakMap<ExactNumber, Reading>();

function readingOf(value: ExactNumber): Reading {
  let reading = readings.get(value);
  if (reading !== undefined) return reading;
  const double = Number(value.value);
  const decimal = decimalOf(value.value);
  const sideOfDouble = Number.isFinite(double) ? compareDecimals(decimal, decimalOf(String(double))) : 0;
  readings.set(value, (reading = { double, decimal, sideOfDouble }));
  return reading;
}
