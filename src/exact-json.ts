// Row data exactly as PostgreSQL wrote it. JSON.parse makes every number a double, so a bigint
// such as a snowflake id (1234567890123456789) or a numeric of 20 digits would reach subscribers
// changed (1234567890123456800). The event log's JSON is parsed so that a number a double cannot
// hold keeps its text (lossless-json's LosslessNumber), and frames write that text back.

import { isLosslessNumber, isSafeNumber, LosslessNumber, parse } from 'lossless-json';

/**
 * Only a number written with 16 or more digits and dots in a row can change as a double, as
 * PostgreSQL writes every number of its JSON in full, never with an exponent (1e400 is 1 and 400
 * zeros; test/unit/exact-json.test.ts checks shorter ones). Text without such a run, nearly every
 * row, takes the native parser.
 */
const LONG_DIGIT_RUN = /\d[\d.]{15}/;

/** The objects parsed here that hold such a number somewhere inside. */
const holdingExactNumbers = new WeakSet<object>();

/**
 * Parses JSON text from PostgreSQL; a number that a double would change is kept as its text.
 * lossless-json parses recursively: JSON nested deeper than its stack (PostgreSQL stores 10,000
 * levels) goes to parseDeepJsonExactly, which keeps the numbers exact all the same. (It went to
 * JSON.parse, which rounded every long number of the row: one deep document in a row made its
 * account 9007199254740993 match a grant on 9007199254740992.)
 */
export function parseJsonExactly(text: string): unknown {
  if (!LONG_DIGIT_RUN.test(text)) return JSON.parse(text);
  let exact = false;
  let value: unknown;
  try {
    value = parse(text, null, (numberText) => {
      if (isSafeNumber(numberText)) return Number(numberText);
      exact = true;
      return new LosslessNumber(numberText);
    });
  } catch {
    ({ value, exact } = parseDeepJsonExactly(text));
  }
  if (exact && typeof value === 'object' && value !== null) holdingExactNumbers.add(value);
  return value;
}

/** Starts the strings that stand for kept numbers in parseDeepJsonExactly: U+0000, which jsonb never holds. */
const KEPT_NUMBER_MARK = '\\u0000';

/**
 * parseJsonExactly without recursion, for JSON nested deeper than lossless-json's stack: each
 * number that a double would change is written as a string that jsonb cannot hold (U+0000 and the
 * number's index), JSON.parse (which nests without limit) reads the text, and a walk with a stack
 * of its own puts the numbers back, as LosslessNumber. Text that holds U+0000 (not PostgreSQL's
 * jsonb) is refused.
 */
function parseDeepJsonExactly(text: string): { value: unknown; exact: boolean } {
  const kept: string[] = [];
  const parts: string[] = [];
  let copiedTo = 0;
  let at = 0;
  while (at < text.length) {
    const code = text.charCodeAt(at);
    if (code === QUOTE) {
      at++;
      while (at < text.length && text.charCodeAt(at) !== QUOTE) {
        if (text.charCodeAt(at) === BACKSLASH) {
          if (text.startsWith('u0000', at + 1)) throw new SyntaxError('JSON text holding U+0000 (jsonb never does)');
          at++;
        }
        at++;
      }
      at++;
    } else if (code === MINUS || (code >= DIGIT_0 && code <= DIGIT_9)) {
      let end = at + 1;
      while (end < text.length && NUMBER_CHARACTER.test(text[end]!)) end++;
      const numberText = text.slice(at, end);
      if (!isSafeNumber(numberText)) {
        parts.push(text.slice(copiedTo, at), `"${KEPT_NUMBER_MARK}${kept.length}"`);
        kept.push(numberText);
        copiedTo = end;
      }
      at = end;
    } else at++;
  }
  if (kept.length === 0) return { value: JSON.parse(text), exact: false };
  parts.push(text.slice(copiedTo));
  const keptNumber = (value: unknown): unknown =>
    typeof value === 'string' && value.charCodeAt(0) === 0 ? new LosslessNumber(kept[Number(value.slice(1))]!) : value;
  const root = keptNumber(JSON.parse(parts.join('')));
  const pending: unknown[] = [root];
  while (pending.length > 0) {
    const container = pending.pop();
    if (typeof container !== 'object' || container === null || isExactNumber(container)) continue;
    const record = container as Record<string, unknown>;
    for (const key of Object.keys(record)) {
      const member = record[key];
      if (typeof member === 'object' && member !== null) pending.push(member);
      // Defined, as JSON.parse defines it: an assignment to `__proto__` would set the prototype.
      else if (typeof member === 'string') Object.defineProperty(record, key, { ...OWN_MEMBER, value: keptNumber(member) });
    }
  }
  return { value: root, exact: true };
}

