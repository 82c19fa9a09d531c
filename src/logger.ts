import pino, { type DestinationStream, type Logger } from 'pino';
import { extractToken } from './auth/extract-token.ts';
import { CENSOR, decodeQueryPart, mapQueryPairs } from './redact-url.ts';

export type { Logger } from 'pino';

/** Paths that could carry a token; pino replaces them before a line is written. */
const REDACTED_PATHS = ['token', '*.token', 'authorization', '*.authorization', 'access_token', '*.access_token'];

/** Query parameters whose value is a credential (clients put their token in `access_token`). */
const SECRET_PARAMETERS = new Set(['access_token', 'token', 'jwt']);

/**
 * A JWS in compact form: base64url of a JSON header (`{"` encodes as `eyJ`), then the payload and
 * signature. Matched anywhere in a written line, also cut short (a client may put part of a token
 * in any field, and an error message may quote it).
 */
const JWS_LIKE = /eyJ[A-Za-z0-9_-]{4,}(?:\.[A-Za-z0-9_-]*){0,2}/g;

/**
 * `url` with the value of every credential parameter of its query replaced; the parameter stays,
 * so the line still says that a token was given.
 *
 * The query is split exactly as the relay's own reader splits it (src/auth/extract-token.ts:
 * URLSearchParams over everything after the first `?`), not as a browser splits a URL: a parser of
 * our own that disagreed on any detail (a second `?`, `#` taken for a fragment) let the relay read
 * a token that the log then printed whole. So pairs are split on `&` only (`#` is an ordinary
 * character), a name ends at its first `=` and is decoded (percent-encoding, `+`) by URLSearchParams
 * itself, and a pair's whole value is blanked, however it is encoded. Names are compared without
 * leading `?`s and case-insensitively: that blanks a little more than the relay reads, never less.
 */
export function redactUrl(url: string): string {
  const start = url.indexOf('?');
  if (start < 0) return url;
  const redacted = mapQueryPairs(url, (pair, name) => (isSecretParameter(name) ? `${name}=${CENSOR}` : pair)).slice(start + 1);
  // Fails closed: were the relay's reader ever to split a query otherwise than above, anything it
  // would still read as a token from the result means that no part of the query is shown.
  const readable = extractToken({ query: redacted, authorization: '' });
  return `${url.slice(0, start + 1)}${readable === null || readable === CENSOR ? redacted : CENSOR}`;
}

function isSecretParameter(rawName: string): boolean {
  const name = decodeQueryPart(rawName);
  return SECRET_PARAMETERS.has(name.replace(/^\?+/, '').toLowerCase());
}

const urlSerializer = (value: unknown): unknown => (typeof value === 'string' ? redactUrl(value) : value);
const querySerializer = (value: unknown): unknown => (typeof value === 'string' ? redactUrl(`?${value}`).slice(1) : value);

/**
 * The process's logger, on stdout by default; `destination` lets tests read the parsed lines.
 * Writes are synchronous: the entry point calls process.exit right after its last lines (a
 * shutdown, a timeout, a fatal start), and pino's asynchronous stdout could lose or reorder those.
 * The relay logs per connection and per incident, never per event, so this costs nothing that matters.
 */
export function createLogger(level: string, destination: DestinationStream = pino.destination({ dest: 1, sync: true })): Logger {
  return pino(
    {
      level,
      redact: { paths: REDACTED_PATHS, censor: CENSOR },
      // Any logged url, path or query field, e.g. a refused upgrade's `/ws?access_token=...`.
      serializers: { url: urlSerializer, path: urlSerializer, query: querySerializer },
      // The last line of defence, on the written text: whatever field or message a token reached.
      hooks: { streamWrite: (line) => line.replace(JWS_LIKE, CENSOR) },
    },
    destination,
  );
}
