// CPU time, waits for a core and resident memory of processes, read from /proc (Linux), so that
// each party of a run (system under test, PostgreSQL, load) is charged its own share of the two
// cores, and a result can tell how saturated they were.
import { readdirSync, readFileSync } from 'node:fs';

const TICKS_PER_SECOND = 100;

/** User + system CPU seconds `pid` has used so far; 0 once it is gone. */
export function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name, which may hold spaces and parentheses: split after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
  } catch {
    return 0; // The process has exited: it uses no more CPU.
  }
}

/** Resident set size of `pid` in bytes; 0 once it is gone. */
export function rssBytes(pid: number): number {
  try {
    const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) * 1024 : 0;
  } catch {
    return 0; // The process has exited.
  }
}

/**
 * Seconds the threads of `pid` have spent ready to run but waiting for a core (the kernel's
 * schedstat run delay, summed over threads); 0 once it is gone. Per second of a step, it tells
 * how saturated the cores were for that party: latency that no code of the system can remove.
 */
export function runQueueWaitSeconds(pid: number): number {
  let waitNs = 0;
  try {
    for (const task of readdirSync(`/proc/${pid}/task`)) {
      try {
        waitNs += Number(readFileSync(`/proc/${pid}/task/${task}/schedstat`, 'utf8').split(' ')[1]);
      } catch {
        // The thread ended between the listing and the read.
      }
    }
  } catch {
    return 0; // The process has exited.
  }
  return waitNs / 1e9;
}

/** CPU and run-queue wait seconds of some processes at one moment, each process apart. */
export interface UsageSnapshot {
  readonly pids: readonly number[];
  readonly cpu: readonly number[];
  readonly waited: readonly number[];
}

export function usageOf(pids: readonly number[]): UsageSnapshot {
  return { pids, cpu: pids.map(cpuSeconds), waited: pids.map(runQueueWaitSeconds) };
}

/**
 * What the processes of `earlier` used since: summed, and the CPU of each (in the snapshot's
 * order). A process that has exited meanwhile reads 0 and adds nothing (its last part is lost),
 * rather than taking its earlier use off the others'.
 */
export function usageSince(earlier: UsageSnapshot): { cpu: number; waited: number; cpuByProcess: number[] } {
  const grown = (now: number, before: number): number => Math.max(0, now - before);
  const cpuByProcess = earlier.pids.map((pid, index) => grown(cpuSeconds(pid), earlier.cpu[index]!));
  const waited = earlier.pids.reduce((sum, pid, index) => sum + grown(runQueueWaitSeconds(pid), earlier.waited[index]!), 0);
  return { cpu: cpuByProcess.reduce((sum, cpu) => sum + cpu, 0), waited, cpuByProcess };
}
