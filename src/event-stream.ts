import type { Logger } from 'pino';
import { comparePositions, encodeCursor, type LogPosition } from './cursor.ts';
import type { EventLog, LoggedEvent, LogIdentity, ReadLimit } from './db/event-log.ts';
import type { RelayEvent } from './events.ts';
import { createHeldBackClock } from './held-back-clock.ts';
import { nextReadLimit } from './read-budget.ts';
import { busyRecheckMs } from './read-pacing.ts';
import { createRepeatedFailureLog } from './repeated-failure-log.ts';

export interface EventStreamOptions {
  readonly identity: LogIdentity;
  readonly eventLog: EventLog;
  readonly logger: Logger;
  /**
   * Called once per event, strictly in commit order, never twice for one event; `committedAt` is
   * its commit time in seconds since the epoch (PostgreSQL's clock), for the delivery lag.
   * `build` makes the event as subscribers see it, parsing its body (null when the row is
   * malformed): a relay where nobody subscribes to `topic` need not pay for that. `textLength` is
   * its body's length as JSON text: about what keeping the built event costs.
   */
  readonly deliver: (topic: string, build: () => RelayEvent | null, position: LogPosition, committedAt: number, textLength: number) => void;
  /** How much one query reads from the log at most: events, and bytes of their JSON text. */
  readonly readLimit?: ReadLimit;
  /**
   * Retention deleted events after the last one delivered, before this stream could deliver them
   * (it waited longer than RELAY_RETENTION for a committer, or for PostgreSQL): live subscribers
   * have a hole, and must be told. The stream goes on after it.
   */
  readonly onPrunedAhead?: (prunedThrough: number, last: LogPosition) => void;
}

export interface EventStream {
  /** Sets the starting point: the end of the log now. Call once LISTEN is in place. */
  start(): Promise<void>;
  /** A `relay_events` notification came: something was committed. Reads the log. */
  wake(): void;
  /** Notifications may have been missed (LISTEN is back after a lost link): reads the log now. */
  resync(): void;
  /** The last event delivered (everything up to it has been delivered). */
  position(): LogPosition;
  /**
   * How long the position delivery waits for has been drawn without becoming visible, in ms, at
   * least (see held-back-clock.ts); 0 when none is missing. While start() waits for the
   * transactions that drew positions to end, since it began.
   */
  heldBackMs(): number;
  stop(): void;
}

const RETRY_MS = 500;
/**
 * A read's limit: a thousand events of a few hundred bytes each make one read of a busy stream, but
 * a burst of 1 MB rows is read a few at a time, not as a gigabyte.
 */
const DEFAULT_READ_LIMIT: ReadLimit = { events: 1000, bytes: 4 * 1024 * 1024 };
/**
 * An idle stream reads the log this often even without a notification: a committer that found the
 * bell armed disarms it, and if that transaction then rolls back, its notification is gone and
 * later committers see the bell disarmed (also covers a listener that lost its link).
 */
const IDLE_READ_MS = 100;
/** A position drawn but not visible is waited for by reading again, this long at first, doubling... */
const FIRST_RECHECK_MS = 1;
/** ...until it has been missing this long: then the stream waits for its committer to end. */
const SETTLE_AFTER_MS = 20;
/**
 * Waits for committers of this many turns (seconds, see EventLog.waitForCommitters) are logged as a
 * warning, and again at each multiple: a transaction that drew its position early and stays open
 * holds back every later position, and an operator must be able to find it.
 */
const WARN_AFTER_WAIT_TURNS = 5;
/** A busy stream's rate is measured over reads this close together (a longer pause starts anew). */
const RATE_WINDOW_MS = 100;
/**
 * The read between two turns of a wait for committers asks for one event: it only has to see
 * whether the missing position has committed (its first event comes first in commit order).
 * Everything after a missing position is read only to be thrown away, and a transaction left open
 * for minutes on a busy log made that a full read of up to readLimit every second.
 */
const EVENTS_READ_BETWEEN_TURNS = 1;

