import pino, { type DestinationStream, type Logger } from 'pino';

export type { Logger } from 'pino';

/** Paths that could carry a token; pino replaces them before a line is written. */
const REDACTED_PATHS = ['token', '*.token', 'authorization', '*.authorization', 'access_token', '*.access_token'];

/** The process's logger; `destination` lets tests read the parsed lines. */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino({ level, redact: { paths: REDACTED_PATHS, censor: '[redacted]' } }, destination);
}
