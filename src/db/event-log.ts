import type pg from 'pg';
import { parseEventBody, type EventBody } from './notification.ts';
import { loadSql } from './sql.ts';

export interface LogIdentity {
  readonly epoch: string;
  readonly signingKey: string;
}

/** Read access to relay's event log. */
export interface EventLog {
  /** The log's epoch (the first part of every cursor) and the key that signs its notifications. */
  identity(): Promise<LogIdentity>;
  /** Bodies of the given events, in one query; missing or malformed rows are absent from the map. */
  fetchBodies(ids: readonly number[]): Promise<Map<number, EventBody>>;
}

/** The event log over a pool. */
export function createEventLog(pool: pg.Pool): EventLog {
  const queries = { bodies: loadSql('fetch-event-bodies'), identity: loadSql('log-identity') };
  return {
    async identity() {
      const { rows } = await pool.query<{ epoch: string; signing_key: string }>(queries.identity);
      const row = rows[0];
      if (!row) throw new Error('relay.log_identity is empty: were the migrations applied?');
      return { epoch: row.epoch, signingKey: row.signing_key };
    },
    async fetchBodies(ids) {
      const { rows } = await pool.query<{ id: string; data: unknown; old: unknown; changed: unknown }>(
        queries.bodies,
        [ids],
      );
      const bodies = new Map<number, EventBody>();
      for (const row of rows) {
        const body = parseEventBody(row.data, row.old, row.changed);
        if (body) bodies.set(Number(row.id), body);
      }
      return bodies;
    },
  };
}
