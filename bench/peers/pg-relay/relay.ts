// pg-relay as a bench system under test (bench/peers/README.md): the relay of src/, configured from
// the environment like `npm start`, printing the ready line the harness waits for.
import { createRelay } from '../../../src/app.ts';
import { loadConfig } from '../../../src/config.ts';
import { createLogger } from '../../../src/logger.ts';

const config = loadConfig({ LOG_LEVEL: 'warn', RELAY_EXAMPLE: 'false', ...process.env });
const relay = createRelay(config, createLogger(config.logLevel));
process.on('SIGTERM', () => {
  relay.stop().then(
    () => process.exit(0),
    () => process.exit(1),
  );
});
const info = await relay.start();
process.stdout.write(`${JSON.stringify({ ready: true, port: info.port })}\n`);
