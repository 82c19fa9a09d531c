// Settings from the environment (contract section 1). Pure: the entry point passes `process.env`
// and prints the ConfigError's message, one line, before anything binds a port.
import type { KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import {
  ASYMMETRIC_ALGORITHMS,
  HMAC_ALGORITHMS,
  HMAC_MIN_SECRET_BYTES,
  SUPPORTED_ALGORITHMS,
  hmacAlgorithmsForSecret,
  isSupportedAlgorithm,
  type HmacAlgorithm,
  type JwsAlgorithm,
} from './auth/algorithms.ts';
import { parsePublicKey } from './auth/public-key.ts';
import { ConfigError, shown } from './config-error.ts';
import { parseLimits, type Limits } from './config-limits.ts';
import { redactQueryValues } from './redact-url.ts';

export { ConfigError } from './config-error.ts';
export { DEFAULT_LIMITS, type Limits } from './config-limits.ts';

/** pino's level names, from loudest-only to silent. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** A pino level name. */
export type LogLevel = (typeof LOG_LEVELS)[number];

/** HMAC verification with JWT_SECRET. `secret` is sensitive: never log the auth config. */
export interface SecretAuthConfig {
  readonly kind: 'secret';
  readonly secret: string;
  readonly algorithms: readonly HmacAlgorithm[];
}

/** Verification with the public key of JWT_PUBLIC_KEY. */
export interface PublicKeyAuthConfig {
  readonly kind: 'public-key';
  readonly key: KeyObject;
  readonly algorithms: readonly JwsAlgorithm[];
}

/** Verification with the keys published at JWT_JWKS_URL. */
export interface JwksAuthConfig {
  readonly kind: 'jwks';
  readonly url: string;
  /** Least time between two fetches of the set (an unknown `kid` triggers one). */
  readonly refetchCooldownMs: number;
  readonly algorithms: readonly JwsAlgorithm[];
}

/** How tokens are verified: a real key source, or dev mode (the composition root makes a secret). */
export type AuthConfig = { readonly kind: 'dev' } | SecretAuthConfig | PublicKeyAuthConfig | JwksAuthConfig;

/** An auth config with a key: what a token verifier needs. */
export type KeyedAuthConfig = Exclude<AuthConfig, { readonly kind: 'dev' }>;

/** What a verified token's claims must hold. */
export interface TokenClaimsConfig {
  /** Required `iss`, when set. */
  readonly issuer?: string;
  /** Accepted `aud` values (any one suffices), when set. */
  readonly audience?: readonly string[];
  /** Dotted path of the role claim, e.g. `role` or `app.role`. */
  readonly roleClaim: string;
}

/** Every setting of the relay, validated. */
export interface Config {
  /** PostgreSQL to serve; null means start the embedded one. */
  readonly databaseUrl: string | null;
  readonly host: string;
  /** 0 means any free port. */
  readonly port: number;
  readonly auth: AuthConfig;
  readonly token: TokenClaimsConfig;
  /** How long events stay replayable with `since`. */
  readonly retentionMs: number;
  /** How long a graceful shutdown may take before the process exits 1 anyway (RELAY_SHUTDOWN_TIMEOUT). */
  readonly shutdownTimeoutMs: number;
  readonly logLevel: LogLevel;
  /** Whether the example application's migrations are applied (RELAY_EXAMPLE). */
  readonly includeExample: boolean;
  /** What one connection, and the process, may take (the RELAY_MAX_* settings). */
  readonly limits: Limits;
}

/** Reads a file as UTF-8 text; injected so that loadConfig stays testable without a disk. */
export type ReadTextFile = (path: string) => string;

type Env = Readonly<Record<string, string | undefined>>;

const KEY_SOURCES = ['JWT_SECRET', 'JWT_PUBLIC_KEY', 'JWT_JWKS_URL'] as const;
const DEFAULT_RETENTION = '24h';
const DEFAULT_JWKS_COOLDOWN = '30s';
const DEFAULT_SHUTDOWN_TIMEOUT = '10s';
const MS_PER_UNIT = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/**
 * Validates the relay's settings from `env`, throwing a ConfigError on the first bad value, in the
 * order of the contract's table. An empty value counts as unset, except for the three key sources.
 */
export function loadConfig(env: Env, readFile: ReadTextFile = (path) => readFileSync(path, 'utf8')): Config {
  const databaseUrl = parseDatabaseUrl(setting(env, 'DATABASE_URL'));
  const host = parseHost(setting(env, 'HOST') ?? '127.0.0.1');
  const port = parsePort(setting(env, 'PORT') ?? '8080');
  const auth = parseAuth(env, readFile);
  // Checked even when no JWKS uses it: every setting is checked at start-up (contract section 1),
  // so a typo does not lie in wait for the day a JWKS URL is set.
  if (auth.kind !== 'jwks') parseJwksCooldown(env);
  const issuer = parseIssuer(setting(env, 'JWT_ISSUER'));
  const audience = parseList(env, 'JWT_AUDIENCE');
  const roleClaim = parseClaimPath(setting(env, 'JWT_ROLE_CLAIM') ?? 'role');
  return {
    databaseUrl,
    host,
    port,
    auth,
    token: { ...(issuer !== undefined && { issuer }), ...(audience !== undefined && { audience }), roleClaim },
    retentionMs: parseDuration(
      'RELAY_RETENTION',
      setting(env, 'RELAY_RETENTION') ?? DEFAULT_RETENTION,
      // Pruning subtracts it from now() in PostgreSQL: 100000000d was accepted, then every prune
      // failed with "timestamp out of range" and the log grew for ever.
      MAX_RETENTION,
    ),
    shutdownTimeoutMs: parseDuration(
      'RELAY_SHUTDOWN_TIMEOUT',
      setting(env, 'RELAY_SHUTDOWN_TIMEOUT') ?? DEFAULT_SHUTDOWN_TIMEOUT,
      // It is awaited with setTimeout, which fires at once for anything longer.
      { ms: MAX_TIMER_MS, text: 'about 24.8 days' },
    ),
    logLevel: parseLogLevel(setting(env, 'LOG_LEVEL') ?? 'info'),
    includeExample: parseBoolean('RELAY_EXAMPLE', setting(env, 'RELAY_EXAMPLE') ?? 'true'),
    limits: parseLimits(env),
  };
}

// Container tooling often passes `VAR=` for "not set"; treat it so.
function setting(env: Env, name: string): string | undefined {
  const value = env[name];
  return value === undefined || value === '' ? undefined : value;
}

function parseDatabaseUrl(raw: string | undefined): string | null {
  if (raw === undefined) return null;
  const problem = 'must be a postgres:// or postgresql:// URL';
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    // Neither the value nor the parser's error (which holds the input) is shown: it may hold a password.
    throw new ConfigError('DATABASE_URL', `${problem} (value not shown: it may hold a password)`);
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
    throw new ConfigError('DATABASE_URL', `${problem}, got a ${url.protocol}// URL`);
  }
  return raw;
}

const HOSTNAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*$/;

function parseHost(raw: string): string {
  if (isIP(raw) !== 0 || HOSTNAME.test(raw)) return raw;
  throw new ConfigError('HOST', `must be an IP address or a host name, got ${shown(raw)}`);
}

function parsePort(raw: string): number {
  const port = /^\d{1,5}$/.test(raw) ? Number(raw) : NaN;
  if (port >= 0 && port <= 65535) return port;
  throw new ConfigError('PORT', `must be an integer from 0 to 65535, got ${shown(raw)}`);
}

function parseAuth(env: Env, readFile: ReadTextFile): AuthConfig {
  const present = KEY_SOURCES.filter((name) => env[name] !== undefined);
  const [first, second] = present;
  if (second !== undefined) {
    throw new ConfigError(second, `${first} is also set; set only one of ${KEY_SOURCES.join(', ')}`);
  }
  if (first !== undefined && env[first] === '') {
    // An empty key source silently falling back to dev mode would hand out a printed admin token.
    throw new ConfigError(first, 'is set but empty; unset it for dev mode');
  }
  const requested = setting(env, 'JWT_ALGORITHMS');
  if (first === undefined) {
    if (requested !== undefined) {
      throw new ConfigError('JWT_ALGORITHMS', `needs one of ${KEY_SOURCES.join(', ')}; dev mode uses HS256`);
    }
    return { kind: 'dev' };
  }
  switch (first) {
    case 'JWT_SECRET':
      return parseSecretAuth(env.JWT_SECRET ?? '', requested);
    case 'JWT_PUBLIC_KEY':
      return parsePublicKeyAuth(env.JWT_PUBLIC_KEY ?? '', requested, readFile);
    case 'JWT_JWKS_URL':
      return {
        kind: 'jwks',
        url: parseJwksUrl(env.JWT_JWKS_URL ?? ''),
        refetchCooldownMs: parseJwksCooldown(env),
        algorithms: chooseAlgorithms(requested, ASYMMETRIC_ALGORITHMS, 'keys from a JWKS (asymmetric only)'),
      };
  }
}

