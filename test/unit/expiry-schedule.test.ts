import t from 'tap';
import { createExpirySchedule } from '../../src/ws/expiry-schedule.ts';

t.test('items are due at their second (a JWT is expired at exp), in no other tick', async (t) => {
  const schedule = createExpirySchedule<string>(100);
  schedule.set('a', 102);
  schedule.set('b', 101);
  schedule.set('c', 102);
  schedule.set('never', null);
  t.equal(schedule.size, 3, 'null schedules nothing');
  t.strictSame(schedule.takeDue(100), []);
  t.strictSame(schedule.takeDue(101), ['b']);
  t.strictSame(schedule.takeDue(101), [], 'taken once');
  t.strictSame(schedule.takeDue(102.9).sort(), ['a', 'c'], 'fractions of a second count as the whole second');
  t.equal(schedule.size, 0);
});

t.test('an exp with a fraction is never due before it: its second is rounded up', async (t) => {
  const schedule = createExpirySchedule<string>(100);
  schedule.set('fraction', 102.9);
  schedule.set('just over', 102.001);
  schedule.set('whole', 102);
  t.strictSame(schedule.takeDue(101), []);
  // Before, the fractions were due here, at 102.0: up to 0.9 s before their exp.
  t.strictSame(schedule.takeDue(102), ['whole'], 'at 102, only the exp of 102 is due');
  t.strictSame(schedule.takeDue(103).sort(), ['fraction', 'just over'], 'at 103, the ones that expired in between');
});

t.test('set again moves an item (an auth refresh); null or delete clears it', async (t) => {
  const schedule = createExpirySchedule<string>(0);
  schedule.set('refreshed', 5);
  schedule.set('refreshed', 50);
  schedule.set('no-exp-any-more', 5);
  schedule.set('no-exp-any-more', null);
  schedule.set('closed', 5);
  schedule.delete('closed');
  schedule.delete('never-set');
  t.strictSame(schedule.takeDue(10), []);
  t.strictSame(schedule.takeDue(50), ['refreshed']);
});

t.test('an item already due when set is taken at the next tick', async (t) => {
  const schedule = createExpirySchedule<string>(0);
  t.strictSame(schedule.takeDue(10), []);
  schedule.set('late', 3);
  t.strictSame(schedule.takeDue(10), [], 'the tick for second 10 has passed');
  t.strictSame(schedule.takeDue(11), ['late']);
});

t.test('a long stall or a clock jump takes everything due, without walking every second', async (t) => {
  const schedule = createExpirySchedule<number>(0);
  for (let i = 1; i <= 5; i++) schedule.set(i, i * 1000);
  schedule.set(99, 10_000_000_000);
  const started = process.hrtime.bigint();
  t.strictSame(schedule.takeDue(9_000_000_000).sort((a, b) => a - b), [1, 2, 3, 4, 5]);
  t.ok(process.hrtime.bigint() - started < 50_000_000n, 'quickly');
  t.strictSame(schedule.takeDue(10_000_000_000), [99]);
});

t.test('a clock stepping back takes nothing twice and loses nothing', async (t) => {
  const schedule = createExpirySchedule<string>(0);
  schedule.set('x', 20);
  t.strictSame(schedule.takeDue(10), []);
  t.strictSame(schedule.takeDue(5), []);
  t.strictSame(schedule.takeDue(20), ['x']);
});

t.test('50,000 connections: set, refresh and take stay cheap', async (t) => {
  const schedule = createExpirySchedule<object>(0);
  const items = Array.from({ length: 50_000 }, () => ({}));
  const started = process.hrtime.bigint();
  items.forEach((item, i) => schedule.set(item, 1 + (i % 3600)));
  items.forEach((item, i) => schedule.set(item, 3601 + (i % 3600)));
  let taken = 0;
  for (let second = 1; second <= 7200; second++) taken += schedule.takeDue(second).length;
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  t.equal(taken, 50_000, 'each expired once, at its refreshed time');
  t.ok(ms < 2000, `in ${ms.toFixed(0)} ms`);
});
