import t from 'tap';
import type { ReadLimit } from '../../src/db/event-log.ts';
import { nextReadLimit, type MeasuredRead } from '../../src/read-budget.ts';

const MAX: ReadLimit = { events: 1000, bytes: 4 * 1024 * 1024 };
const MB = 1024 * 1024;

/** A read of events of these JSON text lengths. */
const read = (...lengths: number[]): MeasuredRead => ({ events: lengths.map((textLength) => ({ textLength })) });

t.test('the next read asks for about as many events as fit, at the size of those just read', async (t) => {
  const cases: [string, MeasuredRead, number][] = [
    ['nothing read: the whole limit', read(), 1000],
    ['small events: the event limit', read(200, 300, 250), 1000],
    ['1 MB events: four fit in 4 MiB', read(MB, MB, MB, MB), 4],
    ['one event larger than the budget: one at a time', read(10 * MB), 1],
    ['mixed sizes: their average', read(3 * MB, MB), 2],
    ['events of empty text: the whole limit', read(0, 0), 1000],
  ];
  for (const [what, previous, events] of cases) {
    t.strictSame(nextReadLimit(MAX, previous), { events, bytes: MAX.bytes }, what);
  }
});
