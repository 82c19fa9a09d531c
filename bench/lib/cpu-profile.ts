// BENCH_CPU_PROF=1 profiles the processes of a run (node --cpu-prof) into .relay/profiles/: every
// system under test and every load process, each profile named after its process.
import { projectRoot } from '../../src/project-root.ts';

/** The node flags that profile a process when BENCH_CPU_PROF is set; none otherwise. */
export function cpuProfileArgs(): string[] {
  return process.env.BENCH_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${projectRoot()}/.relay/profiles`] : [];
}
