// How much work a client frame's JSON would take to read, found before it is read. Reading costs
// with nesting and with the values held: a 64 KiB frame of 32,000 nested arrays took 15 ms, one of
// 9,000 numbers like 1e5 7 ms (each number is kept exactly, through lossless-json, once the text
// holds a long number or an exponent), one of 6,000 strings in an `in` list 1.3 ms, at up to
// RELAY_MAX_MESSAGES_PER_SECOND frames a second per connection. No message needs more than its
// filter does, so a frame that nests deeper, or holds more values, than the largest filter the
// limits allow is refused unread.

import { isSafeNumber, LosslessNumber } from 'lossless-json';
import { DEFAULT_FILTER_LIMITS } from '../filters/parse-filter.ts';
import type { MessageRef } from './client-messages.ts';

export interface FrameShapeLimits {
  /** JSON levels of objects and arrays. */
  readonly maxNesting: number;
  /** Members of objects and elements of arrays, all told. */
  readonly maxValues: number;
}

/**
 * The shape that a message with the largest filter allowed can have: two JSON levels per filter
 * level (`{"and": [...]}`), a condition's three (`{"col": {"in": [...]}}`) and the message's own;
 * a few members per condition (`{"col": {"eq": {"claim": "path"}}}`), every `in` value, and the
 * message's own fields.
 */
export function frameShapeLimits(filter: { readonly maxFilterDepth: number; readonly maxFilterNodes: number }): FrameShapeLimits {
  return {
    maxNesting: 2 * filter.maxFilterDepth + 8,
    maxValues: 4 * filter.maxFilterNodes + DEFAULT_FILTER_LIMITS.maxInValues + 32,
  };
}

/** For the default limits. */
export const DEFAULT_FRAME_SHAPE_LIMITS = frameShapeLimits({
  maxFilterDepth: DEFAULT_FILTER_LIMITS.maxDepth,
  maxFilterNodes: DEFAULT_FILTER_LIMITS.maxNodes,
});

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACE = 0x7b;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACE = 0x7d;
const CLOSE_BRACKET = 0x5d;
const COMMA = 0x2c;

/**
 * What makes `text` (JSON or not) too costly to read under `limits`, or null. One pass over what
 * is outside strings (strings are skipped with indexOf), counting levels and the commas and
 * containers that separate values, which stops at the first one too many: at most about 0.35 ms
 * for 64 KiB here, what JSON.parse takes for a frame of numbers (and ten times what it takes for
 * one of whitespace), a fraction of what lossless-json and the rest of handling take.
 */
export function frameShapeProblem(text: string, limits: FrameShapeLimits): string | null {
  let depth = 0;
  let values = 0;
  for (let at = 0; at < text.length; at++) {
    const code = text.charCodeAt(at);
    if (code === QUOTE) {
      at = closingQuote(text, at);
    } else if (code === OPEN_BRACE || code === OPEN_BRACKET) {
      if (++depth > limits.maxNesting) return `JSON nested deeper than ${limits.maxNesting} levels`;
      if (++values > limits.maxValues) return `more than ${limits.maxValues} values in one message`;
    } else if (code === CLOSE_BRACE || code === CLOSE_BRACKET) {
      depth--;
    } else if (code === COMMA) {
      if (++values > limits.maxValues) return `more than ${limits.maxValues} values in one message`;
    }
  }
  return null;
}

/**
 * The top-level `ref` of a frame refused unread, found without reading the rest, so that its reply
 * carries it back all the same: a string, or a number that a double comes near (the last one, as a
 * parser keeps the last of duplicate keys). One pass like frameShapeProblem's, without its stops,
 * that decodes no key but the ones that may spell `ref` (written plainly, or short enough with
 * escapes), from the last one back: a refusal costs about what reading a frame of that size does.
 */
export function topLevelRef(text: string): MessageRef | undefined {
  const keys: Array<{ readonly open: number; readonly close: number; readonly colon: number }> = [];
  let depth = 0;
  for (let at = 0; at < text.length; at++) {
    const code = text.charCodeAt(at);
    if (code === QUOTE) {
      const close = closingQuote(text, at);
      if (depth === 1 && mayBeRef(text, at, close)) {
        const colon = nextNonSpace(text, close + 1);
        if (text.charCodeAt(colon) === COLON) keys.push({ open: at, close, colon });
      }
      at = close;
    } else if (code === OPEN_BRACE || code === OPEN_BRACKET) {
      // A top level that is not an object has no members.
      if (depth === 0 && code === OPEN_BRACKET) return undefined;
      depth++;
    } else if (code === CLOSE_BRACE || code === CLOSE_BRACKET) {
      depth--;
    }
  }
  let decoded = 0;
  for (let index = keys.length - 1; index >= 0; index--) {
    const { open, close, colon } = keys[index]!;
    if (close - open === 4) return refValueAt(text, nextNonSpace(text, colon + 1));
    // Keys written with escapes are decoded one by one: past a few (thousands, none of them `ref`,
    // would cost more than the frame is worth), only keys written plainly are looked at.
    if (++decoded <= MAX_ESCAPED_KEYS_DECODED && parsedOrUndefined(text.slice(open, close + 1)) === 'ref') {
      return refValueAt(text, nextNonSpace(text, colon + 1));
    }
  }
  return undefined;
}

/** How many keys written with escapes topLevelRef decodes, from the last, looking for `ref`. */
const MAX_ESCAPED_KEYS_DECODED = 16;

/** `"ref"` takes 5 characters written plainly, at most 20 with every letter escaped (`\u0072`). */
function mayBeRef(text: string, open: number, close: number): boolean {
  if (close - open === 4) return text.startsWith('ref', open + 1);
  if (close - open > 19) return false;
  for (let at = open + 1; at < close; at++) if (text.charCodeAt(at) === BACKSLASH) return true;
  return false;
}

const COLON = 0x3a;
const NUMBER_TOKEN = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;

/** The ref written at `at`: a string, or a finite number (kept as its text where a double would change it); undefined for anything else. */
function refValueAt(text: string, at: number): MessageRef | undefined {
  if (text.charCodeAt(at) === QUOTE) {
    const value = parsedOrUndefined(text.slice(at, closingQuote(text, at) + 1));
    return typeof value === 'string' ? value : undefined;
  }
  NUMBER_TOKEN.lastIndex = at;
  const match = NUMBER_TOKEN.exec(text);
  if (!match || !Number.isFinite(Number(match[0]))) return undefined;
  return isSafeNumber(match[0]) ? Number(match[0]) : new LosslessNumber(match[0]);
}

/** JSON's whitespace: space, tab, line feed, carriage return. */
function nextNonSpace(text: string, from: number): number {
  let at = from;
  for (; at < text.length; at++) {
    const code = text.charCodeAt(at);
    if (code !== 0x20 && code !== 0x09 && code !== 0x0a && code !== 0x0d) break;
  }
  return at;
}

function parsedOrUndefined(json: string): unknown {
  try {
    return JSON.parse(json);
  } catch {
    return undefined;
  }
}

/** Where the string opened at `open` ends (its closing quote: one no odd run of backslashes escapes), or the text's end. */
function closingQuote(text: string, open: number): number {
  let close = text.indexOf('"', open + 1);
  while (close !== -1) {
    let backslashes = 0;
    while (text.charCodeAt(close - 1 - backslashes) === BACKSLASH) backslashes++;
    if (backslashes % 2 === 0) return close;
    close = text.indexOf('"', close + 1);
  }
  return text.length;
}
