// The limits that keep one client (or many) from taking more than its share: environment settings
// with defaults, each checked against a range so that a typo cannot switch a protection off.
import { ConfigError, shown } from './config-error.ts';

/** Per-connection and per-process limits, validated. */
export interface Limits {
  /** Largest client frame; bigger ones close the connection with 1009. */
  readonly maxFrameBytes: number;
  /** Unsent bytes a connection may hold before it is closed with 4008. */
  readonly maxBackpressureBytes: number;
  /** Client messages per second per connection (also the burst allowed at once). */
  readonly maxMessagesPerSecond: number;
  /** Subscriptions one connection may hold at once. */
  readonly maxSubscriptions: number;
  /** Open connections per relay process; upgrades beyond it get HTTP 503. */
  readonly maxConnections: number;
  /** Open connections per token subject (`sub`) in one relay process, or null for no limit; beyond it, HTTP 429. */
  readonly maxConnectionsPerSubject: number | null;
  /** Nesting of a client's filter (`and`/`or`/`not` levels; the root is level 1). */
  readonly maxFilterDepth: number;
  /** Nodes (conditions and combinators) of a client's filter. */
  readonly maxFilterNodes: number;
  /** Browser origins allowed to open a WebSocket (`https://app.example`); null allows every origin. */
  readonly allowedOrigins: readonly string[] | null;
}

/** The defaults of {@link Limits}, as the README's settings table states them. */
export const DEFAULT_LIMITS = {
  maxFrameBytes: 64 * 1024,
  maxBackpressureBytes: 4 * 1024 * 1024,
  maxMessagesPerSecond: 100,
  maxSubscriptions: 100,
  maxConnections: 50_000,
  maxConnectionsPerSubject: null,
  maxFilterDepth: 16,
  maxFilterNodes: 256,
  allowedOrigins: null,
} as const satisfies Limits;

type Env = Readonly<Record<string, string | undefined>>;

const KIB = 1024;
const MIB = 1024 * 1024;
const BYTE_UNITS = { '': 1, KiB: KIB, MiB: MIB } as const;

/** Reads the limit settings of `env` (empty values count as unset), throwing a ConfigError. */
export function parseLimits(env: Env): Limits {
  const read = (name: string): string | undefined => (env[name] === '' ? undefined : env[name]);
  const bytes = (name: string, fallback: number, min: number, max: number): number => {
    const raw = read(name);
    return raw === undefined ? fallback : parseBytes(name, raw, min, max);
  };
  const integer = (name: string, fallback: number, min: number, max: number): number => {
    const raw = read(name);
    return raw === undefined ? fallback : parseInteger(name, raw, min, max);
  };
  /** A limit that is off (null) unless set. */
  const optionalInteger = (name: string, min: number, max: number): number | null => {
    const raw = read(name);
    return raw === undefined ? null : parseInteger(name, raw, min, max);
  };
  const maxBackpressureBytes = bytes('RELAY_MAX_BACKPRESSURE', DEFAULT_LIMITS.maxBackpressureBytes, 64 * KIB, 1024 * MIB);
  // A frame must fit in what a connection may buffer: uWS reads frames up to that size (see ws/server.ts).
  const maxFrameBytes = bytes('RELAY_MAX_FRAME_SIZE', DEFAULT_LIMITS.maxFrameBytes, 1 * KIB, maxBackpressureBytes);
  return {
    maxFrameBytes,
    maxBackpressureBytes,
    maxMessagesPerSecond: integer('RELAY_MAX_MESSAGES_PER_SECOND', DEFAULT_LIMITS.maxMessagesPerSecond, 1, 1_000_000),
    maxSubscriptions: integer('RELAY_MAX_SUBSCRIPTIONS', DEFAULT_LIMITS.maxSubscriptions, 1, 100_000),
    maxConnections: integer('RELAY_MAX_CONNECTIONS', DEFAULT_LIMITS.maxConnections, 1, 10_000_000),
    // Unset by default: a service may share one `sub` over many connections.
    maxConnectionsPerSubject: optionalInteger('RELAY_MAX_CONNECTIONS_PER_SUBJECT', 1, 10_000_000),
    // 64 levels bound the parser's recursion; relay.allow enforces 16 for grants.
    maxFilterDepth: integer('RELAY_MAX_FILTER_DEPTH', DEFAULT_LIMITS.maxFilterDepth, 1, 64),
    maxFilterNodes: integer('RELAY_MAX_FILTER_NODES', DEFAULT_LIMITS.maxFilterNodes, 1, 100_000),
    allowedOrigins: parseOrigins(read('RELAY_ALLOWED_ORIGINS')),
  };
}

function parseInteger(name: string, raw: string, min: number, max: number): number {
  const value = /^\d{1,10}$/.test(raw) ? Number(raw) : NaN;
  if (value >= min && value <= max) return value;
  throw new ConfigError(name, `must be an integer from ${min} to ${max}, got ${shown(raw)}`);
}

function parseBytes(name: string, raw: string, min: number, max: number): number {
  const match = /^(\d{1,10})(KiB|MiB)?$/.exec(raw);
  const value = match ? Number(match[1]) * BYTE_UNITS[(match[2] ?? '') as keyof typeof BYTE_UNITS] : NaN;
  if (value >= min && value <= max) return value;
  throw new ConfigError(name, `must be a size from ${describeBytes(min)} to ${describeBytes(max)} (bytes, or with KiB or MiB), got ${shown(raw)}`);
}

function describeBytes(bytes: number): string {
  if (bytes % MIB === 0) return `${bytes / MIB}MiB`;
  if (bytes % KIB === 0) return `${bytes / KIB}KiB`;
  return String(bytes);
}

/**
 * `https://app.example,http://localhost:3000` -> the same origins as browsers send them in the
 * Origin header (scheme, host and port only, lower case, no default port).
 */
function parseOrigins(raw: string | undefined): readonly string[] | null {
  if (raw === undefined) return null;
  const origins: string[] = [];
  for (const item of raw.split(',').map((part) => part.trim())) {
    const origin = normalizeOrigin(item);
    if (origin === null) {
      throw new ConfigError('RELAY_ALLOWED_ORIGINS', `must be a comma list of origins like https://app.example, got ${shown(item)}`);
    }
    if (!origins.includes(origin)) origins.push(origin);
  }
  return origins;
}

/** The serialized origin of `text` when it is exactly an http(s) origin (no path, query or user), else null. */
export function normalizeOrigin(text: string): string | null {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return null;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return null;
  // `https://app.example/` is how some write an origin; anything more than that slash is not one.
  if (url.username || url.password || url.search || url.hash || url.pathname !== '/') return null;
  return url.origin;
}
