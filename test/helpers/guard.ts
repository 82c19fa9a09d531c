/**
 * `promise`, or a rejection naming `what` once `timeoutMs` has passed: a guard so that something
 * that never happens fails with a sentence instead of tap's timeout. Never a way to wait.
 */
export function guarded<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${timeoutMs} ms`)), timeoutMs);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
