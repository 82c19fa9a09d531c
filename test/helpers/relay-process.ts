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
  let output = '';
  let partial = '';
  const serving = new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      partial += chunk.toString();
      const lines = partial.split('\n');
      partial = lines.pop() ?? '';
      for (const text of lines) {
        if (!text.startsWith('{')) continue;
        const line = JSON.parse(text) as Record<string, unknown>;
        if (line.msg === 'pg-relay is serving') resolve();
      }
    });
    child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    void exited.then(({ code, signal }) => reject(new Error(`the relay process exited (${code ?? signal}) before serving:\n${output}`)));
  });
  let timer: NodeJS.Timeout | undefined;
  const guard = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`the relay process did not log 'pg-relay is serving' within ${START_GUARD_MS} ms:\n${output}`)), START_GUARD_MS);
  });
  await Promise.race([serving, guard]).finally(() => clearTimeout(timer));
  return {
    child,
    port,
    wsUrl: `ws://127.0.0.1:${port}/ws`,
    exited,
    async kill() {
      child.kill('SIGKILL');
      await exited;
    },
  };
}
