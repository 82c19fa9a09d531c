// How a bench subscriber speaks to one system under test. The subscriber owns the socket and the
// bookkeeping; a dialect only says which frames to send and what a received text frame means, so
// every system is measured by the same client code.

/** What one text frame from the server means to a bench subscriber. */
export type FrameMeaning =
  /** A row of bench_orders arrived: its id and the writer's stamp (µs of CLOCK_MONOTONIC). */
  | { readonly kind: 'event'; readonly rowId: number; readonly sentAtUs: number }
  /** The server asks for an answer (a protocol-level ping): send `text` back. */
  | { readonly kind: 'reply'; readonly text: string }
  /** Handshake, acknowledgements and anything else the bench does not count. */
  | { readonly kind: 'ignore' }
  /** The server refused something: the run is broken and says why. */
  | { readonly kind: 'error'; readonly message: string };

/** One system's client protocol. Pure: no I/O. */
export interface Dialect {
  /** The WebSocket subprotocol to offer in the upgrade, where the server requires one. */
  readonly protocol?: string;
  /** Path and query of the WebSocket upgrade request, e.g. `/ws?access_token=…`. */
  upgradePath(token: string): string;
  /** Text frames to send once the socket is open, in order: handshake and subscription. */
  greeting(token: string): readonly string[];
  /** Reads one text frame from the server. */
  read(text: string): FrameMeaning;
}

/** `"key":` and `{"key":` for each key read so far: built once, not at every frame. */
const keyNeedles = new Map<string, string>();
const firstKeyNeedles = new Map<string, string>();

/**
 * Reads the first integer after `"key":` (optional spaces) in a JSON text, or NaN. Digit by digit,
 * with no substring: a subscriber reads two of these in every frame it receives.
 */
export function numberAfterKey(text: string, key: string): number {
  const needle = needleOf(key);
  const at = text.indexOf(needle);
  return at < 0 ? Number.NaN : integerAt(text, at + needle.length);
}

/**
 * The integer of `key` where it is an object's first key (`{"key":`), or NaN. A string search
 * skips ahead to the needle's first character: `{` is rare in a frame, where `"` stops it at every
 * key and value (string searches took a third of a load process's CPU in a drain).
 */
export function numberAfterFirstKey(text: string, key: string): number {
  const needle = needleOf(key, true);
  const at = text.indexOf(needle);
  return at < 0 ? Number.NaN : integerAt(text, at + needle.length);
}

/**
 * The same for the last `"key":` of the text: for a key near the end of a long frame. A loop from
 * the end: the engine's lastIndexOf, a runtime call that compares the needle at every position,
 * took about a tenth of a load process's CPU in a drain (perf); this loop compares only the
 * characters after the key, a few dozen in an event frame.
 */
export function numberAfterLastKey(text: string, key: string): number {
  const needle = needleOf(key);
  const last = needle.length - 1;
  const lastCode = needle.charCodeAt(last);
  // The needle ends with `:`; a match is found from its end, checked backwards.
  for (let end = text.length - 1; end >= last; end--) {
    if (text.charCodeAt(end) !== lastCode) continue;
    let i = 1;
    while (i <= last && text.charCodeAt(end - i) === needle.charCodeAt(last - i)) i++;
    if (i > last) return integerAt(text, end + 1);
  }
  return Number.NaN;
}

function needleOf(key: string, opensObject = false): string {
  const cache = opensObject ? firstKeyNeedles : keyNeedles;
  let needle = cache.get(key);
  if (needle === undefined) cache.set(key, (needle = `${opensObject ? '{' : ''}"${key}":`));
  return needle;
}

/** The integer that starts at `index` (after optional spaces), or NaN. */
function integerAt(text: string, index: number): number {
  while (text.charCodeAt(index) === 32) index++;
  const negative = text.charCodeAt(index) === 45;
  if (negative) index++;
  let value = 0;
  let digits = 0;
  for (let code = text.charCodeAt(index); code >= 48 && code <= 57; code = text.charCodeAt(++index)) {
    value = value * 10 + (code - 48);
    digits++;
  }
  if (digits === 0) return Number.NaN;
  return negative ? -value : value;
}