function parseJwksCooldown(env: Env): number {
  return parseDuration('JWT_JWKS_COOLDOWN', setting(env, 'JWT_JWKS_COOLDOWN') ?? DEFAULT_JWKS_COOLDOWN);
}

function parseSecretAuth(secret: string, requested: string | undefined): SecretAuthConfig {
  const bytes = Buffer.byteLength(secret, 'utf8');
  if (bytes < HMAC_MIN_SECRET_BYTES.HS256) {
    // The secret itself is never shown, only its length.
    throw new ConfigError('JWT_SECRET', `must be at least 32 bytes (HS256 needs 256 bits), got ${bytes}`);
  }
  const usable = hmacAlgorithmsForSecret(bytes);
  const lengths = HMAC_ALGORITHMS.map((alg) => `${alg} needs ${HMAC_MIN_SECRET_BYTES[alg]}`).join(', ');
  const algorithms = chooseAlgorithms(requested, usable, `a JWT_SECRET of ${bytes} bytes (${lengths})`);
  return { kind: 'secret', secret, algorithms: algorithms as readonly HmacAlgorithm[] };
}

function parsePublicKeyAuth(raw: string, requested: string | undefined, readFile: ReadTextFile): PublicKeyAuthConfig {
  const isPem = raw.trimStart().startsWith('-----BEGIN');
  let pem = raw;
  if (!isPem) {
    try {
      pem = readFile(raw);
    } catch (cause) {
      const reason = (cause as NodeJS.ErrnoException).code ?? (cause as Error).message;
      throw new ConfigError('JWT_PUBLIC_KEY', `is not PEM text and the file ${shown(raw)} cannot be read (${reason})`, {
        cause,
      });
    }
  }
  const parsed = parsePublicKey(pem);
  if (!parsed.ok) {
    throw new ConfigError('JWT_PUBLIC_KEY', isPem ? parsed.problem : `file ${shown(raw)} ${parsed.problem}`);
  }
  const kind = `this ${parsed.key.asymmetricKeyType} public key`;
  return { kind: 'public-key', key: parsed.key, algorithms: chooseAlgorithms(requested, parsed.algorithms, kind) };
}

function parseJwksUrl(raw: string): string {
  let url: URL | undefined;
  try {
    url = new URL(raw);
  } catch {
    // Reported below.
  }
  if (url?.protocol !== 'http:' && url?.protocol !== 'https:') {
    // A JWKS address is public, but one written with `user:password@` is not: without an `@` a
    // value can hold no password, so only such a value is shown, and its query values are blanked
    // (some identity providers take an API key there).
    const value = raw.includes('@') ? 'a value not shown (it may hold a password)' : shown(redactQueryValues(raw));
    throw new ConfigError('JWT_JWKS_URL', `must be an http:// or https:// URL, got ${value}`);
  }
  if (url.username !== '' || url.password !== '') {
    // Node's fetch refuses to build a request from such a URL: the relay would start, then answer
    // every token with 401. The value is not shown: it holds the password.
    throw new ConfigError('JWT_JWKS_URL', 'must not hold a user name or password (fetch refuses such a URL); value not shown');
  }
  return raw;
}

