// The lag metric's clock: microseconds between whole-millisecond ticks, and the wall clock's own
// time after the clock is set.
import t from 'tap';
import { createWallClock } from '../../src/wall-clock.ts';

t.test('between whole-millisecond ticks, the fraction comes from the monotonic clock', async (t) => {
  let monotonic = 10.25;
  let coarse = 1_000_010;
  const clock = createWallClock(() => coarse, () => monotonic, 1_000_000);
  t.equal(clock.nowMs(), 1_000_010.25);
  monotonic = 12.9;
  coarse = 1_000_012;
  t.equal(clock.nowMs(), 1_000_012.9, 'the coarse clock truncates; this one does not');
});

t.test('when the wall clock is set, readings follow it from then on', async (t) => {
  let monotonic = 100;
  let coarse = 1_000_100;
  const clock = createWallClock(() => coarse, () => monotonic, 1_000_000);
  t.equal(clock.nowMs(), 1_000_100);
  // NTP steps the clock back by 5 s.
  monotonic = 200;
  coarse = 995_200;
  t.equal(clock.nowMs(), 995_200, 're-anchored to the wall clock');
  monotonic = 200.5;
  t.equal(clock.nowMs(), 995_200.5, 'and precise again after');
});
