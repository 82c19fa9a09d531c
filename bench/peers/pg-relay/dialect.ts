// pg-relay's protocol for the bench: the token in the upgrade's query, one subscription to `orders`.
import { numberAfterKey, type Dialect } from '../../lib/dialect.ts';

export const pgRelayDialect: Dialect = {
  upgradePath: (token) => `/ws?access_token=${encodeURIComponent(token)}`,
  greeting: () => ['{"type":"subscribe","topic":"orders"}'],
  read(text) {
    // Events are nearly every frame: look at the type's first letters before anything else.
    if (text.startsWith('{"type":"event"')) {
      return { kind: 'event', rowId: numberAfterKey(text, 'id'), sentAtUs: numberAfterKey(text, 'sent_at') };
    }
    if (text.startsWith('{"type":"error"')) return { kind: 'error', message: text };
    return { kind: 'ignore' };
  },
};
