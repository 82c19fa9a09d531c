// A relay as an operator runs it: the built entry point (`node dist/src/main.js`) in a child
// process, on a free port, logging JSON lines on stdout that tests await instead of sleeping.
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { findFreePort } from '../../src/db/free-port.ts';
import { projectPath } from '../../src/project-root.ts';
import { spawnLogged, type Exit } from './logged-child.ts';
import { TEST_SECRET } from './relay.ts';

const MAIN = projectPath('dist', 'src', 'main.js');
/** A guard only: start-up takes well under a second here. */
const START_GUARD_MS = 30_000;

export interface RelayProcess {
  readonly child: ChildProcess;
  readonly port: number;
  /** `ws://127.0.0.1:PORT/ws` */
  readonly wsUrl: string;
  /** Resolves with how the process ended, once everything it printed is read. */
  readonly exited: Promise<Exit>;
  /** Every parsed JSON log line written so far. */
  readonly logLines: readonly Record<string, unknown>[];
  /** Everything written on stdout and stderr so far (for failure messages). */
  output(): string;
  /**
   * The first log line satisfying `accept`, now or when it is written; rejects naming `what` if
   * the process exits first or none comes within `timeoutMs`.
   */
  logLine(accept: (line: Record<string, unknown>) => boolean, what: string, timeoutMs?: number): Promise<Record<string, unknown>>;
  /** Ends the process at once, as a crash or the OOM killer would (SIGKILL). */
  kill(): Promise<void>;
}

interface Teardown {
  teardown(fn: () => unknown): void;
}

/**
 * Starts the entry point on `databaseUrl` with the test secret (tokens from `startTestRelay`'s
 * `token` are accepted) and resolves once it logs 'pg-relay is serving'.
 */
export async function startRelayProcess(t: Teardown, databaseUrl: string, env: Record<string, string> = {}): Promise<RelayProcess> {
  if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run \`npx tsc -p tsconfig.json\` first`);
  const port = await findFreePort();
  const relay = spawnLogged(t, MAIN, {
    PATH: process.env.PATH ?? '',
    DATABASE_URL: databaseUrl,
    JWT_SECRET: TEST_SECRET,
    HOST: '127.0.0.1',
    PORT: String(port),
    LOG_LEVEL: 'info',
    ...env,
  });
  const logLine = (accept: (line: Record<string, unknown>) => boolean, what: string, timeoutMs = START_GUARD_MS) =>
    relay.logLine(accept, what, timeoutMs);
  await logLine((line) => line.msg === 'pg-relay is serving', "the relay process logging 'pg-relay is serving'");
  return {
    child: relay.child,
    port,
    wsUrl: `ws://127.0.0.1:${port}/ws`,
    exited: relay.exited,
    logLines: relay.logLines,
    output: relay.output,
    logLine,
    async kill() {
      relay.child.kill('SIGKILL');
      await relay.exited;
    },
  };
}
