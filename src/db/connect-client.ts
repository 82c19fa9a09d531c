import pg from 'pg';

/**
 * A connected pg.Client for a one-off task (migrations, creating a database). PostgreSQL may end
 * its connection at any time (a restart, a failover, `idle_session_timeout`, an operator's
 * pg_terminate_backend); a pg.Client then emits 'error', and with no listener that event throws:
 * the process died with Node's trace instead of failing its start with one line, or of going on
 * when the client was only idle. The query in progress, or the next one, fails on its own, and
 * `onError` hears about the rest.
 */
export async function connectClient(connectionString: string, onError: (error: Error) => void): Promise<pg.Client> {
  const client = new pg.Client({ connectionString });
  client.on('error', onError);
  await client.connect();
  return client;
}
