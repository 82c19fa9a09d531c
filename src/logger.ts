import pino, { type DestinationStream, type Logger } from 'pino';

export type { Logger } from 'pino';

/** Paths that could carry a token; pino replaces them before a line is written. */
const REDACTED_PATHS = ['token', '*.token', 'authorization', '*.authorization', 'access_token', '*.access_token'];

const CENSOR = '[redacted]';

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
 * so the line still says that a token was given. A parameter's name is compared decoded
 * (`access%5Ftoken` is `access_token` to URLSearchParams, as it is to the relay).
 */
export function redactUrl(url: string): string {
  const start = url.indexOf('?');
  if (start < 0) return url;
  const end = url.indexOf('#', start);
  const query = url.slice(start + 1, end < 0 ? undefined : end);
  const redacted = query
    .split('&')
    .map((pair) => {
      const equals = pair.indexOf('=');
      const name = equals < 0 ? pair : pair.slice(0, equals);
      return SECRET_PARAMETERS.has(decodedName(name).toLowerCase()) ? `${name}=${CENSOR}` : pair;
    })
    .join('&');
  return `${url.slice(0, start + 1)}${redacted}${end < 0 ? '' : url.slice(end)}`;
}

function decodedName(name: string): string {
  try {
    return decodeURIComponent(name.replace(/\+/g, ' '));
  } catch {
    // Not valid percent-encoding: URLSearchParams keeps such a name as it is, and so do we.
    return name;
  }
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
