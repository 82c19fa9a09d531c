// The systems a bench run compares: pg-relay, the peers of bench/peers/, and the no-database limit.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import { projectPath } from '../../src/project-root.ts';

/** How to start, prepare and speak to one system under test. */
export interface SystemSpec {
  readonly name: string;
  /** One line for the results table. */
  readonly description: string;
  readonly dialect: string;
  /** What its database needs; null: it uses none and makes its own rows (the limit). */
  readonly database: { readonly relaySchema: boolean; readonly setupSql: string } | null;
  /** Node arguments, from the project root. */
  readonly args: readonly string[];
  /** A histogram of commit-to-send seconds that it serves at /metrics, if any. */
  readonly lagMetric?: string;
  /** One-time work before the first start (an install); throws with the reason it cannot run. */
  prepare?(): Promise<void>;
}

export const SYSTEMS: Readonly<Record<string, SystemSpec>> = {
  'pg-relay': {
    name: 'pg-relay',
    description: 'pg-relay (this repository): uWebSockets.js, grants, commit-ordered cursors',
    dialect: 'pg-relay',
    database: { relaySchema: true, setupSql: 'bench/peers/pg-relay/setup.sql' },
    args: ['dist/bench/peers/pg-relay/relay.js'],
    lagMetric: 'relay_delivery_lag_seconds',
  },
  'socket.io': {
    name: 'socket.io',
    description: 'socket.io 4 gateway: pg-listen, JWT on connect, a room per tenant, an emit per notification',
    dialect: 'socket.io',
    database: { relaySchema: false, setupSql: 'bench/peers/socketio/setup.sql' },
    args: ['dist/bench/peers/socketio/gateway.js'],
  },
  postgraphile: {
    name: 'postgraphile',
    description: 'PostGraphile 5 subscriptions over LISTEN/NOTIFY (graphql-ws)',
    dialect: 'postgraphile',
    database: { relaySchema: false, setupSql: 'bench/peers/postgraphile/setup.sql' },
    args: ['--import', './bench/peers/postgraphile/polyfill.mjs', 'bench/peers/postgraphile/server.mjs'],
    async prepare() {
      // Its own package: PostGraphile's dependency tree stays out of pg-relay's install.
      // npm writes .package-lock.json last: a half-finished install has none and is redone.
      if (existsSync(projectPath('bench', 'peers', 'postgraphile', 'node_modules', '.package-lock.json'))) return;
      await promisify(execFile)('npm', ['ci', '--no-audit', '--no-fund', '--prefix', projectPath('bench', 'peers', 'postgraphile')]);
    },
  },
  'uws-raw': {
    name: 'uws-raw',
    description: 'limit: uWebSockets.js publish with no database (rows made in the server)',
    dialect: 'uws-raw',
    database: null,
    args: ['dist/bench/peers/uws-raw/server.js'],
  },
};
