// A minimal WebSocket client for the bench's subscribers: the handshake, unmasked server frames in,
// masked text frames out, pings answered. The `ws` package costs several microseconds and a few
// allocations per message; a load generator sharing two cores with the systems it measures must
// spend as little as it can per received message, and the same for every system.

import { createHash, randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { nowUs } from './clock.ts';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const OPCODE_CONTINUATION = 0x0;
const OPCODE_TEXT = 0x1;
const OPCODE_CLOSE = 0x8;
const OPCODE_PING = 0x9;
const EMPTY = Buffer.alloc(0);

/**
 * Every connection of a process reads into this one buffer (net's `onread`): no Buffer and no
 * stream event per read, which at a frame per read was a good part of a subscriber's cost. A read
 * is parsed before the next one lands here, and a partial frame left over is copied out.
 */
const READ_BUFFER = Buffer.allocUnsafe(256 * 1024);

/** Where and how to open one connection. */
export interface RawWebSocketOptions {
  readonly host: string;
  readonly port: number;
  /** Path and query of the upgrade request. */
  readonly path: string;
  /** Subprotocol offered in the upgrade (Sec-WebSocket-Protocol), if any. */
  readonly protocol?: string;
  /** Source address, so that one machine can open more connections than one address has ports. */
  readonly localAddress?: string;
}

/** What the connection tells its owner. */
export interface RawWebSocketHandlers {
  onOpen(socket: RawWebSocket): void;
  /**
   * A text frame, and when the read that completed it returned (µs of CLOCK_MONOTONIC): one clock
   * read per read, however many frames it carried.
   */
  onText(text: string, receivedUs: number): void;
  /** Once, whatever ended the connection; `code` is 1006 when no close frame arrived. */
  onClose(code: number, reason: string): void;
}

/** One client connection. */
export interface RawWebSocket {
  sendText(text: string): void;
  close(): void;
}

/** Opens a connection; the handlers learn how it went. */
export function openRawWebSocket(options: RawWebSocketOptions, handlers: RawWebSocketHandlers): RawWebSocket {
  const key = randomBytes(16).toString('base64');
  const expectedAccept = createHash('sha1').update(key + GUID).digest('base64');
  const socket: Socket = connect({
    host: options.host,
    port: options.port,
    localAddress: options.localAddress,
    onread: {
      buffer: READ_BUFFER,
      callback: (bytes) => {
        onBytes(READ_BUFFER.subarray(0, bytes));
        return true;
      },
    },
  });
  socket.setNoDelay(true);
  let open = false;
  let closed = false;
  let pending: Buffer = EMPTY;
  let fragments: Buffer[] = [];

  const finish = (code: number, reason: string): void => {
    if (closed) return;
    closed = true;
    socket.destroy();
    handlers.onClose(code, reason);
  };

  const writeFrame = (opcode: number, payload: Buffer): void => {
    if (closed || !open) return;
    const length = payload.length;
    const headerLength = length < 126 ? 2 : length < 65536 ? 4 : 10;
    const frame = Buffer.allocUnsafe(headerLength + 4 + length);
    frame[0] = 0x80 | opcode;
    if (length < 126) frame[1] = 0x80 | length;
    else if (length < 65536) {
      frame[1] = 0x80 | 126;
      frame.writeUInt16BE(length, 2);
    } else {
      frame[1] = 0x80 | 127;
      frame.writeBigUInt64BE(BigInt(length), 2);
    }
    // A zero mask is a valid mask and leaves the payload as it is: nothing to hide on loopback.
    frame.writeUInt32BE(0, headerLength);
    payload.copy(frame, headerLength + 4);
    socket.write(frame);
  };

  /** When the read being parsed returned. */
  let receivedUs = 0;

  const readFrames = (): void => {
    let offset = 0;
    while (pending.length - offset >= 2) {
      const first = pending[offset]!;
      const second = pending[offset + 1]!;
      let length = second & 0x7f;
      let header = 2;
      if (length === 126) {
        if (pending.length - offset < 4) break;
        length = pending.readUInt16BE(offset + 2);
        header = 4;
      } else if (length === 127) {
        if (pending.length - offset < 10) break;
        length = Number(pending.readBigUInt64BE(offset + 2));
        header = 10;
      }
      if (pending.length - offset < header + length) break;
      const start = offset + header;
      const end = start + length;
      offset = end;
      const opcode = first & 0x0f;
      const final = (first & 0x80) !== 0;
      if (opcode === OPCODE_TEXT || opcode === OPCODE_CONTINUATION) {
        if (!final) {
          fragments.push(Buffer.from(pending.subarray(start, end)));
          continue;
        }
        if (fragments.length > 0) {
          fragments.push(pending.subarray(start, end));
          const whole = Buffer.concat(fragments);
          fragments = [];
          handlers.onText(whole.toString('utf8'), receivedUs);
        } else {
          // Decoded where it lies: a view of the frame first would be one more object per frame.
          handlers.onText(pending.toString('utf8', start, end), receivedUs);
        }
        continue;
      }
      const payload = pending.subarray(start, end);
      if (opcode === OPCODE_PING) writeFrame(0xa, Buffer.from(payload));
      else if (opcode === OPCODE_CLOSE) {
        const code = payload.length >= 2 ? payload.readUInt16BE(0) : 1005;
        finish(code, payload.subarray(2).toString('utf8'));
        return;
      }
    }
    pending = offset === pending.length ? EMPTY : pending.subarray(offset);
  };

  const readHandshake = (): void => {
    const end = pending.indexOf('\r\n\r\n');
    if (end < 0) return;
    const head = pending.subarray(0, end).toString('latin1');
    pending = pending.subarray(end + 4);
    const status = /^HTTP\/1\.1 (\d+)/.exec(head)?.[1];
    if (status !== '101') {
      finish(1006, `upgrade refused: HTTP ${status ?? '?'}`);
      return;
    }
    if (!head.toLowerCase().includes(`sec-websocket-accept: ${expectedAccept.toLowerCase()}`)) {
      finish(1006, 'upgrade answered with a wrong Sec-WebSocket-Accept');
      return;
    }
    open = true;
    handlers.onOpen(client);
    readFrames();
  };

  socket.on('connect', () => {
    socket.write(
      `GET ${options.path} HTTP/1.1\r\nHost: ${options.host}:${options.port}\r\nUpgrade: websocket\r\n` +
        `Connection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n` +
        (options.protocol ? `Sec-WebSocket-Protocol: ${options.protocol}\r\n` : '') +
        '\r\n',
    );
  });
  /** One read: `chunk` is READ_BUFFER's, valid until this returns. */
  function onBytes(chunk: Buffer): void {
    receivedUs = nowUs();
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    if (open) readFrames();
    else readHandshake();
    if (pending.length > 0) pending = Buffer.from(pending);
  }
  socket.on('error', (error) => finish(1006, error.message));
  socket.on('close', () => finish(1006, 'connection closed without a close frame'));

  const client: RawWebSocket = {
    sendText: (text) => writeFrame(OPCODE_TEXT, Buffer.from(text, 'utf8')),
    close: () => {
      writeFrame(OPCODE_CLOSE, Buffer.from([0x03, 0xe8]));
      finish(1000, 'closed by the bench');
    },
  };
  return client;
}
