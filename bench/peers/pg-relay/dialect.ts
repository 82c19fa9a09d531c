// pg-relay's protocol for the bench: the token in the upgrade's query, one subscription to `orders`.
import { numberAfterFirstKey, numberAfterLastKey, type Dialect } from '../../lib/dialect.ts';

export const pgRelayDialect: Dialect = {
  upgradePath: (token) => `/ws?access_token=${encodeURIComponent(token)}`,
  greeting: () => ['{"type":"subscribe","topic":"orders"}'],
  read(text) {
    // Events are nearly every frame: look at the type's first letters before anything else.
    if (text.startsWith('{"type":"event"')) {
      // `data` is the row as jsonb wrote it, keys by length: `id` opens it, and `sent_at` comes
      // after `note`, near the end, and is found from there. A quote inside a string is escaped, so
      // no key is matched in one.
      return { kind: 'event', rowId: numberAfterFirstKey(text, 'id'), sentAtUs: numberAfterLastKey(text, 'sent_at') };
    }
    if (text.startsWith('{"type":"error"')) return { kind: 'error', message: text };
    return { kind: 'ignore' };
  },
};
