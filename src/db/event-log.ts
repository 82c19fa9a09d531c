import type pg from 'pg';
import type { LogPosition } from '../cursor.ts';
import { parseEventBody, type EventBody } from './event-body.ts';
import { loadSql } from './sql.ts';

export interface LogIdentity {
  readonly epoch: string;
  readonly signingKey: string;
}

/** An event read from the log. */
export interface LoggedEvent {
  readonly pos: number;
  readonly id: number;
  /** Commit time, seconds since the epoch. */
  readonly ts: number;
  readonly topic: string;
  readonly event: string;
  readonly body: EventBody;
}

/** A page of the log, and how far retention had pruned it when the page was read. */
export interface LogPage {
  readonly events: readonly LoggedEvent[];
  readonly prunedThrough: number;
}

/** Read access to relay's event log. */
export interface EventLog {
  /** The log's epoch (the first part of every cursor) and the key that signs its notifications. */
  identity(): Promise<LogIdentity>;
  /** Events after `after` and at most `upTo`, of one topic or all (null), in commit order. */
  readPage(after: LogPosition, upTo: LogPosition, topic: string | null, limit: number): Promise<LogPage>;
  /**
   * Events of the commits after position `afterPos` through `throughPos`, in commit order, at most
   * `limit`: live delivery's read, which always starts where a whole commit ended.
   */
  readCommits(afterPos: number, throughPos: number, limit: number): Promise<LoggedEvent[]>;
  /** The newest event's position ({0, 0} for an empty log), once every transaction that took a position before is visible. */
  head(): Promise<LogPosition>;
  /** Whether the event at `position` is in the log. */
  contains(position: LogPosition): Promise<boolean>;
  /** One batch of retention; returns how many commits it deleted. */
  prune(retentionMs: number, batchSize: number): Promise<number>;
}

interface PageRow {
  pruned_through: string;
  pos: string | null;
  id: string;
  ts: number;
  topic: string;
  event: string;
  data: unknown;
  old: unknown;
  changed: unknown;
}

/** The events of rows of the log; a row that does not parse is skipped, never delivered half. */
function loggedEvents(rows: readonly Omit<PageRow, 'pruned_through'>[]): LoggedEvent[] {
  const events: LoggedEvent[] = [];
  for (const row of rows) {
    if (row.pos === null) continue;
    const body = parseEventBody(row.data, row.old, row.changed);
    // Rows the triggers wrote always parse.
    if (!body) continue;
    events.push({ pos: Number(row.pos), id: Number(row.id), ts: row.ts, topic: row.topic, event: row.event, body });
  }
  return events;
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
    exists: loadSql('event-exists'),
  };

  /** Waits until every committer that took a position is visible (see sql/wait-for-committers.sql). */
  async function waitForCommitters(): Promise<void> {
    const client = await pool.connect();
    try {
      await client.query('begin');
      await client.query(queries.waitForCommitters);
      await client.query('commit');
    } catch (error) {
      // The original error says what went wrong; a failed rollback on a broken link adds nothing.
      await client.query('rollback').catch(() => undefined);
      throw error;
    } finally {
      client.release();
    }
  }

  return {
    async identity() {
      const { rows } = await pool.query<{ epoch: string; signing_key: string }>(queries.identity);
      const row = rows[0];
      if (!row) throw new Error('relay.log_identity is empty: were the migrations applied?');
      return { epoch: row.epoch, signingKey: row.signing_key };
    },

    async readPage(after, upTo, topic, limit) {
      const { rows } = await pool.query<PageRow>(queries.page, [after.pos, after.id, upTo.pos, upTo.id, topic, limit]);
      return { events: loggedEvents(rows), prunedThrough: Number(rows[0]?.pruned_through ?? 0) };
    },

    async readCommits(afterPos, throughPos, limit) {
      const { rows } = await pool.query<PageRow>(queries.commits, [afterPos, throughPos, limit]);
      return loggedEvents(rows);
    },

    async head() {
      await waitForCommitters();
      const { rows } = await pool.query<{ pos: string; id: string }>(queries.head);
      const row = rows[0];
      return { pos: Number(row?.pos ?? 0), id: Number(row?.id ?? 0) };
    },

    async contains(position) {
      const { rows } = await pool.query<{ present: boolean }>(queries.exists, [position.pos, position.id]);
      return rows[0]?.present === true;
    },

    async prune(retentionMs, batchSize) {
      const { rows } = await pool.query<{ pruned: number }>(queries.prune, [`${retentionMs} milliseconds`, batchSize]);
      return rows[0]?.pruned ?? 0;
    },
  };
}
