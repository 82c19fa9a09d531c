// The embedded PostgreSQL's stop, when its server is no longer there: killed, crashed or shut down
// by hand while the relay ran. The relay's shutdown waits for this stop.
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { startEmbeddedPostgres } from '../../src/db/embedded.ts';
import { projectPath } from '../../src/project-root.ts';
import { guarded } from '../helpers/guard.ts';

/** A guard only: a stop takes milliseconds. */
const STOP_GUARD_MS = 15_000;

t.test('stopping an embedded PostgreSQL whose server has already exited returns at once', async (t) => {
  await mkdir(projectPath('.relay'), { recursive: true });
  const dir = await mkdtemp(join(projectPath('.relay'), 'embedded-stop-test-'));
  const cluster = await startEmbeddedPostgres({ dir, temporary: true });
  t.teardown(() => cluster.stop());
  const postmaster = Number(readFileSync(join(dir, 'pgdata', 'postmaster.pid'), 'utf8').split('\n')[0]);
  // What an operator's `kill -INT` does: a fast shutdown, the server's own.
  process.kill(postmaster, 'SIGINT');
  await untilGone(postmaster);
  await guarded(cluster.stop(), STOP_GUARD_MS, 'the stop of a cluster whose server had exited');
  t.pass('stopped');
});

/** Resolves once no process has the id `pid` (it is not this process's child: no exit event to await). */
async function untilGone(pid: number): Promise<void> {
  for (;;) {
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
