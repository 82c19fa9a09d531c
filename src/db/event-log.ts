import pg from 'pg';
import type { LogPosition } from '../cursor.ts';
import { parseEventBodyText, type EventBody } from './event-body.ts';
import { createSharedReads } from './shared-reads.ts';
import { loadSql } from './sql.ts';
import type { Turns } from '../turns.ts';

export interface LogIdentity {
  readonly epoch: string;
}

/** An event read from the log. */
export interface LoggedEvent {
  readonly pos: number;
  readonly id: number;
  /** Commit time, seconds since the epoch. */
  readonly ts: number;
  readonly topic: string;
  readonly event: string;
  /** The length of its data and old as JSON text: about what holding it costs before parsing. */
  readonly textLength: number;
  /**
   * Its data, old and changed, parsed at the first call: a relay with no subscriber for the topic
   * never parses them. Null when the row's body is malformed (the triggers never write one).
   */
  body(): EventBody | null;
}

/**
 * A read of the log is cut at a number of events and at a number of bytes of their JSON text,
 * whichever comes first; always at least one event, however large. The byte cut is made by
 * PostgreSQL: a burst of large rows reaches the relay a few at a time.
 */
export interface ReadLimit {
  readonly events: number;
  readonly bytes: number;
}

/** Events read from the log, in commit order. */
export interface EventsRead {
  readonly events: readonly LoggedEvent[];
  /** Whether the limit cut the read: more events may follow the last one (false: none did). */
  readonly cut: boolean;
}

/** A page of the log, how far retention had pruned it when the page was read, and its start. */
export interface LogPage extends EventsRead {
  readonly prunedThrough: number;
  /** Whether the event the page starts after is in the log: for a replay, whether its cursor is. */
  readonly afterInLog: boolean;
}

/** Live delivery's read: the events after a position, and how far positions had been drawn then. */
export interface CommitsRead extends EventsRead {
  /**
   * The highest commit position drawn when the read armed the wake-up bell, committed or not.
   * Until every position up to it is read (or known to be rolled back), no notification is sure
   * to come for them: the reader must read again.
   */
  readonly drawnThrough: number;
}

/** One turn of a wait for the transactions that had drawn commit positions. */
export interface CommittersWait {
  readonly allEnded: boolean;
  readonly drawnBefore: number;
}

/** Where live delivery starts: the newest event, and every position drawn before it settled. */
export interface LogHead {
  readonly position: LogPosition;
  /** Every position up to here had ended (committed or rolled back) when the head was read. */
  readonly settledThrough: number;
}

/** Read access to relay's event log. */
export interface EventLog {
  /** The log's epoch: the first part of every cursor. */
  identity(): Promise<LogIdentity>;
  /**
   * Events after `after` and at most `upTo`, of one topic or all (null), in commit order. With
   * `turns`, the query waits for a turn (a read shared with one under way does not take another).
   */
  readPage(after: LogPosition, upTo: LogPosition, topic: string | null, limit: ReadLimit, turns?: Turns): Promise<LogPage>;
  /**
   * Arms the wake-up bell if `arm`, then reads the events of the commits after position
   * `afterPos`, in commit order: live delivery's read, which always starts where a whole commit
   * ended.
   */
  readCommits(afterPos: number, limit: ReadLimit, arm: boolean): Promise<CommitsRead>;
  /**
   * Waits one turn (at most a second): allEnded once every transaction that had drawn a commit
   * position when called has ended (false if one is still open at the end of the turn);
   * drawnBefore, the highest position drawn when the wait began, read by the same server: once
   * allEnded, every position up to it has ended.
   */
  waitForCommitters(): Promise<CommittersWait>;
  /**
   * The newest event ({0, 0} for an empty log) once every position drawn before the call has
   * ended; `giveUp`, asked after each turn of the wait, ends it early (a relay stopping).
   */
  head(giveUp?: () => boolean): Promise<LogHead>;
  /** One batch of retention; returns how many commits it deleted. */
  prune(retentionMs: number, batchSize: number): Promise<number>;
  /** The position through which retention has deleted the log. */
  prunedThrough(): Promise<number>;
}

interface PageRow {
  pruned_through: string;
  drawn_through: string;
  /** Whether another event followed this one before the byte cut. */
  more: boolean | null;
  cursor_present: boolean;
  pos: string | null;
  id: string;
  ts: number;
  topic: string;
  event: string;
  /** JSON text: parsed only when the event's body is asked for. */
  data: string | null;
  old: string | null;
  changed: unknown;
}

