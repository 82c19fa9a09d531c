// The socket.io peer's client protocol, spoken over a raw WebSocket so the bench measures it with
// the same subscriber code as every other system: Engine.IO v4 framing (a one-character packet
// type, then data) carrying socket.io v5 packets (a second type character, then JSON) on the
// default namespace.
//
// The CONNECT (`40`) is sent at once, without waiting for the Engine.IO open packet (`0{...}`):
// the server writes the 101 response, creates the Engine.IO socket and hooks its message handler in
// one step, so a frame sent after the upgrade completes is never early.

import { numberAfterFirstKey, numberAfterKey, type Dialect, type FrameMeaning } from '../../lib/dialect.ts';

const PING = '2'; // Engine.IO ping; v4 servers send it every pingInterval and want a pong within pingTimeout
const PONG = { kind: 'reply', text: '3' } as const satisfies FrameMeaning;
const IGNORE = { kind: 'ignore' } as const satisfies FrameMeaning;
const ORDER_EVENT = '42["order",'; // Engine.IO message (4) + socket.io EVENT (2), event name first
const CONNECT = '40'; // socket.io CONNECT to the default namespace, with the auth payload
const CONNECT_ERROR = '44'; // the middleware refused: `44{"message":...}`

/** Reads the message of a connect_error packet, or the raw text when it is not the expected JSON. */
function connectErrorMessage(text: string): string {
  try {
    const body: unknown = JSON.parse(text.slice(CONNECT_ERROR.length));
    const message = (body as { message?: unknown } | null)?.message;
    if (typeof message === 'string') return `socket.io connect_error: ${message}`;
  } catch {
    // Not JSON: the raw frame below says more than a parse error would.
  }
  return `socket.io connect_error: ${text}`;
}

export const socketIoDialect: Dialect = {
  upgradePath: () => '/socket.io/?EIO=4&transport=websocket',
  greeting: (token) => [`${CONNECT}${JSON.stringify({ token })}`],
  read(text) {
    // Events first: they are nearly every frame of a run.
    if (text.startsWith(ORDER_EVENT)) {
      // The row is the event's only argument and `id` opens it; row_to_json writes bigint
      // columns as JSON numbers, and a quote inside a string value is escaped, so "id": cannot
      // be matched inside `note`.
      return { kind: 'event', rowId: numberAfterFirstKey(text, 'id'), sentAtUs: numberAfterKey(text, 'sent_at') };
    }
    if (text === PING) return PONG;
    if (text.startsWith(CONNECT_ERROR)) return { kind: 'error', message: connectErrorMessage(text) };
    return IGNORE; // the open packet `0{...}`, the CONNECT ack `40{...}`, noop `6`, anything else
  },
};
