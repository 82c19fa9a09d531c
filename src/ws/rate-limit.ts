// How many messages a connection may send: a token bucket. It holds up to `ratePerSecond` tokens
// (a client may send that many at once, e.g. its subscribes on connect) and refills at that rate;
// a message finding the bucket empty is refused. Refusals have a budget of their own, as large
// and regained ten times slower: a client that slows down after `rate_limited` is only refused,
// one that keeps going past the limit exhausts it and is disconnected. Pure: the caller says the time.

/** What to do with one client message. */
export type RateDecision = 'accept' | 'refuse' | 'disconnect';

/** One connection's message budget. */
export interface MessageRateLimiter {
  /** Counts one message at `nowMs` and decides its fate. */
  take(nowMs: number): RateDecision;
  /**
   * Charges `count` more messages for one already taken that costs as much as several (an `auth`
   * re-decides every subscription, as that many subscribes would). Never more than the bucket can
   * hold beside the message's own token, so that no such message is refused for ever.
   */
  takeMore(nowMs: number, count: number): RateDecision;
}

/** Refusals are forgiven this many times slower than messages are allowed. */
const REFUSAL_RECOVERY_DIVISOR = 10;

/** A full bucket at `nowMs`. */
export function createMessageRateLimiter(ratePerSecond: number, nowMs: number): MessageRateLimiter {
  let tokens = ratePerSecond;
  let refusals = 0;
  let lastMs = nowMs;
  const spend = (now: number, cost: number): RateDecision => {
    // A clock that steps back refills nothing rather than something negative.
    const elapsedSeconds = Math.max(0, now - lastMs) / 1000;
    lastMs = Math.max(lastMs, now);
    tokens = Math.min(ratePerSecond, tokens + elapsedSeconds * ratePerSecond);
    refusals = Math.max(0, refusals - (elapsedSeconds * ratePerSecond) / REFUSAL_RECOVERY_DIVISOR);
    if (tokens >= cost) {
      tokens -= cost;
      return 'accept';
    }
    refusals += 1;
    return refusals > ratePerSecond ? 'disconnect' : 'refuse';
  };
  return {
    take: (now) => spend(now, 1),
    takeMore: (now, count) => spend(now, Math.min(count, ratePerSecond - 1)),
  };
}
