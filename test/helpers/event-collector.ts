// Reads every frame a test client receives, as it arrives, so that a subscriber under a continuous
// stream never piles frames up and the test can await "the frame that says X" at any point.
import type { Frame, TestClient } from './ws-client.ts';

export interface FrameCollector {
  /** Every frame received so far, in arrival order. */
  readonly frames: readonly Frame[];
  /** The events of `topic` received so far, in arrival order. */
  events(topic: string): Frame[];
  /** The cursor of the last event of `topic` received (undefined before the first). */
  lastCursor(topic: string): string | undefined;
  /**
   * The first frame at or after index `after` (default 0) that satisfies `accept`, now or when it
   * arrives; rejects naming `what` if none comes within `timeoutMs` or the connection closes.
   */
  waitFor(accept: (frame: Frame) => boolean, what: string, options?: { after?: number; timeoutMs?: number }): Promise<Frame>;
  /** Resolves once the connection is closed and every frame read. */
  readonly ended: Promise<void>;
}

interface Waiter {
  readonly accept: (frame: Frame) => boolean;
  readonly after: number;
  readonly resolve: (frame: Frame) => void;
  readonly reject: (error: Error) => void;
}

/** Starts reading `client`: from now on nothing else should call its next()/take(). */
export function collectFrames(client: TestClient): FrameCollector {
  const frames: Frame[] = [];
  const waiters = new Set<Waiter>();
  let closed = false;
  let closedAs = 'the connection closed';
  let socketError: Error | undefined;
  // Kept for the failure message: why a connection dropped (1006) is otherwise invisible.
  client.socket.on('error', (error) => (socketError = error));

  const ended = (async () => {
    for (;;) {
      let frame: Frame;
      try {
        frame = await client.next();
      } catch {
        // next() rejects only once the connection is closed: the collection is complete.
        break;
      }
      frames.push(frame);
      for (const waiter of [...waiters]) {
        if (frames.length - 1 >= waiter.after && waiter.accept(frame)) {
          waiters.delete(waiter);
          waiter.resolve(frame);
        }
      }
    }
    const { code, reason } = await client.closed();
    closedAs =
      `the connection closed (code ${code}${reason ? `, ${reason}` : ''}` +
      `${socketError ? `; client socket error: ${socketError.message}` : ''}; after ${frames.length} frames)`;
    closed = true;
    for (const waiter of [...waiters]) {
      waiters.delete(waiter);
      waiter.reject(new Error(closedAs));
    }
  })();

  return {
    frames,
    events: (topic) => frames.filter((frame) => frame.type === 'event' && frame.topic === topic),
    lastCursor(topic) {
      for (let index = frames.length - 1; index >= 0; index--) {
        const frame = frames[index]!;
        if (frame.type === 'event' && frame.topic === topic) return String(frame.cursor);
      }
      return undefined;
    },
    waitFor(accept, what, options = {}) {
      const after = options.after ?? 0;
      const timeoutMs = options.timeoutMs ?? 10_000;
      const found = frames.slice(after).find(accept);
      if (found) return Promise.resolve(found);
      if (closed) return Promise.reject(new Error(`${what}: ${closedAs} first`));
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(waiter);
          reject(new Error(`${what}: not received within ${timeoutMs} ms`));
        }, timeoutMs);
        const waiter: Waiter = {
          accept,
          after,
          resolve: (frame) => {
            clearTimeout(timer);
            resolve(frame);
          },
          reject: (error) => {
            clearTimeout(timer);
            reject(new Error(`${what}: ${error.message}`));
          },
        };
        waiters.add(waiter);
      });
    },
    ended,
  };
}
