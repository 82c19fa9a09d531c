import t from 'tap';
import { createCoalescedTask } from '../../src/coalesced-task.ts';

/** A task whose runs the test starts and ends: each start is recorded and awaited. */
function controlledTask() {
  const starts: number[] = [];
  const finishers: Array<(error?: Error) => void> = [];
  let nextStart: (() => void) | undefined;
  const task = (): Promise<void> => {
    starts.push(performance.now());
    nextStart?.();
    return new Promise<void>((resolve, reject) => finishers.push((error) => (error ? reject(error) : resolve())));
  };
  return {
    task,
    starts,
    /** Ends run `index` (from 0), failing it with `error` when given. */
    finish: (index: number, error?: Error) => finishers[index]!(error),
    /** Resolves when the next run starts. */
    started: () => new Promise<void>((resolve) => (nextStart = resolve)),
  };
}

t.test('requests during a run are answered by one more run, after it', async (t) => {
  const runs = controlledTask();
  const coalesced = createCoalescedTask(runs.task, { spacingMs: 0, onError: (error) => t.fail(String(error)) });
  coalesced.request();
  t.equal(runs.starts.length, 1, 'the first request runs at once');
  for (let i = 0; i < 100; i++) coalesced.request();
  t.equal(runs.starts.length, 1, 'no second run while the first is under way');
  const second = runs.started();
  runs.finish(0);
  await second;
  t.equal(runs.starts.length, 2);
  runs.finish(1);
  await new Promise((resolve) => setImmediate(resolve));
  t.equal(runs.starts.length, 2, 'nothing asked since: no third run');
});

t.test('a flood of requests starts a run at most once per spacing', async (t) => {
  const runs = controlledTask();
  const spacingMs = 30;
  const coalesced = createCoalescedTask(runs.task, { spacingMs, onError: (error) => t.fail(String(error)) });
  for (let run = 0; run < 4; run++) {
    const next = runs.started();
    coalesced.request();
    await next;
    // Asked again at once, during and after the run: the next one waits for the spacing.
    coalesced.request();
    runs.finish(run);
    coalesced.request();
  }
  const last = runs.started();
  await last;
  runs.finish(4);
  for (let i = 1; i < runs.starts.length; i++) {
    const gap = runs.starts[i]! - runs.starts[i - 1]!;
    t.ok(gap >= spacingMs, `run ${i} started ${gap.toFixed(1)} ms after run ${i - 1}`);
  }
  coalesced.stop();
});

t.test('a failed run is reported, and a request afterwards runs again', async (t) => {
  const runs = controlledTask();
  const errors: unknown[] = [];
  const coalesced = createCoalescedTask(runs.task, { spacingMs: 0, onError: (error) => errors.push(error) });
  coalesced.request();
  const failure = new Error('the database is away');
  runs.finish(0, failure);
  await new Promise((resolve) => setImmediate(resolve));
  t.same(errors, [failure]);
  const next = runs.started();
  coalesced.request();
  await next;
  runs.finish(1);
});

t.test('stop clears a run that waits for its spacing', async (t) => {
  const runs = controlledTask();
  const coalesced = createCoalescedTask(runs.task, { spacingMs: 60_000, onError: (error) => t.fail(String(error)) });
  coalesced.request();
  runs.finish(0);
  await new Promise((resolve) => setImmediate(resolve));
  const timers = (): number => process.getActiveResourcesInfo().filter((kind) => kind === 'Timeout').length;
  const before = timers();
  coalesced.request();
  t.equal(timers(), before + 1, 'the request waits for the spacing, on a timer');
  coalesced.stop();
  t.equal(timers(), before, 'stop cleared it: the run never starts, and nothing holds the process open');
  coalesced.request();
  t.equal(timers(), before, 'and a request after stop starts nothing');
  t.equal(runs.starts.length, 1);
});
