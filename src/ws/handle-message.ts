// One client frame in, replies out. Pure protocol logic over the hub and a token verifier; the
// socket is reached only through the session.

import type { Logger } from 'pino';
import type { TokenVerifier } from '../auth/verify-token.ts';
import { parseClientMessage } from '../protocol/client-messages.ts';
import {
  authedFrame,
  errorFrame,
  pongFrame,
  subscribedFrame,
  unsubscribedFrame,
} from '../protocol/server-frames.ts';
import type { Session, SubscriptionHub } from '../subscription-hub.ts';
import { identityOf } from './identity.ts';

export interface MessageContext {
  readonly hub: SubscriptionHub;
  readonly verifier: TokenVerifier;
  readonly logger: Logger;
  readonly connectionId: number;
}

/** Handles one text frame of a session; every outcome is a reply frame, never a throw. */
export async function handleClientMessage(context: MessageContext, session: Session, text: string): Promise<void> {
  const parsed = parseClientMessage(text);
  if (!parsed.ok) {
    session.socket.send(errorFrame(parsed.error));
    return;
  }
  const message = parsed.message;
  const { hub } = context;
  switch (message.type) {
    case 'ping':
      session.socket.send(pongFrame(message.ref));
      return;
    case 'subscribe': {
      const outcome = hub.subscribe(session, message.topic, message.filter);
      session.socket.send(
        outcome.ok
          ? subscribedFrame(message.topic, message.ref)
          : errorFrame({ code: outcome.code, message: outcome.message, topic: message.topic, ref: message.ref }),
      );
      return;
    }
    case 'unsubscribe': {
      const outcome = hub.unsubscribe(session, message.topic);
      session.socket.send(
        outcome.ok
          ? unsubscribedFrame(message.topic, message.ref)
          : errorFrame({ code: outcome.code, message: outcome.message, topic: message.topic, ref: message.ref }),
      );
      return;
    }
    case 'auth': {
      try {
        const verified = await context.verifier.verify(message.token);
        // Replies first: subscriptions that the new claims end are reported after `authed`.
        session.socket.send(authedFrame(verified.exp, message.ref));
        hub.setIdentity(session, identityOf(verified));
      } catch (error) {
        const reason = tokenReason(error);
        context.logger.info({ connection: context.connectionId, reason }, 'auth: refreshed token refused');
        session.socket.send(errorFrame({ code: 'bad_request', message: `token refused: ${reason}`, ref: message.ref }));
      }
      return;
    }
  }
}

function tokenReason(error: unknown): string {
  if (error && typeof error === 'object' && 'reason' in error && typeof error.reason === 'string') return error.reason;
  return 'invalid token';
}
