// Token expiries of every connection, in buckets of one second. One coarse tick (see ws/server.ts)
// takes what is due, instead of a timer per connection: setting, moving (an `auth` refresh) and
// clearing an expiry are a Map and a Set operation each, 50,000 connections cost 50,000 Set
// entries and no timer objects, and a tick costs only the seconds elapsed and the items it takes.
// JWT `exp` has a granularity of one second anyway. Pure: the caller says what time it is.

/** Items due at a whole second. */
export interface ExpirySchedule<T> {
  /** Schedules `item` for `expSeconds`, never before it (replacing its earlier time); null clears it. */
  set(item: T, expSeconds: number | null): void;
  delete(item: T): void;
  /** Removes and returns the items whose time has come: `exp <= nowSeconds` (a JWT is expired at its exp). */
  takeDue(nowSeconds: number): T[];
  readonly size: number;
}

/** An empty schedule; nothing at or before `startSeconds` is due after the first takeDue. */
export function createExpirySchedule<T>(startSeconds: number): ExpirySchedule<T> {
  const buckets = new Map<number, Set<T>>();
  const secondOf = new Map<T, number>();
  /** Every bucket up to this second has been taken. */
  let takenThrough = startSeconds - 1;

  function remove(item: T): void {
    const second = secondOf.get(item);
    if (second === undefined) return;
    secondOf.delete(item);
    const bucket = buckets.get(second);
    bucket?.delete(item);
    if (bucket?.size === 0) buckets.delete(second);
  }

  function take(second: number, into: T[]): void {
    const bucket = buckets.get(second);
    if (!bucket) return;
    buckets.delete(second);
    for (const item of bucket) {
      secondOf.delete(item);
      into.push(item);
    }
  }

  return {
    set(item, expSeconds) {
      remove(item);
      if (expSeconds === null) return;
      // Rounded up: `exp` may have a fraction (RFC 7519 allows it), and the bucket of second N is
      // taken from N.0 on, so rounding down closed a connection up to a second before its exp.
      // Already due (a token that expired while it was being checked): the next tick takes it.
      const second = Math.max(Math.ceil(expSeconds), takenThrough + 1);
      secondOf.set(item, second);
      const bucket = buckets.get(second);
      if (bucket) bucket.add(item);
      else buckets.set(second, new Set([item]));
    },
    delete: remove,
    takeDue(nowSeconds) {
      const due: T[] = [];
      const now = Math.floor(nowSeconds);
      if (now <= takenThrough) return due;
      // Normally one second has passed; after a long stall (or a clock jump) walking the buckets
      // themselves is cheaper than walking every second in between.
      if (now - takenThrough > buckets.size) {
        for (const second of [...buckets.keys()]) if (second <= now) take(second, due);
      } else {
        for (let second = takenThrough + 1; second <= now; second++) take(second, due);
      }
      takenThrough = now;
      return due;
    },
    get size() {
      return secondOf.size;
    },
  };
}
