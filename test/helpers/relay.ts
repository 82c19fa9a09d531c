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

/** A relay in this process on its own test database, on a free port; stopped at teardown. */
export async function startTestRelay(
  t: Teardown,
  env: Record<string, string> = {},
  db?: TestDatabase,
): Promise<TestRelay> {
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
  const info = await relay.start();
  const wsUrl = `ws://127.0.0.1:${info.port}/ws`;
  const token = (claims: Record<string, unknown>): Promise<string> =>
    new SignJWT({ ...claims })
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuedAt()
      .setExpirationTime(typeof claims.exp === 'number' ? claims.exp : '1h')
      .sign(new TextEncoder().encode(TEST_SECRET));
  return {
    db: database,
    port: info.port,
    wsUrl,
    httpUrl: `http://127.0.0.1:${info.port}`,
    logLines,
    token,
    async connect(claims) {
      const client = await connectClient(`${wsUrl}?access_token=${await token(claims)}`);
      clients.push(client);
      return client;
    },
    stop: () => relay.stop(),
  };
}
