// A small TCP proxy on loopback for fault tests: the relay connects to PostgreSQL through it, and the
// test cuts the link in the ways a real network does. `blackhole()` is a half-open link: both ends
// stay connected, nothing is delivered and nothing is read (what was in flight is held, as TCP
// would retransmit it once the path heals), so only a heartbeat can tell the link is dead.
import { connect, createServer, type Server, type Socket } from 'node:net';

export interface TcpProxy {
  /** Port on 127.0.0.1 that forwards to the target. */
  readonly port: number;
  /** `url` (a postgres:// URL) with its host and port replaced by the proxy's. */
  urlFor(url: string): string;
  /** Stops forwarding in both directions and stops reading; sockets stay open, new ones wait. */
  blackhole(): void;
  /** Delivers what was held, resumes forwarding, and connects the connections that waited. */
  heal(): void;
  /** Destroys every connection on both sides (a reset link); new connections still work. */
  dropAll(): void;
  /** While `refused`, each new connection is reset at once; those open keep forwarding. */
  refuseNew(refused: boolean): void;
  /**
   * Arms a trap: the first connection whose client sends bytes containing `marker` has every later
   * reply of the server held (the server has the request; the client hears nothing) until
   * releaseReplies(). Resolves once the trap has caught a connection.
   */
  holdRepliesAfter(marker: string): Promise<void>;
  /** Resolves once the held replies contain `marker`. */
  heldRepliesContain(marker: string): Promise<void>;
  /** Delivers the held replies in ONE write (so the client reads them together) and disarms the trap. */
  releaseReplies(): void;
  /** Connections currently open (client side). */
  connections(): number;
  close(): Promise<void>;
}

interface Link {
  readonly client: Socket;
  upstream?: Socket;
  /** Chunks read but not delivered while blackholed, in order, with their destination. */
  readonly held: { to: 'client' | 'upstream'; chunk: Buffer }[];
  /** One side closed while blackholed: the other learns it only once the link heals. */
  closedWhileBlackholed: boolean;
}

/** Starts a proxy on 127.0.0.1, on a free port, forwarding to `host:port`. */
export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  let blackholed = false;
  let refusing = false;
  const links = new Set<Link>();
  let trap:
    | {
        readonly marker: Buffer;
        readonly caught: () => void;
        link?: Link;
        readonly held: Buffer[];
        readonly waiters: { marker: Buffer; resolve: () => void }[];
      }
    | undefined;

  const server: Server = createServer((client) => {
    if (refusing) {
      client.resetAndDestroy();
      return;
    }
    const link: Link = { client, held: [], closedWhileBlackholed: false };
    links.add(link);
    client.on('error', () => teardown(link));
    client.on('close', () => sideClosed(link));
    client.on('data', (chunk) => relay(link, 'upstream', chunk));
    if (blackholed) {
      // A connection made during a partition: the client's SYN "got through" to us, but nothing
      // reaches the server until the link heals.
      client.pause();
      return;
    }
    openUpstream(link);
  });

  function openUpstream(link: Link): void {
    const upstream = connect(target.port, target.host);
    link.upstream = upstream;
    upstream.on('error', () => teardown(link));
    upstream.on('close', () => sideClosed(link));
    upstream.on('data', (chunk) => relay(link, 'client', chunk));
    if (blackholed) upstream.pause();
    flush(link);
  }

  function relay(link: Link, to: 'client' | 'upstream', chunk: Buffer): void {
    if (trap && to === 'client' && trap.link === link) {
      trap.held.push(chunk);
      const held = Buffer.concat(trap.held);
      for (const waiter of trap.waiters.splice(0)) {
        if (held.includes(waiter.marker)) waiter.resolve();
        else trap.waiters.push(waiter);
      }
      return;
    }
    if (trap && to === 'upstream' && !trap.link && chunk.includes(trap.marker)) {
      trap.link = link;
      trap.caught();
    }
    const destination = to === 'client' ? link.client : link.upstream;
    if (blackholed || !destination || link.held.length > 0) {
      link.held.push({ to, chunk });
      (to === 'client' ? link.upstream : link.client)?.pause();
      return;
    }
    destination.write(chunk);
  }

  function flush(link: Link): void {
    if (blackholed || !link.upstream) return;
    for (const { to, chunk } of link.held.splice(0)) (to === 'client' ? link.client : link.upstream).write(chunk);
    link.client.resume();
    link.upstream.resume();
  }

  function sideClosed(link: Link): void {
    if (blackholed) {
      link.closedWhileBlackholed = true;
      return;
    }
    // Deliver what is still held before passing the close on.
    flush(link);
    teardown(link);
  }

  function teardown(link: Link): void {
    if (!links.delete(link)) return;
    link.client.end();
    link.upstream?.end();
    // end() flushes what was written; destroy soon after so a peer that never answers cannot hold us.
    setImmediate(() => {
      link.client.destroy();
      link.upstream?.destroy();
    });
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  if (typeof address !== 'object' || !address) throw new Error('tcp proxy: no address');
  const port = address.port;

  return {
    port,
    urlFor(url) {
      const parsed = new URL(url);
      parsed.hostname = '127.0.0.1';
      parsed.port = String(port);
      return parsed.toString();
    },
    blackhole() {
      blackholed = true;
      for (const link of links) {
        link.client.pause();
        link.upstream?.pause();
      }
    },
    heal() {
      blackholed = false;
      for (const link of [...links]) {
        if (link.closedWhileBlackholed) {
          flush(link);
          teardown(link);
        } else if (!link.upstream) {
          openUpstream(link);
        } else {
          flush(link);
        }
      }
    },
    dropAll() {
      for (const link of [...links]) {
        links.delete(link);
        link.client.destroy();
        link.upstream?.destroy();
      }
    },
    refuseNew(refused) {
      refusing = refused;
    },
    holdRepliesAfter(marker) {
      return new Promise((resolve) => {
        trap = { marker: Buffer.from(marker), caught: resolve, held: [], waiters: [] };
      });
    },
    heldRepliesContain(marker) {
      const current = trap;
      if (!current) return Promise.reject(new Error('tcp proxy: no trap armed'));
      if (Buffer.concat(current.held).includes(Buffer.from(marker))) return Promise.resolve();
      return new Promise((resolve) => current.waiters.push({ marker: Buffer.from(marker), resolve }));
    },
    releaseReplies() {
      const current = trap;
      trap = undefined;
      if (current?.link && current.held.length > 0) current.link.client.write(Buffer.concat(current.held));
    },
    connections: () => links.size,
    async close() {
      for (const link of [...links]) {
        links.delete(link);
        link.client.destroy();
        link.upstream?.destroy();
      }
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
