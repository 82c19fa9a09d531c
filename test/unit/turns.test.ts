// Turns at a shared resource (src/turns.ts): at most `max` at once, the rest in order of arrival.
import t from 'tap';
import { createTurns, type Turn } from '../../src/turns.ts';

t.test('at most max turns are held; waiters get theirs in order of arrival as turns are released', async (t) => {
  const turns = createTurns(2);
  const granted: string[] = [];
  const take = (name: string): Promise<Turn> => turns.take().then((turn) => (granted.push(name), turn));
  const a = await take('a');
  const b = await take('b');
  const c = take('c');
  const d = take('d');
  await Promise.resolve();
  t.strictSame(granted, ['a', 'b'], 'two turns at once');
  t.strictSame(turns.stats(), { held: 2, waiting: 2 });
  b.release();
  b.release();
  const cTurn = await c;
  t.strictSame(granted, ['a', 'b', 'c'], 'the first waiter gets the released turn; releasing twice frees one turn only');
  t.strictSame(turns.stats(), { held: 2, waiting: 1 });
  a.release();
  (await d).release();
  cTurn.release();
  t.strictSame(turns.stats(), { held: 0, waiting: 0 }, 'every turn back');
});

t.test('run releases its turn whether the work succeeds or fails', async (t) => {
  const turns = createTurns(1);
  await t.rejects(turns.run(() => Promise.reject(new Error('read failed'))), { message: 'read failed' });
  t.equal(await turns.run(() => Promise.resolve('rows')), 'rows', 'the next work gets the turn');
  t.strictSame(turns.stats(), { held: 0, waiting: 0 });
});

t.test('tryTake gives a free turn at once, and none (queuing nothing) while all are held', async (t) => {
  const turns = createTurns(1);
  const first = turns.tryTake();
  t.ok(first, 'a free turn');
  t.equal(turns.tryTake(), null, 'none while it is held');
  const waiter = turns.take();
  t.strictSame(turns.stats(), { held: 1, waiting: 1 }, 'tryTake did not join the line');
  first!.release();
  t.equal(turns.tryTake(), null, 'a released turn goes to the waiter in line, not to tryTake');
  (await waiter).release();
  t.ok(turns.tryTake(), 'free again once the waiter is done');
});
