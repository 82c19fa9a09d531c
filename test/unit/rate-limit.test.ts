import t from 'tap';
import { createMessageRateLimiter, type RateDecision } from '../../src/ws/rate-limit.ts';

/** The decisions for messages sent at each of `timesMs`. */
function decisions(ratePerSecond: number, timesMs: readonly number[]): RateDecision[] {
  const limiter = createMessageRateLimiter(ratePerSecond, 0);
  return timesMs.map((at) => limiter.take(at));
}

const repeat = <T>(n: number, value: T): T[] => Array.from({ length: n }, () => value);

t.test('a burst up to the rate is accepted at once, then messages are refused', async (t) => {
  t.strictSame(decisions(3, [0, 0, 0, 0]), ['accept', 'accept', 'accept', 'refuse']);
});

t.test('the bucket refills at the rate, never above it', async (t) => {
  t.strictSame(decisions(2, [0, 0, 0, 500, 500]), ['accept', 'accept', 'refuse', 'accept', 'refuse'], 'one token per half second');
  t.strictSame(decisions(2, [0, 0, 60_000, 60_000, 60_000]), ['accept', 'accept', 'accept', 'accept', 'refuse'], 'a long pause refills only the burst');
});

t.test('sending at the rate is never refused', async (t) => {
  const times = Array.from({ length: 1000 }, (_, i) => i * 10); // 100 per second for 10 s
  t.ok(decisions(100, times).every((decision) => decision === 'accept'));
});

t.test('a client that keeps sending past the limit is disconnected after as many refusals as the rate', async (t) => {
  const flood = decisions(5, repeat(20, 0));
  t.strictSame(flood, [...repeat(5, 'accept'), ...repeat(5, 'refuse'), 'disconnect', ...repeat(9, 'disconnect')]);
});

t.test('refusals are forgiven at a tenth of the rate: slowing down after rate_limited is enough', async (t) => {
  const limiter = createMessageRateLimiter(10, 0);
  for (let i = 0; i < 10; i++) limiter.take(0);
  for (let i = 0; i < 10; i++) t.equal(limiter.take(0), 'refuse', `refusal ${i + 1} of the budget`);
  // 1 s later: 10 tokens back, 1 refusal forgiven.
  for (let i = 0; i < 10; i++) t.equal(limiter.take(1000), 'accept');
  t.equal(limiter.take(1000), 'refuse', 'one refusal left in the budget');
  t.equal(limiter.take(1000), 'disconnect', 'then the budget is gone');
});

t.test('a client sending at 1.5 times the rate is disconnected within seconds, at 1.05 times after longer', async (t) => {
  const secondsUntilDisconnect = (factor: number): number => {
    const limiter = createMessageRateLimiter(100, 0);
    const intervalMs = 1000 / (100 * factor);
    for (let i = 0; i < 1_000_000; i++) if (limiter.take(i * intervalMs) === 'disconnect') return (i * intervalMs) / 1000;
    return Infinity;
  };
  const fast = secondsUntilDisconnect(1.5);
  t.ok(fast > 1 && fast < 5, `1.5x: after ${fast.toFixed(1)} s`);
  const slightly = secondsUntilDisconnect(1.05);
  t.ok(slightly > fast, `1.05x: after ${slightly.toFixed(1)} s`);
});

t.test('a clock stepping back refills nothing', async (t) => {
  t.strictSame(decisions(2, [10_000, 10_000, 0, 5_000]), ['accept', 'accept', 'refuse', 'refuse']);
});

t.test('takeMore charges a message that costs several, at most a full bucket in all', async (t) => {
  const limiter = createMessageRateLimiter(5, 0);
  t.strictSame([limiter.take(0), limiter.takeMore(0, 2)], ['accept', 'accept'], 'one message costing three, of five');
  t.strictSame([limiter.take(0), limiter.takeMore(0, 2)], ['accept', 'refuse'], 'one token left: the rest is refused');
  const fresh = createMessageRateLimiter(5, 0);
  t.strictSame([fresh.take(0), fresh.takeMore(0, 100)], ['accept', 'accept'], 'a cost above the bucket takes the whole bucket, not for ever refused');
  t.equal(fresh.take(0), 'refuse', 'and leaves it empty');
});
