import { SignJWT } from 'jose';
import { Writable } from 'node:stream';
import { createRelay } from '../../src/app.ts';
import { loadConfig } from '../../src/config.ts';
import { createLogger } from '../../src/logger.ts';
import { createTestDatabase, type TestDatabase } from './database.ts';
import { connectClient, type TestClient, type Frame } from './ws-client.ts';

export const TEST_SECRET = 'test-secret-that-is-at-least-32-bytes-long!';

export interface TestRelay {
  readonly db: TestDatabase;
  readonly port: number;
  /** `ws://127.0.0.1:PORT/ws` */
  readonly wsUrl: string;
  readonly httpUrl: string;
  /** Parsed log lines written so far (the relay logs at debug level into this array). */
  readonly logLines: Record<string, unknown>[];
  /** An HS256 token with these claims, valid for an hour unless the claims say otherwise. */
  token(claims: Record<string, unknown>): Promise<string>;
  /** A connected client whose token carries `claims`. */
  connect(claims: Record<string, unknown>): Promise<TestClient & { welcome: Frame }>;
  stop(): Promise<void>;
}

interface Teardown {
  teardown(fn: () => unknown): void;
}

/** A relay whose start() may still be pending (see launchTestRelay). */
export interface LaunchedRelay {
  readonly db: TestDatabase;
  /** Resolves once the server listens, before the relay serves: where /health already answers. */
  readonly listening: Promise<{ port: number; httpUrl: string; wsUrl: string }>;
  /** The relay's start(): resolves once it serves. */
  readonly serving: Promise<TestRelay>;
  readonly logLines: Record<string, unknown>[];
  token(claims: Record<string, unknown>): Promise<string>;
  stop(): Promise<void>;
}

/** A relay in this process on its own test database, on a free port; stopped at teardown. */
export async function startTestRelay(
  t: Teardown,
  env: Record<string, string> = {},
  db?: TestDatabase,
): Promise<TestRelay> {
  return (await launchTestRelay(t, env, db)).serving;
}

/**
 * Starts a relay as startTestRelay does, without waiting for it to serve: a test can reach it
 * while it starts. Stopped at teardown.
 */
export async function launchTestRelay(
  t: Teardown,
  env: Record<string, string> = {},
  db?: TestDatabase,
): Promise<LaunchedRelay> {
  const database = db ?? (await createTestDatabase(t));
  const config = loadConfig({
    DATABASE_URL: database.url,
    HOST: '127.0.0.1',
    PORT: '0',
    JWT_SECRET: TEST_SECRET,
    LOG_LEVEL: 'debug',
    ...env,
  });
  const logLines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n')) if (line) logLines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  const relay = createRelay(config, createLogger(config.logLevel, sink));
  const clients: TestClient[] = [];
  t.teardown(async () => {
    await Promise.all(clients.map((client) => client.close()));
    await relay.stop();
  });
  const token = (claims: Record<string, unknown>): Promise<string> =>
    new SignJWT({ ...claims })
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuedAt()
      .setExpirationTime(typeof claims.exp === 'number' ? claims.exp : '1h')
      .sign(new TextEncoder().encode(TEST_SECRET));
  const addresses = (port: number) => ({ port, httpUrl: `http://127.0.0.1:${port}`, wsUrl: `ws://127.0.0.1:${port}/ws` });
  let onListening!: (port: number) => void;
  const listening = new Promise<number>((resolve) => (onListening = resolve));
  const started = relay.start({ onListening });
  const serving = started.then((info): TestRelay => {
    const { port, httpUrl, wsUrl } = addresses(info.port);
    return {
      db: database,
      port,
      wsUrl,
      httpUrl,
      logLines,
      token,
      async connect(claims) {
        const client = await connectClient(`${wsUrl}?access_token=${await token(claims)}`);
        clients.push(client);
        return client;
      },
      stop: () => relay.stop(),
    };
  });
  // A start that fails before listening fails this too, rather than leave it pending.
  const listeningAt = Promise.race([listening, started.then(() => listening)]).then(addresses);
  // Each is the caller's to await: the one a test leaves alone must not fail the run as unhandled.
  for (const promise of [listeningAt, serving]) promise.catch(() => undefined);
  return {
    db: database,
    listening: listeningAt,
    serving,
    logLines,
    token,
    stop: () => relay.stop(),
  };
}
