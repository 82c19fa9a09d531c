// `npm start` as a supervisor runs it (a container's CMD, systemd, a process manager): npm runs the
// script with `sh -c` and, sent SIGTERM or SIGINT, passes the signal on to that shell. The signal
// must reach the relay, so that it closes its clients with 1012 and stops its embedded PostgreSQL:
// with `tsc ... && node dist/src/main.js` the shell got it and died, and the relay went on running,
// orphaned, its clients never told. Here the script runs as npm runs it, with its `tsc` step
// replaced by `true` (`npm test` has compiled the project), and its shell gets the signal.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import t from 'tap';
import { findFreePort } from '../../src/db/free-port.ts';
import { projectPath } from '../../src/project-root.ts';
import { createTestDatabase } from '../helpers/database.ts';
import { nextFrame } from '../helpers/frames.ts';
import { guarded } from '../helpers/guard.ts';
import { nowSeconds, signHmacToken } from '../helpers/tokens.ts';
import { connectClient } from '../helpers/ws-client.ts';

const SECRET = 'npm-start-test-secret-that-is-at-least-32-bytes';
/** A guard only: start-up and shutdown take well under a second here. */
const GUARD_MS = 30_000;
const COMPILE_STEP = 'tsc -p tsconfig.json && ';

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

t.test("SIGTERM to npm start's shell stops the relay: its client gets 1012, the process exits 0", async (t) => {
  const scripts = (JSON.parse(readFileSync(projectPath('package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;
  const start = scripts.start ?? '';
  t.ok(start.startsWith(COMPILE_STEP), `the start script compiles first: ${start}`);
  const script = `true && ${start.slice(COMPILE_STEP.length)}`;

  const db = await createTestDatabase(t);
  const port = await findFreePort();
  const shell = spawn('sh', ['-c', script], {
    cwd: projectPath(),
    env: { PATH: process.env.PATH ?? '', DATABASE_URL: db.url, JWT_SECRET: SECRET, HOST: '127.0.0.1', PORT: String(port), LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  let relayPid: number | undefined;
  const serving = new Promise<void>((resolve) => {
    shell.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      for (const text of output.split('\n')) {
        if (!text.includes('pg-relay is serving')) continue;
        relayPid = (JSON.parse(text) as { pid: number }).pid;
        resolve();
      }
    });
  });
  shell.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const shellExit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    shell.once('exit', (code, signal) => resolve({ code, signal })),
  );
  t.teardown(() => {
    // Before the fix the relay outlives its shell: end it here, not in the next test's way.
    if (relayPid !== undefined && isRunning(relayPid)) process.kill(relayPid, 'SIGKILL');
    if (shell.exitCode === null && shell.signalCode === null) shell.kill('SIGKILL');
  });
  await guarded(serving, GUARD_MS, `the relay serving (output: ${output.slice(-2000)})`);

  const token = await signHmacToken(SECRET, { role: 'admin', sub: 'ops', exp: nowSeconds() + 600 });
  const client = await connectClient(`ws://127.0.0.1:${port}/ws?access_token=${token}`);
  client.send({ type: 'subscribe', topic: 'orders' });
  t.match(await nextFrame(client, 'subscribed'), { type: 'subscribed', topic: 'orders' });

  const clientClosed = client.closed();
  t.ok(shell.kill('SIGTERM'), "SIGTERM sent to the script's shell, as npm passes it on");
  t.equal((await guarded(clientClosed, GUARD_MS, 'the client closed by the relay')).code, 1012, 'the client is closed with 1012');
  t.strictSame(await guarded(shellExit, GUARD_MS, 'the script exiting'), { code: 0, signal: null }, 'the script exits 0: the relay was its process');
  t.notOk(relayPid !== undefined && isRunning(relayPid), 'no relay process is left running');
});