const OWN_MEMBER = { writable: true, enumerable: true, configurable: true } as const;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const MINUS = 0x2d;
const DIGIT_0 = 0x30;
const DIGIT_9 = 0x39;
const NUMBER_CHARACTER = /[\d.eE+-]/;

/**
 * Text that may hold a number a double would change, in JSON from anywhere: a run of 16 digits
 * and dots, or an exponent (`1e-400` is 0 as a double, `1e400` Infinity). Without either, every
 * number has at most 15 significant digits between 1e-14 and 1e15, which a double holds exactly.
 */
const MAYBE_INEXACT_NUMBER = /\d[\d.]{15}|\d[eE]/;

/**
 * Parses JSON from outside the database (a token's payload, a client's filter): like
 * parseJsonExactly, a number that a double would change is kept as its text, but exponents are
 * looked for too, and a duplicate key keeps its last value as JSON.parse does. JSON too deeply
 * nested for lossless-json's recursive parser is refused (JsonTooDeepError) rather than read with
 * its numbers rounded, since rounding is what this is here to prevent; so is text that is not JSON.
 */
export function parseUntrustedJsonExactly(text: string): unknown {
  if (!MAYBE_INEXACT_NUMBER.test(text)) return JSON.parse(text);
  try {
    return parse(text, null, { parseNumber: keepInexactNumber, onDuplicateKey: ({ newValue }) => newValue });
  } catch (error) {
    // Not JSON at all: JSON.parse's own error says so.
    JSON.parse(text);
    throw new JsonTooDeepError('JSON nested too deeply to read its numbers exactly', { cause: error });
  }
}

/** Valid JSON that parseUntrustedJsonExactly refuses: nested too deeply to read its numbers exactly. */
export class JsonTooDeepError extends SyntaxError {
  override readonly name = 'JsonTooDeepError';
}

function keepInexactNumber(numberText: string): number | LosslessNumber {
  return isSafeNumber(numberText) ? Number(numberText) : new LosslessNumber(numberText);
}

/** Whether `value` is a number kept as its text (see parseJsonExactly). */
export const isExactNumber: (value: unknown) => value is LosslessNumber = isLosslessNumber;

/**
 * Some members of an object that parseJsonExactly returned, as a new object that frames write the
 * same way (its numbers kept as text are written as they came).
 */
export function membersOf(parsed: object, keys: readonly string[]): Record<string, unknown> {
  const source = parsed as Readonly<Record<string, unknown>>;
  // fromEntries defines each key as its own: a `__proto__` column stays a plain key.
  const members = Object.fromEntries(keys.map((key) => [key, source[key]]));
  if (holdingExactNumbers.has(parsed)) holdingExactNumbers.add(members);
  return members;
}

/**
 * `{...base, ...over}` (an update's previous row: its new row with the previous values over it), as
 * a new object that frames write the same way as the two (numbers kept as text as they came).
 * Spread defines each key as its own: a `__proto__` column stays a plain key.
 */
export function overlaid(base: object, over: object): Record<string, unknown> {
  const merged: Record<string, unknown> = { ...base, ...over };
  if (holdingExactNumbers.has(base) || holdingExactNumbers.has(over)) holdingExactNumbers.add(merged);
  return merged;
}

/**
 * Whether two parsed values are equal as jsonb compares them: objects by their keys and values
 * whatever the order, arrays item by item, numbers by value (12.50 and 12.5 are equal; JSON.parse
 * made both the same double, and two numbers kept as text are equal when their digits are). A
 * number kept as text never equals a double: it is kept because no double holds it. With a stack
 * of its own, for values nested deeper than the call stack.
 */