// JWT_ALGORITHMS narrows the algorithms that fit the key; without it, all of them are accepted.
function chooseAlgorithms(
  requested: string | undefined,
  usable: readonly JwsAlgorithm[],
  keyDescription: string,
): readonly JwsAlgorithm[] {
  if (requested === undefined) return usable;
  const chosen: JwsAlgorithm[] = [];
  for (const name of splitList('JWT_ALGORITHMS', requested)) {
    if (!isSupportedAlgorithm(name)) {
      throw new ConfigError('JWT_ALGORITHMS', `${shown(name)} is not a supported algorithm (${SUPPORTED_ALGORITHMS.join(', ')})`);
    }
    if (!usable.includes(name)) {
      throw new ConfigError('JWT_ALGORITHMS', `${name} does not fit ${keyDescription}; usable: ${usable.join(', ')}`);
    }
    if (!chosen.includes(name)) chosen.push(name);
  }
  return chosen;
}

function parseList(env: Env, name: string): readonly string[] | undefined {
  const raw = setting(env, name);
  return raw === undefined ? undefined : splitList(name, raw);
}

function splitList(name: string, raw: string): string[] {
  const items = raw.split(',').map((item) => item.trim());
  if (items.some((item) => item === '')) {
    throw new ConfigError(name, `must be a comma-separated list without empty items, got ${shown(raw)}`);
  }
  return items;
}

/** A token's `iss` never has spaces around it: a value that has them was pasted with them, and would refuse every token. */
function parseIssuer(raw: string | undefined): string | undefined {
  if (raw === undefined || raw.trim() === raw) return raw;
  throw new ConfigError('JWT_ISSUER', `must not begin or end with whitespace, got ${shown(raw)}`);
}

function parseClaimPath(raw: string): string {
  if (raw.split('.').every((segment) => segment !== '' && segment.trim() === segment)) return raw;
  throw new ConfigError('JWT_ROLE_CLAIM', `must be a dotted claim path like "role" or "app.role", got ${shown(raw)}`);
}

/** The longest delay setTimeout can wait (longer ones fire at once). */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** A longest accepted duration, and how the error line says it. */
interface DurationMax {
  readonly ms: number;
  readonly text: string;
}

/**
 * Ten years: far beyond what a replay log is for, far within PostgreSQL's timestamps (now() minus
 * it must stay a valid timestamptz) and JavaScript's safe integers.
 */
const MAX_RETENTION: DurationMax = { ms: 3650 * MS_PER_UNIT.d, text: '3650d' };

function parseDuration(name: string, raw: string, max?: DurationMax): number {
  const match = /^(\d+)([smhd])$/.exec(raw);
  if (!match) throw new ConfigError(name, `must be a duration like 90s, 30m, 24h or 7d, got ${shown(raw)}`);
  const ms = Number(match[1]) * MS_PER_UNIT[match[2] as keyof typeof MS_PER_UNIT];
  if (ms <= 0) throw new ConfigError(name, `must be longer than 0, got ${shown(raw)}`);
  if (!Number.isSafeInteger(ms) || ms > (max?.ms ?? Number.MAX_SAFE_INTEGER)) {
    throw new ConfigError(name, `is too long${max ? ` (at most ${max.text})` : ''}, got ${shown(raw)}`);
  }
  return ms;
}

function parseLogLevel(raw: string): LogLevel {
  if ((LOG_LEVELS as readonly string[]).includes(raw)) return raw as LogLevel;
  throw new ConfigError('LOG_LEVEL', `must be one of ${LOG_LEVELS.join(', ')}, got ${shown(raw)}`);
}

function parseBoolean(name: string, raw: string): boolean {
  if (raw === 'true' || raw === 'false') return raw === 'true';
  throw new ConfigError(name, `must be true or false, got ${shown(raw)}`);
}
