// One client frame in, replies out. Pure protocol logic over the hub and a token verifier; the
// socket is reached only through the session.

import { refusalCause, refusalReason } from '../auth/token-error.ts';
import type { TokenVerifier } from '../auth/verify-token.ts';
import { parseClientMessage, type MessageRef } from '../protocol/client-messages.ts';
import type { FrameShapeLimits } from '../protocol/frame-shape.ts';
import {
  authedFrame,
  pongFrame,
  subscribedFrame,
  unsubscribedFrame,
} from '../protocol/server-frames.ts';
import { decodeCursor, type Cursor } from '../cursor.ts';
import { startReplay, type ReplayContext } from '../replay.ts';
import type { Session, SubscriptionHub } from '../subscription-hub.ts';
import { identityOf } from './identity.ts';
import type { RateDecision } from './rate-limit.ts';

export interface MessageContext {
  readonly hub: SubscriptionHub;
  readonly verifier: TokenVerifier;
  readonly replay: ReplayContext;
  /** A refreshed token was accepted: its expiry replaces the connection's. */
  readonly onAuthed?: (exp: number | null) => void;
  /** Charges this many more messages to the connection's budget (see MessageRateLimiter.takeMore); closes it on 'disconnect'. */
  readonly takeMore?: (count: number) => RateDecision;
  /** How deep and how many numbers a frame may be before it is read (the defaults' when not given). */
  readonly frameShape?: FrameShapeLimits;
}

/** Handles one text frame of a session; every outcome is a reply frame, never a throw. */
export async function handleClientMessage(context: MessageContext, session: Session, text: string): Promise<void> {
  const parsed = parseClientMessage(text, context.frameShape);
  if (!parsed.ok) {
    // The reason only, never the frame: it may hold a token.
    session.socket.logger().debug({ reason: parsed.error.message }, 'bad request');
    session.socket.sendError(parsed.error);
    return;
  }
  const message = parsed.message;
  const { hub } = context;
  switch (message.type) {
    case 'ping':
      session.socket.send(pongFrame(message.ref));
      return;
    case 'subscribe': {
      const { topic, ref } = message;
      let since: Cursor | undefined;
      if (message.since !== undefined) {
        const cursor = decodeCursor(message.since);
        if (!cursor) {
          session.socket.sendError({ code: 'bad_request', message: 'since: not a cursor of pg-relay', topic, ref });
          return;
        }
        if (cursor.epoch !== context.replay.epoch) {
          const reason = 'since: the cursor is from another event log (was the database recreated?)';
          session.socket.sendError({ code: 'cursor_expired', message: reason, topic, ref });
          return;
        }
        since = cursor;
      }
      const outcome = hub.subscribe(session, topic, { filter: message.filter, leaves: message.leaves }, since, ref);
      if (!outcome.ok) {
        session.socket.sendError({ code: outcome.code, message: outcome.message, topic, ref });
        return;
      }
      if (!since) {
        session.socket.send(subscribedFrame(topic, ref));
        return;
      }
      await resume(context, session, topic, since, ref);
      return;
    }
    case 'unsubscribe': {
      const outcome = hub.unsubscribe(session, message.topic);
      if (outcome.ok) session.socket.send(unsubscribedFrame(message.topic, message.ref));
      else session.socket.sendError({ code: outcome.code, message: outcome.message, topic: message.topic, ref: message.ref });
      return;
    }
    case 'auth': {
      // An auth re-decides every subscription of the connection (hub.setIdentity), as many
      // subscribes would: charged as one message per subscription on top of its own. Charged as
      // one, 100 auths a second over 100 subscriptions with large filters took 7 cores.
      const subscriptions = session.subscriptions.size;
      const decision = subscriptions > 0 ? (context.takeMore?.(subscriptions) ?? 'accept') : 'accept';
      // 'disconnect': the connection is being closed (takeMore did it).
      if (decision === 'disconnect') return;
      if (decision === 'refuse') {
        const reason = `an auth counts as one message per subscription (${subscriptions} more): over the message rate; this message was dropped`;
        session.socket.sendError({ code: 'rate_limited', message: reason, ref: message.ref });
        return;
      }
      try {
        const verified = await context.verifier.verify(message.token);
        // Replies first: subscriptions that the new claims end are reported after `authed`.
        session.socket.send(authedFrame(verified.exp, message.ref));
        const identity = identityOf(verified);
        hub.setIdentity(session, identity);
        context.onAuthed?.(verified.exp);
        session.socket.logger().debug({ role: identity.role, sub: identity.sub }, 'auth: claims replaced');
      } catch (error) {
        const reason = refusalReason(error);
        session.socket.logger().info({ reason, cause: refusalCause(error) }, 'auth: refreshed token refused');
        session.socket.sendError({ code: 'bad_request', message: `token refused: ${reason}`, ref: message.ref });
      }
      return;
    }
  }
}

/** Replays the log after `since`; `subscribed` is sent only once the cursor is known to be in the log. */
async function resume(context: MessageContext, session: Session, topic: string, since: Cursor, ref: MessageRef | undefined) {
  try {
    const started = await startReplay(context.replay, session, topic, since, () => {
      context.hub.answered(session, topic);
      session.socket.send(subscribedFrame(topic, ref));
    });
    if (!started.ok) session.socket.sendError({ code: started.code, message: started.message, topic, ref });
  } catch (error) {
    // The log cannot be read: the client reconnects and resumes from the same cursor.
    session.socket.logger().warn({ err: error, topic }, 'cannot start a replay');
    context.hub.unsubscribe(session, topic);
    session.socket.end(1011, 'event log unavailable');
  }
}
