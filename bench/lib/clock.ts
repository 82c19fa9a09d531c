// The one clock of a bench run: CLOCK_MONOTONIC, shared by every process of this machine, in µs.
// Writers stamp rows with it and subscribers subtract it, so latency needs no clock sync.

/** Microseconds of CLOCK_MONOTONIC. */
export function nowUs(): number {
  return Number(process.hrtime.bigint() / 1000n);
}
