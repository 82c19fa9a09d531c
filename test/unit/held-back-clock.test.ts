import t from 'tap';
import { createHeldBackClock } from '../../src/held-back-clock.ts';

t.test('held back: since the position waited for was first seen missing, whatever was delivered before it', async (t) => {
  const clock = createHeldBackClock();
  t.equal(clock.heldBackMs(0), 0, 'nothing missing yet');
  clock.missing(0, 5, 7);
  t.equal(clock.heldBackMs(1000), 1000, 'position 5 missing since 0');
  // 5 committed and was delivered; 6, drawn before 0 too, is missing now: waited for since 0 at least.
  clock.missing(1500, 6, 9);
  t.equal(clock.heldBackMs(2000), 2000, 'a lower position delivered meanwhile does not reset it');
  // 8 was drawn after 0: its wait starts when it is first seen missing.
  clock.missing(2500, 8, 9);
  t.equal(clock.heldBackMs(3000), 500, 'a position drawn later starts anew');
});

t.test('0 while a commit is delivered in parts or the log cannot be read, and again once caught up', async (t) => {
  const clock = createHeldBackClock();
  clock.missing(0, 5, 7);
  clock.notMissingNow();
  t.equal(clock.heldBackMs(5000), 0, 'delivering a commit (or a read failed): not held back by a missing position');
  clock.missing(6000, 6, 7);
  t.equal(clock.heldBackMs(6000), 6000, 'missing again, still one drawn before 0');
  clock.caughtUp();
  t.equal(clock.heldBackMs(7000), 0, 'caught up');
  clock.missing(8000, 6, 8);
  t.equal(clock.heldBackMs(8000), 0, 'after catching up, a wait starts anew');
});
