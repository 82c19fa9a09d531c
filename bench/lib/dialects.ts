// Every system's dialect by name, for the subscriber processes (which receive the name over IPC).
import type { Dialect } from './dialect.ts';
import { pgRelayDialect } from '../peers/pg-relay/dialect.ts';
import { postgraphileDialect } from '../peers/postgraphile/dialect.ts';
import { socketIoDialect } from '../peers/socketio/dialect.ts';
import { uwsRawDialect } from '../peers/uws-raw/dialect.ts';

const DIALECTS: Readonly<Record<string, Dialect>> = {
  'pg-relay': pgRelayDialect,
  'socket.io': socketIoDialect,
  postgraphile: postgraphileDialect,
  'uws-raw': uwsRawDialect,
};

/** The dialect called `name`; throws for an unknown one. */
export function dialectNamed(name: string): Dialect {
  const dialect = DIALECTS[name];
  if (!dialect) throw new Error(`no dialect named ${name}`);
  return dialect;
}
