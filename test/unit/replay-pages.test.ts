import t from 'tap';
import { eventsWithinBudget, nextPageLimit } from '../../src/replay-pages.ts';

const sized = (...lengths: number[]) => lengths.map((textLength) => ({ textLength }));

t.test('a page is cut where the next event would pass the budget', async (t) => {
  t.equal(eventsWithinBudget(sized(10, 10, 10), 30), 3, 'all of them when they fit exactly');
  t.equal(eventsWithinBudget(sized(10, 10, 11), 30), 2, 'up to the one that would pass it');
  t.equal(eventsWithinBudget(sized(50, 1, 1), 30), 1, 'an event over the budget alone is still sent, on its own');
  t.equal(eventsWithinBudget(sized(), 30), 0, 'nothing of an empty page');
  t.equal(eventsWithinBudget(sized(0, 0, 0), 0), 3, 'empty bodies cost nothing');
});

t.test('the next read asks for as many events as fit at their average size', async (t) => {
  t.equal(nextPageLimit(sized(1_000_000, 1_000_000), 4_000_000, 500), 4, 'four events of 1 MB in 4 MB');
  t.equal(nextPageLimit(sized(100, 300), 4_000_000, 500), 500, 'never more than the page size');
  t.equal(nextPageLimit(sized(8_000_000), 4_000_000, 500), 1, 'never fewer than one');
  t.equal(nextPageLimit(sized(), 4_000_000, 500), 500, 'the page size when nothing was measured');
  t.equal(nextPageLimit(sized(0), 4_000_000, 500), 500, 'the page size for empty bodies');
});