/** The event as subscribers see it, from a row of the log; null when the row's body is malformed. */
export function relayEventOf(epoch: string, logged: LoggedEvent): RelayEvent | null {
  const body = logged.body();
  if (body === null) return null;
  return {
    topic: logged.topic,
    event: logged.event,
    cursor: encodeCursor(epoch, logged),
    ts: new Date(Math.round(logged.ts * 1000)).toISOString(),
    ...body,
  };
}

/**
 * Reads the log and delivers its events in commit order, with no gap and no duplicate.
 * - Committers draw positions without waiting for each other, so a position can become visible
 *   before a lower one. The stream delivers a position only after every lower one: it stops at a
 *   missing position and reads again, and if the position stays missing, waits for every
 *   committer that had drawn one to end (in turns of a second, reading again between them: a
 *   lower position that commits meanwhile must not wait for a higher one left open); a position
 *   still missing then was rolled back, or left behind by a transaction that appended events
 *   after drawing it and drew again (see
 *   migrations/relay/1766000000000_positions-after-last-write.sql).
 * - A committer notifies only when a relay asked for it (each read arms the wake-up bell, see
 *   relay.read_log_commits), so a busy relay costs writers no NOTIFY. A committer that looked at
 *   the bell before the read armed it may not notify: its position is at most the read's
 *   drawnThrough, which is why the stream reads again until it has seen every position up to it.
 *   An idle stream also reads every IDLE_READ_MS, for a bell disarmed by a rolled-back commit.
 */
