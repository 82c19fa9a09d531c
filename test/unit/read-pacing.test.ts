// A busy stream reads every 3 ms while light, and less often as it gets heavy, up to 10 ms.
import t from 'tap';
import { busyRecheckMs, HEAVY_EVENTS_PER_SECOND, HEAVY_RECHECK_MS, LIGHT_EVENTS_PER_SECOND, LIGHT_RECHECK_MS } from '../../src/read-pacing.ts';

t.test('up to the light rate (and for a rate not measured yet) the wait is the light one', async (t) => {
  for (const rate of [0, 1, 1000, LIGHT_EVENTS_PER_SECOND, Number.NaN]) t.equal(busyRecheckMs(rate), LIGHT_RECHECK_MS, `${rate} events/s`);
});

t.test('from the heavy rate on the wait is the heavy one', async (t) => {
  for (const rate of [HEAVY_EVENTS_PER_SECOND, 20_000, Number.POSITIVE_INFINITY]) t.equal(busyRecheckMs(rate), HEAVY_RECHECK_MS, `${rate} events/s`);
});

t.test('in between it grows with the rate, in whole milliseconds', async (t) => {
  const middle = (LIGHT_EVENTS_PER_SECOND + HEAVY_EVENTS_PER_SECOND) / 2;
  t.equal(busyRecheckMs(middle), Math.round((LIGHT_RECHECK_MS + HEAVY_RECHECK_MS) / 2), 'half way: half way');
  let previous = LIGHT_RECHECK_MS;
  for (let rate = LIGHT_EVENTS_PER_SECOND; rate <= HEAVY_EVENTS_PER_SECOND; rate += 250) {
    const wait = busyRecheckMs(rate);
    if (wait < previous || !Number.isInteger(wait)) t.fail(`${rate} events/s: ${wait} ms after ${previous} ms`);
    previous = wait;
  }
  t.pass('never shorter for a heavier stream, always a whole number');
});
