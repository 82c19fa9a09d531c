// A forked bench process with typed messages both ways: the harness sends a command and awaits the
// report of the type that answers it.
import { fork, type ChildProcess } from 'node:child_process';

/** A forked module speaking commands C and reports R (both tagged by `type`). */
export interface Child<C, R extends { type: string }> {
  readonly process: ChildProcess;
  send(command: C): void;
  /** The next report of `type`; rejects if the process exits first. */
  next<T extends R['type']>(type: T): Promise<Extract<R, { type: T }>>;
  /** Waits for the process to exit (after a close command), killing it after `graceMs`. */
  exited(graceMs?: number): Promise<void>;
}

/** Forks the compiled module at `moduleUrl`. */
export function forkChild<C, R extends { type: string }>(moduleUrl: URL, execArgv: string[] = []): Child<C, R> {
  const child = fork(moduleUrl, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv });
  const waiters = new Map<string, Array<{ resolve: (report: R) => void; reject: (error: Error) => void }>>();
  const exit = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.on('message', (report: R) => {
    const queue = waiters.get(report.type);
    const waiter = queue?.shift();
    if (waiter) waiter.resolve(report);
    else if (report.type === 'failed') process.stderr.write(`${JSON.stringify(report)}\n`);
  });
  child.once('exit', (code) => {
    for (const queue of waiters.values()) {
      for (const waiter of queue.splice(0)) waiter.reject(new Error(`${moduleUrl.pathname} exited with ${code}`));
    }
  });
  return {
    process: child,
    send: (command) => child.send(command as object),
    next: (type) =>
      new Promise((resolve, reject) => {
        const queue = waiters.get(type) ?? [];
        queue.push({ resolve: resolve as (report: R) => void, reject });
        waiters.set(type, queue);
      }),
    async exited(graceMs = 5000) {
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exit;
      clearTimeout(timer);
    },
  };
}
