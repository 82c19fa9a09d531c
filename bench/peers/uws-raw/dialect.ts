// The raw uWebSockets.js limit's protocol: the token in the query, the row itself as the frame.
import { numberAfterFirstKey, numberAfterKey, type Dialect } from '../../lib/dialect.ts';

export const uwsRawDialect: Dialect = {
  upgradePath: (token) => `/?token=${encodeURIComponent(token)}`,
  greeting: () => [],
  read(text) {
    if (text.startsWith('{"id"')) return { kind: 'event', rowId: numberAfterFirstKey(text, 'id'), sentAtUs: numberAfterKey(text, 'sent_at') };
    return { kind: 'ignore' };
  },
};