export function sameJsonValue(a: unknown, b: unknown): boolean {
  const pending: [unknown, unknown][] = [[a, b]];
  while (pending.length > 0) {
    const [x, y] = pending.pop()!;
    if (x === y) continue;
    if (isExactNumber(x) || isExactNumber(y)) {
      if (isExactNumber(x) && isExactNumber(y) && decimalDigits(x.value) === decimalDigits(y.value)) continue;
      return false;
    }
    if (typeof x !== 'object' || typeof y !== 'object' || x === null || y === null) return false;
    if (Array.isArray(x) || Array.isArray(y)) {
      if (!Array.isArray(x) || !Array.isArray(y) || x.length !== y.length) return false;
      for (let i = 0; i < x.length; i++) pending.push([x[i], y[i]]);
      continue;
    }
    const xKeys = Object.keys(x);
    if (xKeys.length !== Object.keys(y).length) return false;
    for (const key of xKeys) {
      if (!Object.hasOwn(y, key)) return false;
      pending.push([(x as Record<string, unknown>)[key], (y as Record<string, unknown>)[key]]);
    }
  }
  return true;
}

/**
 * A number as PostgreSQL writes it (never an exponent), without the zeros that end a fraction. A
 * loop, not a regex: /\.?0+$/ backtracks through every run of zeros, and a numeric's fraction of
 * 16,383 digits that ends in another digit took it a quarter of a second.
 */
function decimalDigits(text: string): string {
  if (!text.includes('.')) return text;
  let end = text.length;
  while (text[end - 1] === '0') end--;
  if (text[end - 1] === '.') end--;
  return text.slice(0, end);
}

/**
 * The JSON text of a value: JSON.stringify's, except that numbers kept as text are written as
 * they came, and that nesting deeper than JSON.stringify's stack (about 4,000 levels, which
 * PostgreSQL stores) is written all the same. `parsed` is the object that parseJsonExactly returned
 * and `value` is in. Undefined where JSON.stringify gives undefined (a function, undefined).
 */
export function jsonTextWithin(parsed: object, value: unknown): string | undefined {
  if (!holdingExactNumbers.has(parsed)) {
    try {
      return JSON.stringify(value) as string | undefined;
    } catch (error) {
      if (!(error instanceof RangeError)) throw error;
    }
  }
  return isWritable(value) ? writeJson(value) : undefined;
}

/** What JSON.stringify leaves out of an object (and writes as null in an array). */
function isWritable(value: unknown): boolean {
  return value !== undefined && typeof value !== 'function' && typeof value !== 'symbol';
}

/** One array or object being written: its own keys (null for an array), the next index, members written. */
interface OpenContainer {
  readonly container: unknown;
  readonly keys: readonly string[] | null;
  index: number;
  written: number;
}

/**
 * JSON.stringify for the values JSON text parses to (plain objects, arrays, strings, numbers,
 * booleans, null) and LosslessNumber, with a stack of its own instead of recursion.
 */
function writeJson(root: unknown): string {
  const out: string[] = [];
  const open: OpenContainer[] = [];
  const begin = (value: unknown): void => {
    if (isExactNumber(value)) out.push(value.value);
    else if (Array.isArray(value)) {
      out.push('[');
      open.push({ container: value, keys: null, index: 0, written: 0 });
    } else if (typeof value === 'object' && value !== null) {
      out.push('{');
      open.push({ container: value, keys: Object.keys(value), index: 0, written: 0 });
    } else out.push(JSON.stringify(value));
  };
  begin(root);
  while (open.length > 0) {
    const top = open[open.length - 1]!;
    if (top.keys === null) {
      const array = top.container as readonly unknown[];
      if (top.index === array.length) {
        out.push(']');
        open.pop();
        continue;
      }
      if (top.index > 0) out.push(',');
      const item = array[top.index++];
      begin(isWritable(item) ? item : null);
      continue;
    }
    const object = top.container as Readonly<Record<string, unknown>>;
    while (top.index < top.keys.length && !isWritable(object[top.keys[top.index]!])) top.index++;
    if (top.index === top.keys.length) {
      out.push('}');
      open.pop();
      continue;
    }
    const key = top.keys[top.index++]!;
    out.push(`${top.written++ > 0 ? ',' : ''}${JSON.stringify(key)}:`);
    begin(object[key]);
  }
  return out.join('');
}
