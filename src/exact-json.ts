// Row data exactly as PostgreSQL wrote it. JSON.parse makes every number a double, so a bigint
// such as a snowflake id (1234567890123456789) or a numeric of 20 digits would reach subscribers
// changed (1234567890123456800). The event log's JSON is parsed so that a number a double cannot
// hold keeps its text (lossless-json's LosslessNumber), and frames write that text back.

import { isLosslessNumber, isSafeNumber, LosslessNumber, parse, stringify } from 'lossless-json';

/**
 * Only a number with 16 digits or more (a '.' may be among them) can change as a double, and
 * PostgreSQL writes every number of its JSON in full, never with an exponent (1e400 is 1 and 400
 * zeros). Text without such a run, nearly every row, takes the native parser.
 */
const LONG_DIGIT_RUN = /\d[\d.]{15}/;

/** The objects parsed here that hold such a number somewhere inside. */
const holdingExactNumbers = new WeakSet<object>();

/** Parses JSON text from PostgreSQL; a number that a double would change is kept as its text. */
export function parseJsonExactly(text: string): unknown {
  if (!LONG_DIGIT_RUN.test(text)) return JSON.parse(text);
  let exact = false;
  const value = parse(text, null, (numberText) => {
    if (isSafeNumber(numberText)) return Number(numberText);
    exact = true;
    return new LosslessNumber(numberText);
  });
  if (exact && typeof value === 'object' && value !== null) holdingExactNumbers.add(value);
  return value;
}

/** Whether `value` is a number kept as its text (see parseJsonExactly). */
export const isExactNumber: (value: unknown) => value is LosslessNumber = isLosslessNumber;

/**
 * The JSON text of a value: JSON.stringify's, except that numbers kept as text are written as
 * they came. `parsed` is the object that parseJsonExactly returned and `value` is in.
 */
export function jsonTextWithin(parsed: object, value: unknown): string | undefined {
  return holdingExactNumbers.has(parsed) ? stringify(value) : (JSON.stringify(value) as string | undefined);
}
