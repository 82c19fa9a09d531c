// Every code a client can see, in one place (contract section 3). Clients branch on these: adding
// one is fine, renaming or dropping one breaks them.

/** The `code` values of `{"type":"error"}` frames, each with its meaning. */
export const ERROR_CODES = {
  bad_request: 'the frame is not a JSON object, has an unknown type, or a field of the wrong type',
  unknown_topic: 'no table is watched and no grant is made under this topic',
  forbidden: 'the topic exists, but no grant of your role allows it (any more)',
  already_subscribed: 'this connection is already subscribed to the topic',
  not_subscribed: 'this connection is not subscribed to the topic',
  cursor_expired: 'the `since` cursor is older than the retention; resubscribe without it and reload',
  rate_limited: 'too many messages in too short a time; slow down',
  token_expired: 'the token reached its `exp`; the connection closes with 4001',
  too_large: 'the frame or event is over the size limit',
  too_many_subscriptions: 'this connection holds as many subscriptions as it may (RELAY_MAX_SUBSCRIPTIONS)',
} as const;

/** A client-visible error code. */
export type ErrorCode = keyof typeof ERROR_CODES;

/** Whether `value` is one of {@link ERROR_CODES}. */
export function isErrorCode(value: string): value is ErrorCode {
  return Object.hasOwn(ERROR_CODES, value);
}

/** The WebSocket close codes the relay uses, what they mean, and whether the client should reconnect. */
export const CLOSE_CODES = {
  frameTooLarge: {
    code: 1009,
    meaning: 'a client frame was over the size limit (64 KiB by default)',
    reconnect: false, // sending the same frame again would close the new connection too
  },
  serviceRestart: {
    code: 1012,
    meaning: 'the relay is shutting down',
    reconnect: true, // to another relay, resuming each topic with `since` and the last cursor
  },
  tokenExpired: {
    code: 4001,
    meaning: 'the token expired and no `auth` message refreshed it',
    reconnect: true, // with a fresh token
  },
  rateLimited: {
    code: 1008,
    meaning: 'the client kept sending after rate_limited, or sent more than the relay could hold while answering it (policy violation)',
    reconnect: true, // after a pause, sending less
  },
  eventsPruned: {
    code: 1011,
    meaning: 'retention deleted events before this relay delivered them (it was held back or cut off from PostgreSQL longer than RELAY_RETENTION)',
    reconnect: true, // resuming each topic with `since`: `cursor_expired` says what is gone
  },
  slowConsumer: {
    code: 4008,
    meaning: 'the client read too slowly and its unsent data passed the limit (4 MiB by default)',
    reconnect: true, // resuming each topic with `since` and the last cursor
  },
} as const;

/** The name of a close code, e.g. `slowConsumer`. */
export type CloseCodeName = keyof typeof CLOSE_CODES;
