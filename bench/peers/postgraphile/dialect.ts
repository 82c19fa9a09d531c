// The PostGraphile peer's client protocol: graphql-ws (`graphql-transport-ws`) on /graphql.
// The greeting is connection_init alone, the token in its payload; the subscription is the reply to
// connection_ack, as the protocol asks: graphql-ws closes a socket with 4401 "Unauthorized" when a
// subscribe is read before the server has acknowledged the init, and a subscribe sent right behind
// the init (same TCP read) is read before that. There is no acknowledgement of a subscription in
// graphql-ws: the first event says it is in place (the harness waits for one for every system).
//
// The upgrade MUST offer the subprotocol (`Sec-WebSocket-Protocol: graphql-transport-ws`): without
// it graphql-ws closes the socket at once with 4406 "Subprotocol not acceptable".

import type { Dialect, FrameMeaning } from '../../lib/dialect.ts';

/** The WebSocket subprotocol the server requires in the upgrade request. */
export const POSTGRAPHILE_SUBPROTOCOL = 'graphql-transport-ws';

// Aliases make the two keys the dialect reads unique in the frame (the message's own `"id":"1"`
// comes first), and `rowId` is what PostGraphile calls the `id` column.
const SUBSCRIPTION = 'subscription { benchOrders { order { rowId sentAt } } }';
const NEXT = '{"id":"1","type":"next","payload":{"data":'; // graphql-ws writes id, type, payload in this order
const PONG = { kind: 'reply', text: '{"type":"pong"}' } as const satisfies FrameMeaning;
const SUBSCRIBE = {
  kind: 'reply',
  text: JSON.stringify({ id: '1', type: 'subscribe', payload: { query: SUBSCRIPTION } }),
} as const satisfies FrameMeaning;
const IGNORE = { kind: 'ignore' } as const satisfies FrameMeaning;

/**
 * Reads the integer after `"key":` (optional spaces), written as a JSON number (`123`) or as a
 * string of digits (`"123"`: GraphQL's BigInt), or NaN.
 */
export function integerAfterKey(text: string, key: string): number {
  const at = text.indexOf(`"${key}":`);
  if (at < 0) return Number.NaN;
  let index = at + key.length + 3;
  while (text.charCodeAt(index) === 32) index++;
  const quoted = text.charCodeAt(index) === 34;
  if (quoted) index++;
  let end = index;
  if (text.charCodeAt(end) === 45) end++; // a minus sign
  while (end < text.length) {
    const code = text.charCodeAt(end);
    if (code < 48 || code > 57) break;
    end++;
  }
  if (end === index || (end === index + 1 && text.charCodeAt(index) === 45)) return Number.NaN;
  if (quoted && text.charCodeAt(end) !== 34) return Number.NaN; // "12a" is no integer
  return Number(text.slice(index, end));
}

export const postgraphileDialect: Dialect = {
  protocol: POSTGRAPHILE_SUBPROTOCOL,
  upgradePath: () => '/graphql',
  greeting: (token) => [JSON.stringify({ type: 'connection_init', payload: { token } })],
  read(text) {
    // Events first: they are nearly every frame of a run.
    if (text.startsWith(NEXT) && !text.includes('"errors":')) {
      // `"order":null`: the row was gone when PostGraphile fetched it by id; not an event, and the
      // bench counts the row as lost.
      if (text.includes('"order":null')) return IGNORE;
      const rowId = integerAfterKey(text, 'rowId');
      const sentAtUs = integerAfterKey(text, 'sentAt');
      if (Number.isNaN(rowId) || Number.isNaN(sentAtUs)) {
        return { kind: 'error', message: `postgraphile: unexpected result: ${text}` };
      }
      return { kind: 'event', rowId, sentAtUs };
    }
    let message: { type?: unknown } | null = null;
    try {
      message = JSON.parse(text) as { type?: unknown } | null;
    } catch {
      return { kind: 'error', message: `postgraphile: unparsable frame: ${text}` };
    }
    switch (message?.type) {
      case 'connection_ack':
        return SUBSCRIBE;
      case 'pong':
        return IGNORE;
      case 'ping':
        return PONG;
      case 'next': // a result with errors (a refetch that failed): the run is broken
      case 'error': // the subscription was refused (e.g. a bad token)
        return { kind: 'error', message: `postgraphile: ${text}` };
      case 'complete':
        return { kind: 'error', message: `postgraphile ended the subscription: ${text}` };
      default:
        return IGNORE;
    }
  },
};
