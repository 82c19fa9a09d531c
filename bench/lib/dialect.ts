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

/** Reads the first integer after `"key":` (optional spaces) in a JSON text, or NaN. */
export function numberAfterKey(text: string, key: string): number {
  const at = text.indexOf(`"${key}":`);
  if (at < 0) return Number.NaN;
  let index = at + key.length + 3;
  while (text.charCodeAt(index) === 32) index++;
  let end = index;
  while (end < text.length) {
    const code = text.charCodeAt(end);
    if ((code < 48 || code > 57) && code !== 45) break;
    end++;
  }
  return end > index ? Number(text.slice(index, end)) : Number.NaN;
}
