import { randomBytes } from 'node:crypto';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import WebSocket from 'ws';

/** A parsed server frame. */
export type Frame = Record<string, unknown> & { type: string };

/** A real WebSocket client that queues what the server sends, for tests to await. */
export interface TestClient {
  readonly socket: WebSocket;
  send(message: unknown): void;
  sendRaw(data: string | Buffer): void;
  /** The next frame (optionally the next one matching `accept`; others are kept in order). */
  next(accept?: (frame: Frame) => boolean): Promise<Frame>;
  /** The next `n` frames matching `accept`. */
  take(n: number, accept?: (frame: Frame) => boolean): Promise<Frame[]>;
  /** Frames received and not yet taken. */
  buffered(): readonly Frame[];
  /** Resolves with the close code once the server closes the connection. */
  closed(): Promise<{ code: number; reason: string }>;
  close(): Promise<void>;
}

/**
 * A client's TCP socket: paused, it stops reading, and the kernel's buffers then the relay's fill
 * up. Its local port names the connection in /proc/net/tcp.
 */
export type PausableSocket = { pause(): void; resume(): void; readonly localPort: number };

/** The TCP socket under `client`'s WebSocket (ws keeps it in `_socket`), to stop and restart reading. */
export function tcpSocketOf(client: TestClient): PausableSocket {
  return (client.socket as unknown as { _socket: PausableSocket })._socket;
}

/** Writes bytes to `client`'s TCP socket under its WebSocket: a frame's header alone, say. */
export function writeRawBytes(client: TestClient, bytes: Buffer): void {
  (client.socket as unknown as { _socket: { write(bytes: Buffer): boolean } })._socket.write(bytes);
}

/** Opens a client on `url` and waits for the server's welcome frame. */
export async function connectClient(url: string): Promise<TestClient & { welcome: Frame }> {
  const socket = new WebSocket(url);
  const queue: Frame[] = [];
  const waiters: { accept: (frame: Frame) => boolean; resolve: (frame: Frame) => void; reject: (error: Error) => void }[] = [];
  let closeInfo: { code: number; reason: string } | undefined;
  const closeWaiters: ((info: { code: number; reason: string }) => void)[] = [];

  socket.on('message', (data, isBinary) => {
    const frame = JSON.parse(isBinary ? String(data) : data.toString()) as Frame;
    const index = waiters.findIndex((waiter) => waiter.accept(frame));
    if (index >= 0) {
      const [waiter] = waiters.splice(index, 1);
      waiter!.resolve(frame);
    } else {
      queue.push(frame);
    }
  });
  socket.on('close', (code, reason) => {
    closeInfo = { code, reason: reason.toString() };
    for (const waiter of waiters.splice(0)) waiter.reject(new Error(`connection closed (${code}) while waiting for a frame`));
    for (const resolve of closeWaiters.splice(0)) resolve(closeInfo);
  });

  const next = (accept: (frame: Frame) => boolean = () => true): Promise<Frame> => {
    const index = queue.findIndex(accept);
    if (index >= 0) return Promise.resolve(queue.splice(index, 1)[0]!);
    if (closeInfo) return Promise.reject(new Error(`connection closed (${closeInfo.code})`));
    return new Promise((resolve, reject) => waiters.push({ accept, resolve, reject }));
  };

  await new Promise<void>((resolve, reject) => {
    socket.once('open', () => resolve());
    socket.once('error', reject);
    socket.once('unexpected-response', (_request, response) => reject(new Error(`upgrade refused: ${response.statusCode}`)));
  });
  const client: TestClient = {
    socket,
    send: (message) => socket.send(JSON.stringify(message)),
    sendRaw: (data) => socket.send(data),
    next,
    async take(n, accept) {
      const frames: Frame[] = [];
      for (let i = 0; i < n; i++) frames.push(await next(accept));
      return frames;
    },
    buffered: () => queue,
    closed: () => (closeInfo ? Promise.resolve(closeInfo) : new Promise((resolve) => closeWaiters.push(resolve))),
    async close() {
      if (closeInfo) return;
      const done = client.closed();
      socket.close();
      await done;
    },
  };
  const welcome = await next((frame) => frame.type === 'welcome');
  return Object.assign(client, { welcome });
}

/** Tries an upgrade that the server should refuse; resolves with the HTTP status and JSON body. */
export function upgradeRefusal(
  url: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, { headers });
    socket.once('open', () => {
      socket.close();
      reject(new Error('the upgrade was accepted'));
    });
    socket.once('unexpected-response', (_request, response) => readRefusal(response).then(resolve, reject));
    socket.once('error', (error) => reject(error));
  });
}

/**
 * Like upgradeRefusal, but sends `target` (the request line's path and query) byte for byte: a
 * WebSocket client parses its URL first, which drops a `#...` part that a raw request may still send.
 */
export function rawUpgradeRefusal(httpUrl: string, target: string): Promise<{ status: number; body: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const request = httpRequest(httpUrl, {
      path: target,
      headers: {
        connection: 'Upgrade',
        upgrade: 'websocket',
        'sec-websocket-version': '13',
        'sec-websocket-key': randomBytes(16).toString('base64'),
      },
    });
    request.once('upgrade', (_response, socket) => {
      socket.destroy();
      reject(new Error('the upgrade was accepted'));
    });
    request.once('response', (response) => readRefusal(response).then(resolve, reject));
    request.once('error', reject);
    request.end();
  });
}

/** A refused upgrade's status and JSON body, once the response has ended. */
function readRefusal(response: IncomingMessage): Promise<{ status: number; body: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    let text = '';
    response.on('data', (chunk: Buffer) => (text += chunk.toString()));
    response.on('end', () => {
      try {
        resolve({ status: response.statusCode ?? 0, body: JSON.parse(text) as Record<string, unknown> });
      } catch (error) {
        reject(new Error(`refusal body is not JSON: ${text}`, { cause: error }));
      }
    });
  });
}
