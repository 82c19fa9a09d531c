import { createServer } from 'node:net';

/** Asks the OS for a TCP port that is free right now on `host`. */
export function findFreePort(host = '127.0.0.1'): Promise<number> {
  return bindOnce(0, host).then((port) => {
    if (port === undefined) throw new Error('no free port');
    return port;
  });
}

/** `preferred` when it is free on `host`, else any free port. */
export async function preferPort(preferred: number, host = '127.0.0.1'): Promise<number> {
  return (await bindOnce(preferred, host)) ?? findFreePort(host);
}

function bindOnce(port: number, host: string): Promise<number | undefined> {
  return new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.once('error', () => resolve(undefined));
    server.listen(port, host, () => {
      const address = server.address();
      const bound = typeof address === 'object' && address ? address.port : undefined;
      server.close(() => resolve(bound));
    });
  });
}