export function createEventStream(options: EventStreamOptions): EventStream {
  const { logger, eventLog, deliver, identity } = options;
  const readLimit = options.readLimit ?? DEFAULT_READ_LIMIT;
  /** The next read's limit: within readLimit, about as many events as fit (see read-budget.ts). */
  let limit = readLimit;
  let last: LogPosition = { pos: 0, id: 0 };
  /** Whether `last` is the last event of its commit (always, except after a read the limit cut). */
  let lastEndsItsCommit = true;
  /** Every position up to here has ended: a missing one at or below it was rolled back. */
  let settledThrough = 0;
  /**
   * What retention deleted up to here is accounted for: positions that had ended when the stream
   * took the log's head were never this stream's to deliver (a log emptied by retention has the
   * head {0, 0}), and deletions reported once (onPrunedAhead) are not reported again.
   */
  let prunedAccountedThrough = 0;
  /** The highest position drawn, as of the latest read: the stream must get at least this far. */
  let drawnThrough = 0;
  /** Since when the stream has waited for a drawn position without delivering anything. */
  let waitingSince: number | undefined;
  let recheckMs = FIRST_RECHECK_MS;
  /** Whether the next read comes between two turns of a wait for committers (see EVENTS_READ_BETWEEN_TURNS). */
  let betweenTurns = false;
  /** Events delivered so far, and when and at what count the stream last found itself busy. */
  let delivered = 0;
  let busyAt: { ms: number; delivered: number } | undefined;
  /**
   * Whether the next read arms the wake-up bell. Reads that follow a read at once (a cut page, a
   * drawn position not visible yet) do not: committers then need not notify, as the stream reads
   * again anyway. The read after which the stream goes idle always has.
   */
  let armNext = true;
  let started = false;
  /** When start() began, until it is done. */
  let startingSince: number | undefined;
  const heldBack = createHeldBackClock();
  /** Events delivered since resync(), until the stream has read everything there was (then logged). */
  let sinceResync: number | undefined;
  let readWanted = false;
  let busy = false;
  let stopped = false;
  /** Counts the turns of the current wait for committers that ended with one still open. */
  let liveWaitTurns = betweenWaitTurns('live delivery');
  let timer: NodeJS.Timeout | undefined;
  const readFailures = createRepeatedFailureLog({
    logger,
    level: 'warn',
    message: 'cannot read the event log yet; retrying',
    recoveredMessage: 'reading the event log again',
  });

  function deliverOnce(logged: LoggedEvent): void {
    if (comparePositions(logged, last) <= 0) return;
    last = { pos: logged.pos, id: logged.id };
    delivered++;
    if (sinceResync !== undefined) sinceResync++;
    try {
      deliver(logged.topic, () => relayEventOf(identity.epoch, logged), last, logged.ts, logged.textLength);
    } catch (error) {
      // One event that breaks delivery must not stop the stream for every other subscriber.
      logger.error({ err: error, topic: logged.topic, pos: logged.pos, id: logged.id }, 'delivery failed');
    }
  }

  /** Whether every position below `pos` has been delivered or has ended without a commit. */
  function follows(pos: number): boolean {
    return pos === last.pos || pos === last.pos + 1 || pos <= settledThrough + 1;
  }

  function drain(): void {
    if (!started || busy || stopped || !readWanted) return;
    readWanted = false;
    clearTimeout(timer);
    timer = undefined;
    busy = true;
    readStep().then(
      (next) => {
        busy = false;
        readFailures.succeeded();
        if (next === undefined && sinceResync !== undefined) {
          logger.info({ events: sinceResync, through: last }, 'caught up from the event log');
          sinceResync = undefined;
        }
        schedule(next);
        drain();
      },
      (error: unknown) => {
        readFailures.failed(error);
        // The server may have crashed: positions drawn and settled as rolled back before may be
        // drawn again (their WAL was not flushed), so only what was delivered stays settled.
        settledThrough = Math.min(settledThrough, last.pos);
        heldBack.notMissingNow();
        busy = false;
        schedule({ inMs: RETRY_MS });
      },
    );
  }

  /** Reads again now, after a while, or when woken (idle: undefined). */
  function schedule(next: { inMs: number } | undefined): void {
    const inMs = next?.inMs ?? IDLE_READ_MS;
    if (stopped) return;
    if (inMs === 0) {
      readWanted = true;
      return;
    }
    clearTimeout(timer);
    timer = setTimeout(() => {
      timer = undefined;
      readWanted = true;
      drain();
    }, inMs);
  }

  /** One read of the log; says when to read next (undefined: when woken). */
  async function readStep(): Promise<{ inMs: number } | undefined> {
    if (!lastEndsItsCommit) {
      // A read the limit cut, maybe inside a commit: finish that commit first.
      heldBack.notMissingNow();
      const rest = await eventLog.readPage(last, { pos: last.pos, id: Number.MAX_SAFE_INTEGER }, null, limit);
      // Retention deleted that commit (the stream was held up, or cut off, longer than the
      // retention): the rest of it is gone, and the read finds nothing where events were.
      if (rest.prunedThrough >= last.pos && rest.prunedThrough > prunedAccountedThrough) reportPruned(rest.prunedThrough);
      limit = nextReadLimit(readLimit, rest);
      for (const event of rest.events) deliverOnce(event);
      lastEndsItsCommit = !rest.cut;
      return { inMs: 0 };
    }
    const armed = armNext;
    armNext = false;
    const readNow = betweenTurns ? { events: EVENTS_READ_BETWEEN_TURNS, bytes: limit.bytes } : limit;
    betweenTurns = false;
    const read = await eventLog.readCommits(last.pos, readNow, armed);
    limit = nextReadLimit(readLimit, read);
    // The latest, not the highest seen: after a crash the server draws again from below it.
    drawnThrough = read.drawnThrough;
    const before = last;
    let stoppedAtGap = false;
    for (const event of read.events) {
      if (stopped) return undefined;
      if (!follows(event.pos)) {
        stoppedAtGap = true;
        break;
      }
      deliverOnce(event);
    }
    if (!stoppedAtGap && read.cut) {
      heldBack.notMissingNow();
      lastEndsItsCommit = false;
      return { inMs: 0 };
    }
    if (Math.max(last.pos, settledThrough) >= drawnThrough) {
      heldBack.caughtUp();
      notWaiting();
      armNext = true;
      // Idle only after a read that armed the bell: the next commit will notify.
      return armed ? undefined : { inMs: 0 };
    }
    // A drawn position is not visible yet: its commit is on its way (or was rolled back).
    const now = performance.now();
    heldBack.missing(now, Math.max(last.pos, settledThrough) + 1, drawnThrough);
    if (comparePositions(last, before) > 0) {
      // Busy: commits keep coming, and nobody notifies while the bell is not armed. Reading a
      // little less often reads more commits per query, the more so the heavier the stream.
      waitingSince = now;
      recheckMs = FIRST_RECHECK_MS;
      const rate = busyAt && now - busyAt.ms < RATE_WINDOW_MS ? ((delivered - busyAt.delivered) * 1000) / (now - busyAt.ms) : 0;
      busyAt = { ms: now, delivered };
      return { inMs: busyRecheckMs(rate) };
    }
    if (waitingSince === undefined) {
      waitingSince = now;
      recheckMs = FIRST_RECHECK_MS;
    }
    if (now - waitingSince < SETTLE_AFTER_MS) {
      const inMs = recheckMs;
      recheckMs *= 2;
      return { inMs };
    }
    const wait = await eventLog.waitForCommitters();
    if (!wait.allEnded) {
      // One of them is still open after a turn: maybe one that drew its position early and stays
      // open. Read again, for a lower position may have committed meanwhile, and must not wait
      // for a higher one; and a stop gives up here.
      liveWaitTurns();
      betweenTurns = true;
      return stopped ? undefined : { inMs: 0 };
    }
    // Set, not raised: within one server's life the sequence only grows, and after a crash what
    // was settled before it may be drawn again.
    settledThrough = Math.max(last.pos, wait.drawnBefore);
    // Positions missing now are passed as rolled back; those retention deleted meanwhile were not.
    const prunedThrough = await eventLog.prunedThrough();
    if (prunedThrough > Math.max(last.pos, prunedAccountedThrough)) reportPruned(prunedThrough);
    notWaiting();
    return { inMs: 0 };
  }

  /** Retention deleted events this stream had not delivered: said once per deletion. */
  function reportPruned(prunedThrough: number): void {
    prunedAccountedThrough = prunedThrough;
    options.onPrunedAhead?.(prunedThrough, last);
  }

  /** No drawn position is missing any more: the next one missing starts a wait of its own. */
  function notWaiting(): void {
    waitingSince = undefined;
    recheckMs = FIRST_RECHECK_MS;
    liveWaitTurns = betweenWaitTurns('live delivery');
  }

  /** Between turns of a wait for committers: warns now and then, and gives up once stopped. */
  function betweenWaitTurns(what: string): () => boolean {
    let turns = 0;
    return () => {
      turns++;
      if (turns % WARN_AFTER_WAIT_TURNS === 0) {
        logger.warn(
          { seconds: turns },
          `${what} waits for a transaction that drew its commit position and is still open (SET CONSTRAINTS ALL IMMEDIATE or PREPARE TRANSACTION, then idle?); it holds ROW EXCLUSIVE on relay.commits (pg_locks)`,
        );
      }
      return stopped;
    };
  }

  return {
    async start() {
      startingSince = performance.now();
      // Given up only when stopped meanwhile: then nothing is delivered anyway.
      const head = await eventLog.head(betweenWaitTurns("the relay's start"));
      last = head.position;
      settledThrough = head.settledThrough;
      prunedAccountedThrough = head.settledThrough;
      drawnThrough = head.settledThrough;
      started = true;
      readWanted = true;
      drain();
    },
    wake() {
      if (stopped) return;
      readWanted = true;
      drain();
    },
    resync() {
      if (stopped) return;
      sinceResync ??= 0;
      readWanted = true;
      drain();
    },
    position: () => last,
    heldBackMs() {
      const now = performance.now();
      if (!started) return startingSince === undefined ? 0 : now - startingSince;
      return heldBack.heldBackMs(now);
    },
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
