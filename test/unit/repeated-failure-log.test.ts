// A failure retried every half second while PostgreSQL is down is logged once, then now and then
// with a tally, and once more when it works again: not a line per retry.
import { Writable } from 'node:stream';
import t from 'tap';
import { createLogger, type Logger } from '../../src/logger.ts';
import { createRepeatedFailureLog } from '../../src/repeated-failure-log.ts';

interface Line {
  readonly level: number;
  readonly msg: string;
  readonly err?: { message: string };
  readonly failuresSinceLogged?: number;
  readonly failingForSeconds?: number;
  readonly failures?: number;
}

function capturingLogger(): { logger: Logger; lines: Line[] } {
  const lines: Line[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line) as Line);
      done();
    },
  });
  return { logger: createLogger('info', sink), lines };
}

t.test('a run of failures: the first logged at once, then one line per interval with what it missed', async (t) => {
  const { logger, lines } = capturingLogger();
  let now = 0;
  const failures = createRepeatedFailureLog({ logger, level: 'error', message: 'cannot do it', recoveredMessage: 'doing it again', everyMs: 30_000, nowMs: () => now });
  failures.failed(new Error('first'));
  t.equal(lines.length, 1, 'the first failure is logged');
  t.match(lines[0], { level: 50, msg: 'cannot do it', err: { message: 'first' } });
  for (now = 500; now < 30_000; now += 500) failures.failed(new Error('again'));
  t.equal(lines.length, 1, 'retries within the interval are counted, not logged');
  failures.failed(new Error('still'));
  t.equal(lines.length, 2, 'one line once the interval has passed');
  t.match(lines[1], { level: 50, msg: 'cannot do it (still failing)', err: { message: 'still' }, failuresSinceLogged: 60, failingForSeconds: 30 });
  now += 500;
  failures.failed(new Error('again'));
  t.equal(lines.length, 2, 'the interval starts again from that line');
  now = 45_000;
  failures.succeeded();
  t.equal(lines.length, 3, 'working again is logged');
  t.match(lines[2], { level: 30, msg: 'doing it again', failures: 62, failingForSeconds: 45 });
  failures.succeeded();
  t.equal(lines.length, 3, 'a success after a success says nothing');
});

t.test('a failure after a recovery starts a new run, logged at once', async (t) => {
  const { logger, lines } = capturingLogger();
  let now = 0;
  const failures = createRepeatedFailureLog({ logger, level: 'warn', message: 'cannot read', recoveredMessage: 'reading again', nowMs: () => now });
  failures.failed(new Error('down'));
  now = 1_000;
  failures.succeeded();
  now = 1_500;
  failures.failed(new Error('down again'));
  t.same(
    lines.map((line) => [line.level, line.msg]),
    [
      [40, 'cannot read'],
      [30, 'reading again'],
      [40, 'cannot read'],
    ],
  );
});
