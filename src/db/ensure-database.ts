import { connectClient } from './connect-client.ts';

/** Creates database `name` on the server of `serverUrl` when missing; returns its URL. */
export async function ensureDatabase(serverUrl: string, name: string): Promise<string> {
  // A client ended by the server (a stop while the relay starts) fails its query; no more to say.
  const client = await connectClient(serverUrl, () => undefined);
  try {
    const { rowCount } = await client.query('select 1 from pg_database where datname = $1', [name]);
    // `name` is ours (a constant), never client input; identifiers cannot be bound parameters.
    if (!rowCount) await client.query(`create database ${client.escapeIdentifier(name)}`);
  } finally {
    await client.end();
  }
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return url.toString();
}
