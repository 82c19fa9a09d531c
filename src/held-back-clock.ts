// How long live delivery has been held back by a commit position drawn and not yet visible, for
// relay_live_delivery_held_back_seconds: an alert on it must find a transaction that drew its
// position early and stays open, and nothing else. Pure: the event stream says what each read
// found, with the time.
//
// The position the stream waits for is the one after the last it delivered. Seen missing at time T
// while positions were drawn through D, a position up to D that is still missing later was drawn
// before T: it has been waited for since T at least, whatever was delivered meanwhile (a lower
// position that committed during the wait). A position above D was drawn after T: its wait starts
// anew.

export interface HeldBackClock {
  /** A read found `next` missing (the position after the last delivered), positions drawn through `drawnThrough`. */
  missing(nowMs: number, next: number, drawnThrough: number): void;
  /** Nothing is missing right now (a commit is being delivered), or the stream cannot tell (a read failed). */
  notMissingNow(): void;
  /** Every position drawn is delivered or ended: nothing is waited for. */
  caughtUp(): void;
  /** How long the position waited for has been missing, at least; 0 when none is. */
  heldBackMs(nowMs: number): number;
}

export function createHeldBackClock(): HeldBackClock {
  /** When the stream first found missing a position it still waits for, if it does. */
  let since: number | undefined;
  /** Positions drawn at `since`: one of them missing later was drawn before it. */
  let drawnAtSince = 0;
  let missingNow = false;
  return {
    missing(nowMs, next, drawnThrough) {
      if (since === undefined || next > drawnAtSince) {
        since = nowMs;
        drawnAtSince = drawnThrough;
      }
      missingNow = true;
    },
    notMissingNow() {
      missingNow = false;
    },
    caughtUp() {
      since = undefined;
      missingNow = false;
    },
    heldBackMs: (nowMs) => (missingNow && since !== undefined ? Math.max(0, nowMs - since) : 0),
  };
}
