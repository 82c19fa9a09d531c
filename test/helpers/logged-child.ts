// A child process that logs JSON lines (pino) on stdout: what it printed, and each log line as it
// comes, for tests that await a line instead of sleeping. Shared by the relay run as an operator
// runs it (relay-process.ts) and the entry point's own tests (process.test.ts).
import { spawn, type ChildProcess } from 'node:child_process';

export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface LoggedChild {
  readonly child: ChildProcess;
  /**
   * How the process ended, once everything it printed has been read: Node's 'exit' can come while
   * stdout and stderr still hold its last lines, and a test reading them then would miss them.
   */
  readonly exited: Promise<Exit>;
  /** Every JSON log line written on stdout so far. */
  readonly logLines: readonly Record<string, unknown>[];
  stdout(): string;
  stderr(): string;
  /** Both, in the order they arrived (for failure messages). */
  output(): string;
  /**
   * The first log line satisfying `accept`, now or when it is written; rejects naming `what` if
   * the process ends first or none comes within `timeoutMs`.
   */
  logLine(accept: (line: Record<string, unknown>) => boolean, what: string, timeoutMs: number): Promise<Record<string, unknown>>;
}

interface Teardown {
  teardown(fn: () => unknown): void;
}

/** Runs `node main` with exactly `env` (the test runner's own environment is not passed on); killed at teardown if still running. */
export function spawnLogged(t: Teardown, main: string, env: Record<string, string>): LoggedChild {
  const child = spawn(process.execPath, [main], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  // 'close' comes after 'exit' once stdout and stderr have ended: nothing printed is missed.
  const exited = new Promise<Exit>((resolve) => child.once('close', (code, signal) => resolve({ code, signal })));
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
  });
  let stdout = '';
  let stderr = '';
  let output = '';
  let partial = '';
  const logLines: Record<string, unknown>[] = [];
  const lineWaiters = new Set<{ accept: (line: Record<string, unknown>) => boolean; resolve: (line: Record<string, unknown>) => void }>();
  child.stdout!.on('data', (chunk: Buffer) => {
    const text = chunk.toString();
    stdout += text;
    output += text;
    partial += text;
    const complete = partial.split('\n');
    partial = complete.pop() ?? '';
    for (const lineText of complete) {
      const line = logLineOf(lineText);
      if (line === undefined) continue;
      logLines.push(line);
      for (const waiter of [...lineWaiters]) {
        if (!waiter.accept(line)) continue;
        lineWaiters.delete(waiter);
        waiter.resolve(line);
      }
    }
  });
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
    output += chunk.toString();
  });
  return {
    child,
    exited,
    logLines,
    stdout: () => stdout,
    stderr: () => stderr,
    output: () => output,
    logLine(accept, what, timeoutMs) {
      const found = logLines.find(accept);
      if (found) return Promise.resolve(found);
      let timer: NodeJS.Timeout | undefined;
      return new Promise<Record<string, unknown>>((resolve, reject) => {
        const waiter = { accept, resolve };
        lineWaiters.add(waiter);
        timer = setTimeout(() => reject(new Error(`${what}: not logged within ${timeoutMs} ms:\n${output.slice(-4000)}`)), timeoutMs);
        void exited.then(({ code, signal }) => {
          lineWaiters.delete(waiter);
          reject(new Error(`${what}: the process exited (${code ?? signal}) first:\n${output.slice(-4000)}`));
        });
      }).finally(() => clearTimeout(timer));
    },
  };
}

/** A JSON object line as pino writes it; anything else (a banner, a fatal line on stderr) is none. */
function logLineOf(text: string): Record<string, unknown> | undefined {
  if (!text.startsWith('{')) return undefined;
  try {
    return JSON.parse(text) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}
