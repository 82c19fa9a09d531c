// A relay as an operator runs it: the built entry point (`node dist/src/main.js`) in a child
// process, on a free port, logging JSON lines on stdout that tests await instead of sleeping.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { findFreePort } from '../../src/db/free-port.ts';
import { projectPath } from '../../src/project-root.ts';
import { TEST_SECRET } from './relay.ts';

const MAIN = projectPath('dist', 'src', 'main.js');
/** A guard only: start-up takes well under a second here. */
const START_GUARD_MS = 30_000;

export interface RelayProcess {
  readonly child: ChildProcess;
  readonly port: number;
  /** `ws://127.0.0.1:PORT/ws` */
  readonly wsUrl: string;
  /** Resolves with how the process ended. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
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
  const child = spawn(process.execPath, [MAIN], {
    env: { PATH: process.env.PATH ?? '', DATABASE_URL: databaseUrl, JWT_SECRET: TEST_SECRET, HOST: '127.0.0.1', PORT: String(port), LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
  });
  const closed = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('close', (code, signal) => resolve({ code, signal })),
  );
  let output = '';
  let partial = '';
  const logLines: Record<string, unknown>[] = [];
  const lineWaiters = new Set<{ accept: (line: Record<string, unknown>) => boolean; resolve: (line: Record<string, unknown>) => void }>();
  child.stdout!.on('data', (chunk: Buffer) => {
    output += chunk.toString();
    partial += chunk.toString();
    const lines = partial.split('\n');
    partial = lines.pop() ?? '';
    for (const text of lines) {
      if (!text.startsWith('{')) continue;
      const line = JSON.parse(text) as Record<string, unknown>;
      logLines.push(line);
      for (const waiter of [...lineWaiters]) {
        if (!waiter.accept(line)) continue;
        lineWaiters.delete(waiter);
        waiter.resolve(line);
      }
    }
  });
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const logLine = (accept: (line: Record<string, unknown>) => boolean, what: string, timeoutMs = START_GUARD_MS) => {
    const found = logLines.find(accept);
    if (found) return Promise.resolve(found);
    let timer: NodeJS.Timeout | undefined;
    return new Promise<Record<string, unknown>>((resolve, reject) => {
      const waiter = { accept, resolve };
      lineWaiters.add(waiter);
      timer = setTimeout(() => reject(new Error(`${what}: not logged within ${timeoutMs} ms:\n${output.slice(-4000)}`)), timeoutMs);
      // 'close', not 'exit': stdout may still hold the last lines when the process has exited.
      void closed.then(({ code, signal }) => {
        lineWaiters.delete(waiter);
        reject(new Error(`${what}: the relay process exited (${code ?? signal}) first:\n${output.slice(-4000)}`));
      });
    }).finally(() => clearTimeout(timer));
  };
  await logLine((line) => line.msg === 'pg-relay is serving', "the relay process logging 'pg-relay is serving'");
  return {
    child,
    port,
    wsUrl: `ws://127.0.0.1:${port}/ws`,
    exited,
    logLines,
    output: () => output,
    logLine,
    async kill() {
      child.kill('SIGKILL');
      await exited;
    },
  };
}
