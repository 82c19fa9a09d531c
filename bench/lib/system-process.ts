// Starts a system under test as its own process (bench/peers/README.md) and waits for its ready
// line; its stderr goes to the bench's stderr, prefixed, so a crash is never silent.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { projectRoot } from '../../src/project-root.ts';
import { cpuProfileArgs } from './cpu-profile.ts';

const READY_TIMEOUT_MS = 120_000;

/** A running system under test. */
export interface SystemProcess {
  readonly pid: number;
  readonly port: number;
  readonly child: ChildProcess;
  /** Writes `command` as a JSON line on its stdin and resolves with the next JSON line it prints. */
  request<T>(command: unknown): Promise<T>;
  /** SIGTERM, then SIGKILL after a grace period. */
  stop(): Promise<void>;
}

/** Spawns `node <args>` with the contract's environment and resolves once it prints its ready line. */
export function startSystemProcess(name: string, args: readonly string[], env: Record<string, string>): Promise<SystemProcess> {
  const child = spawn(process.execPath, [...cpuProfileArgs(), ...args], {
    cwd: projectRoot(),
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root', HOST: '127.0.0.1', PORT: '0', ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  createInterface({ input: child.stderr! }).on('line', (line) => process.stderr.write(`[${name}] ${line}\n`));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} printed no ready line within ${READY_TIMEOUT_MS} ms`)), READY_TIMEOUT_MS);
    child.once('exit', (code) => reject(new Error(`${name} exited with ${code} before it was ready`)));
    const answers: Array<(line: unknown) => void> = [];
    let isReady = false;
    createInterface({ input: child.stdout! }).on('line', (line) => {
      let message: { ready?: boolean; port?: number };
      try {
        message = JSON.parse(line) as typeof message;
      } catch {
        return; // Not a JSON line: a system may print other things.
      }
      if (isReady) {
        answers.shift()?.(message);
        return;
      }
      if (message.ready !== true || typeof message.port !== 'number') return;
      isReady = true;
      clearTimeout(timer);
      resolve({
        pid: child.pid!,
        port: message.port,
        child,
        request: <T>(command: unknown) =>
          new Promise<T>((answer) => {
            answers.push(answer as (line: unknown) => void);
            child.stdin!.write(`${JSON.stringify(command)}\n`);
          }),
        async stop() {
          if (child.exitCode !== null) return;
          child.kill('SIGTERM');
          const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
          await exited;
          clearTimeout(timer);
        },
      });
    });
  });
}
