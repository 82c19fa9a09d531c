// Who is subscribed to what. Sessions subscribe and unsubscribe here; the hub compiles each
// subscription into an access class, lets the router pick the classes an event reaches, and
// re-checks every live subscription when grants change.

import type { Logger } from 'pino';
import type { Catalog } from './db/catalog.ts';
import type { Claims, RelayEvent } from './events.ts';
import type { Filter } from './filters/filter-ast.ts';
import { parseFilter } from './filters/parse-filter.ts';
import { compileAccess, type Access } from './routing/access.ts';
import { createRouter } from './routing/router.ts';
import type { ErrorCode } from './protocol/error-codes.ts';

/** The transport side of a session: a uWebSockets.js socket in production. */
export interface SubscriberSocket {
  /** Sends one text frame to this client alone. */
  send(frame: string): void;
  /** Starts receiving what is published on a channel. */
  joinChannel(channel: string): void;
  leaveChannel(channel: string): void;
}

/** Who the client is, from its verified token. */
export interface Identity {
  readonly role: string;
  readonly sub: string | null;
  readonly claims: Claims;
}

interface Subscription {
  readonly topic: string;
  readonly clientFilter: Filter | null;
  access: Access;
  channel: string;
}

/** One client connection's subscriptions. */
export interface Session {
  readonly socket: SubscriberSocket;
  identity: Identity;
  readonly subscriptions: Map<string, Subscription>;
}

export type Outcome = { readonly ok: true } | { readonly ok: false; readonly code: ErrorCode; readonly message: string };

export interface SubscriptionHub {
  open(socket: SubscriberSocket, identity: Identity): Session;
  close(session: Session): void;
  subscribe(session: Session, topic: string, filter: unknown): Outcome;
  unsubscribe(session: Session, topic: string): Outcome;
  /** New grants and topics: subscriptions they no longer allow end with `forbidden`. */
  setCatalog(catalog: Catalog): void;
  /** New claims for a session (a refreshed token): the same check, for that session alone. */
  setIdentity(session: Session, identity: Identity): void;
  /** Sends one event to every subscriber it reaches. */
  deliver(event: RelayEvent): void;
  stats(): { sessions: number; subscriptions: number; classes: number };
}

export interface SubscriptionHubOptions {
  readonly logger: Logger;
  /** Sends a frame to every socket that joined `channel` (uWebSockets.js `app.publish`). */
  readonly publish: (channel: string, frame: string) => void;
  /** Tells a client that a subscription ended because it is no longer allowed. */
  readonly notifyRevoked: (session: Session, topic: string, message: string) => void;
}

const fail = (code: ErrorCode, message: string): Outcome => ({ ok: false, code, message });

/** The hub, empty until the first catalog arrives. */
export function createSubscriptionHub(options: SubscriptionHubOptions): SubscriptionHub {
  const router = createRouter();
  const sessions = new Set<Session>();
  let catalog: Catalog = { grants: [], topics: new Set() };
  let subscriptionCount = 0;

  function compile(session: Session, topic: string, clientFilter: Filter | null) {
    const { role, claims } = session.identity;
    return compileAccess({ topic, role, claims, grants: catalog.grants, clientFilter });
  }

  function end(session: Session, subscription: Subscription): void {
    session.subscriptions.delete(subscription.topic);
    session.socket.leaveChannel(subscription.channel);
    router.leave(subscription.channel);
    subscriptionCount--;
  }

  /** Re-decides each subscription of a session; those no longer allowed end with `forbidden`. */
  function recheck(session: Session): void {
    for (const subscription of [...session.subscriptions.values()]) {
      const compiled = compile(session, subscription.topic, subscription.clientFilter);
      if (!compiled.ok) {
        end(session, subscription);
        options.notifyRevoked(session, subscription.topic, compiled.message);
        continue;
      }
      if (compiled.access.key === subscription.access.key) continue;
      // Join the new class before leaving the old one, so the router never drops a class in use.
      const channel = router.join(compiled.access);
      session.socket.joinChannel(channel);
      session.socket.leaveChannel(subscription.channel);
      router.leave(subscription.channel);
      subscription.access = compiled.access;
      subscription.channel = channel;
    }
  }

  return {
    open(socket, identity) {
      const session: Session = { socket, identity, subscriptions: new Map() };
      sessions.add(session);
      return session;
    },

    close(session) {
      if (!sessions.delete(session)) return;
      for (const subscription of [...session.subscriptions.values()]) end(session, subscription);
    },

    subscribe(session, topic, filterJson) {
      if (session.subscriptions.has(topic)) return fail('already_subscribed', `already subscribed to ${JSON.stringify(topic)}`);
      if (!catalog.topics.has(topic)) return fail('unknown_topic', `no topic ${JSON.stringify(topic)} is watched or granted`);
      let clientFilter: Filter | null = null;
      if (filterJson !== undefined) {
        const parsed = parseFilter(filterJson);
        if (!parsed.ok) return fail('bad_request', parsed.error);
        clientFilter = parsed.filter;
      }
      const compiled = compile(session, topic, clientFilter);
      if (!compiled.ok) return fail('forbidden', compiled.message);
      const channel = router.join(compiled.access);
      session.socket.joinChannel(channel);
      session.subscriptions.set(topic, { topic, clientFilter, access: compiled.access, channel });
      subscriptionCount++;
      return { ok: true };
    },

    unsubscribe(session, topic) {
      const subscription = session.subscriptions.get(topic);
      if (!subscription) return fail('not_subscribed', `not subscribed to ${JSON.stringify(topic)}`);
      end(session, subscription);
      return { ok: true };
    },

    setCatalog(next) {
      catalog = next;
      for (const session of sessions) recheck(session);
      options.logger.debug({ grants: next.grants.length, topics: next.topics.size }, 'catalog loaded');
    },

    setIdentity(session, identity) {
      session.identity = identity;
      recheck(session);
    },

    deliver(event) {
      for (const [channel, frame] of router.route(event)) options.publish(channel, frame);
    },

    stats() {
      return { sessions: sessions.size, subscriptions: subscriptionCount, classes: router.stats().classes };
    },
  };
}