/** The events of rows of the log (a page's row of nulls, which carries only pruned_through, is none). */
function loggedEvents(rows: readonly PageRow[]): LoggedEvent[] {
  const events: LoggedEvent[] = [];
  for (const row of rows) {
    if (row.pos === null) continue;
    const { data, old, changed } = row;
    let body: EventBody | null | undefined;
    events.push({
      pos: Number(row.pos),
      id: Number(row.id),
      ts: row.ts,
      topic: row.topic,
      event: row.event,
      textLength: (data?.length ?? 0) + (old?.length ?? 0),
      body: () => (body === undefined ? (body = parseEventBodyText(data, old, changed)) : body),
    });
  }
  return events;
}

/**
 * How long one turn of waiting for committers lasts: a transaction that drew its position early and
 * stays open holds the wait up for as long, and between turns a stopping relay gives up and live
 * delivery reads the log again.
 */
const WAIT_TURN_MS = 1000;

/** The events of a read's rows, and whether its limit cut it (at `limit.events`, or at its bytes). */
function eventsRead(rows: readonly PageRow[], limit: ReadLimit): EventsRead {
  const events = loggedEvents(rows);
  return { events, cut: events.length >= limit.events || rows.at(-1)?.more === true };
}

/** The event log over a pool. */
export function createEventLog(pool: pg.Pool): EventLog {
  const queries = {
    identity: loadSql('log-identity'),
    page: loadSql('read-log-page'),
    commits: loadSql('read-log-commits'),
    head: loadSql('log-head'),
    waitForCommitters: loadSql('wait-for-committers'),
    prune: loadSql('prune-log'),
    prunedThrough: loadSql('log-pruned-through'),
  };
  // The reads that live delivery and replays repeat all day, as named statements: each
  // connection parses and plans them once, not at every call (pgbench, 2 clients on 2 cores,
  // reading 3 commits: 14,000 reads a second unnamed, 23,000 named). A migration that changes the
  // columns these return must give them new names: a relay still running keeps its statements, and
  // PostgreSQL refuses to run a prepared statement whose result type changed.
  // Both return data and old as JSON text, for LoggedEvent.body to parse if needed.
  const readCommitsStatement = { name: 'relay-read-log-commits', text: queries.commits };
  const readPageStatement = { name: 'relay-read-log-page', text: queries.page };
  // Replays that ask for the same page at once share its rows: a page is only read, never changed,
  // and its events parse their bodies once for all of them.
  const sharedPages = createSharedReads<LogPage>();

  async function waitForCommitters(): Promise<CommittersWait> {
    const { rows } = await pool.query<{ drawn: string; all_ended: boolean }>(queries.waitForCommitters, [WAIT_TURN_MS]);
    return { allEnded: rows[0]?.all_ended === true, drawnBefore: Number(rows[0]?.drawn ?? 0) };
  }

  return {
    async identity() {
      const { rows } = await pool.query<{ epoch: string }>(queries.identity);
      const row = rows[0];
      if (!row) throw new Error('relay.log_identity is empty: were the migrations applied?');
      return { epoch: row.epoch };
    },

    readPage(after, upTo, topic, limit, turns) {
      const values = [after.pos, after.id, upTo.pos, upTo.id, topic, limit.events, limit.bytes];
      const read = async (): Promise<LogPage> => {
        const { rows } = await pool.query<PageRow>({ ...readPageStatement, values });
        const prunedThrough = Number(rows[0]?.pruned_through ?? 0);
        return { ...eventsRead(rows, limit), prunedThrough, afterInLog: rows[0]?.cursor_present === true };
      };
      return sharedPages.run(JSON.stringify(values), () => (turns ? turns.run(read) : read()));
    },

    async readCommits(afterPos, limit, arm) {
      const { rows } = await pool.query<PageRow>({ ...readCommitsStatement, values: [afterPos, limit.events, arm, limit.bytes] });
      return { ...eventsRead(rows, limit), drawnThrough: Number(rows[0]?.drawn_through ?? 0) };
    },

    waitForCommitters,

    async head(giveUp) {
      // Every position drawn before the last turn began belongs to a transaction that has ended,
      // so none at or below it can appear later (that turn's server drew them: see
      // sql/wait-for-committers.sql).
      let wait = await waitForCommitters();
      while (!wait.allEnded && !giveUp?.()) wait = await waitForCommitters();
      const settledThrough = wait.drawnBefore;
      const { rows } = await pool.query<{ pos: string; id: string }>(queries.head, [settledThrough]);
      const row = rows[0];
      return { position: { pos: Number(row?.pos ?? 0), id: Number(row?.id ?? 0) }, settledThrough };
    },

    async prunedThrough() {
      const { rows } = await pool.query<{ pruned_through: string }>(queries.prunedThrough);
      return Number(rows[0]?.pruned_through ?? 0);
    },

    async prune(retentionMs, batchSize) {
      const { rows } = await pool.query<{ pruned: number }>(queries.prune, [`${retentionMs} milliseconds`, batchSize]);
      return rows[0]?.pruned ?? 0;
    },
  };
}
