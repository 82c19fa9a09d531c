// Who is subscribed to what. Sessions subscribe and unsubscribe here; the hub compiles each
// subscription into an access class, lets the router pick the classes an event reaches, and
// re-checks every live subscription when grants change. A subscription resuming from a cursor
// is "catching up": it is not on its class's channel yet, and live events it must receive are
// held for it until the replay from the log has sent everything before them.

import type { Logger } from 'pino';
import { comparePositions, type LogPosition } from './cursor.ts';
import type { Catalog } from './db/catalog.ts';
import type { Claims, RelayEvent } from './events.ts';
import type { Filter } from './filters/filter-ast.ts';
import { parseFilter, type FilterLimits } from './filters/parse-filter.ts';
import type { MessageRef } from './protocol/client-messages.ts';
import type { ErrorCode } from './protocol/error-codes.ts';
import type { ErrorFrameFields } from './protocol/server-frames.ts';
import { compileAccess, renderEvent, type Access } from './routing/access.ts';
import { createRouter } from './routing/router.ts';

/** The transport side of a session: a uWebSockets.js socket in production. */
export interface SubscriberSocket {
  /** Sends one text frame to this client alone. */
  send(frame: string): void;
  /**
   * Runs `sends` with this client's writes gathered: the frames it sends leave in as few system
   * calls as fit (uWebSockets.js cork), where each frame sent alone costs one.
   */
  gathered(sends: () => void): void;
  /** Sends an error frame (counted by code in the metrics). */
  sendError(fields: ErrorFrameFields): void;
  /** Starts receiving what is published on a channel. */
  joinChannel(channel: string): void;
  leaveChannel(channel: string): void;
  /** Closes the connection (e.g. 4008 when it cannot keep up). */
  end(code: number, reason: string): void;
  /** Whether the client has read most of what was sent (or the connection is gone): a replay may send on. */
  writable(): boolean;
  /** Bytes sent to this client and not yet taken by the kernel (0 once the connection is gone). */
  unsentBytes(): number;
  /** Resolves once writable() holds. */
  whenWritable(): Promise<void>;
  /** The connection's logger: every line about it carries its connection id. */
  logger(): Logger;
}

/** Who the client is, from its verified token. */
export interface Identity {
  readonly role: string;
  readonly sub: string | null;
  readonly claims: Claims;
}

/** A live event held for a catching-up subscription, and its frame under the subscription's access. */
interface HeldEvent {
  /** Kept whole, to render again if the access changes: it counts too, whatever the frame shows of it. */
  readonly event: RelayEvent;
  readonly eventBytes: number;
  readonly frame: string;
}

/** Live events held for a subscription while its replay runs. */
interface CatchUp {
  /** Events at or before this position are the replay's (or the client's) already. */
  readonly after: LogPosition;
  held: HeldEvent[];
  heldBytes: number;
  /** The replay has sent everything up to where live delivery was when it began. */
  replayDone: boolean;
}

interface Subscription {
  readonly topic: string;
  readonly clientFilter: Filter | null;
  access: Access;
  /** The class's channel; joined once catching up is over. */
  channel: string;
  catchUp: CatchUp | null;
  /**
   * A subscribe with `since` is answered once its first page is read; until then, this holds its
   * `ref`, for a refusal that comes first (its grant revoked meanwhile) to carry it instead.
   */
  unanswered: { readonly ref?: MessageRef } | null;
}

/** One client connection's subscriptions. */
export interface Session {
  readonly socket: SubscriberSocket;
  identity: Identity;
  readonly subscriptions: Map<string, Subscription>;
  /**
   * Bytes held for all its catching-up subscriptions: the frames (UTF-8) and the events kept to
   * render them again (their JSON text's length).
   */
  heldBytes: number;
}

/** What a subscription asks to see: a client filter (JSON, parsed here) and whether it wants `left` frames. */
export interface SubscriptionView {
  readonly filter?: unknown;
  readonly leaves?: boolean;
}

export type Outcome = { readonly ok: true } | { readonly ok: false; readonly code: ErrorCode; readonly message: string };

export interface SubscriptionHub {
  open(socket: SubscriberSocket, identity: Identity): Session;
  close(session: Session): void;
  /**
   * Subscribes; with `resumeAfter`, the subscription starts catching up: the caller replays the
   * log after that position up to `position()` with render(), then calls finishCatchUp().
   */
  subscribe(session: Session, topic: string, view: SubscriptionView, resumeAfter?: LogPosition, ref?: MessageRef): Outcome;
  /** The `subscribed` reply to a subscribe with `since` is going out: a later refusal answers nothing. */
  answered(session: Session, topic: string): void;
  unsubscribe(session: Session, topic: string): Outcome;
  /** The frame a session's subscription must receive for an event of the log, or null. */
  render(session: Session, topic: string, event: RelayEvent): string | null;
  /**
   * The catch-up of a session's subscription, as an opaque token, or null when it is live or gone.
   * A replay keeps the token it started with: after an unsubscribe and a new subscribe, the new
   * subscription's token differs, so a stale replay stops instead of sending into it.
   */
  catchUpToken(session: Session, topic: string): object | null;
  /**
   * The replay holding `token` is over: held events follow, then the subscription goes live.
   * Returns how many held event frames were sent.
   */
  finishCatchUp(session: Session, topic: string, token: object): number;
  /** New grants and topics: subscriptions they no longer allow end with `forbidden`. */
  setCatalog(catalog: Catalog): void;
  /** New claims for a session (a refreshed token): the same check, for that session alone. */
  setIdentity(session: Session, identity: Identity): void;
  /**
   * Sends one event, at `position` in the log, to every subscriber it reaches; `eventBytes` is
   * about what keeping it costs (its JSON text's length), for subscriptions that hold it. Returns
   * how many event frames were sent (one per client reached), for the metrics.
   */
  deliver(event: RelayEvent, position: LogPosition, eventBytes?: number): number;
  /** Whether deliver() could send an event of this topic to anyone: some subscription to it, live or catching up. */
  wants(topic: string): boolean;
  /** The position of the last event delivered: a replay's upper bound. */
  position(): LogPosition;
  stats(): { sessions: number; subscriptions: number; classes: number };
}

export interface SubscriptionHubOptions {
  readonly logger: Logger;
  /**
   * Sends a frame to every socket that joined `channel` (uWebSockets.js `app.publish`); returns
   * how many sockets that is.
   */
  readonly publish: (channel: string, frame: string) => number;
  /**
   * Tells a client that a subscription ended because it is no longer allowed; `ref` is the one of
   * its subscribe when that was not answered yet.
   */
  readonly notifyRevoked: (session: Session, topic: string, message: string, ref?: MessageRef) => void;
  /** The position of the last event delivered live (the event stream's). */
  readonly livePosition: () => LogPosition;
  /**
   * A connection's unsent data, held live events included, past which it is closed as too slow
   * (maxBackpressureBytes: what the client has not taken is the same whether uWS or the hub holds it).
   */
  readonly maxUnsentBytes?: number;
  /** Close code for a client that cannot keep up (4008). */
  readonly slowConsumerCloseCode?: number;
  /** Subscriptions one session may hold; more give `too_many_subscriptions`. */
  readonly maxSubscriptionsPerSession?: number;
  /** Limits of a client's filter (defaults: DEFAULT_FILTER_LIMITS). */
  readonly filterLimits?: Partial<FilterLimits>;
}

const fail = (code: ErrorCode, message: string): Outcome => ({ ok: false, code, message });

/** The hub, empty until the first catalog arrives. */
export function createSubscriptionHub(options: SubscriptionHubOptions): SubscriptionHub {
  const router = createRouter();
  const sessions = new Set<Session>();
  /** Catching-up subscriptions by topic: live events reach them one by one, not by channel. */
  const catchingUp = new Map<string, Set<{ session: Session; subscription: Subscription }>>();
  const maxUnsentBytes = options.maxUnsentBytes ?? 4 * 1024 * 1024;
  const maxSubscriptions = options.maxSubscriptionsPerSession ?? Infinity;
  let catalog: Catalog = { grants: [], topics: new Set() };
  let subscriptionCount = 0;

  function compile(session: Session, topic: string, clientFilter: Filter | null, leaves: boolean) {
    const { role, claims } = session.identity;
    return compileAccess({ topic, role, claims, grants: catalog.grants, clientFilter, leaves });
  }

  function isCurrent(session: Session, subscription: Subscription): boolean {
    return session.subscriptions.get(subscription.topic) === subscription;
  }

  /** Ends a subscription of the session; one already ended stays so (nothing is left twice). */
  function end(session: Session, subscription: Subscription): void {
    if (!isCurrent(session, subscription)) return;
    session.subscriptions.delete(subscription.topic);
    if (subscription.catchUp) stopCatchingUp(session, subscription);
    else session.socket.leaveChannel(subscription.channel);
    router.leave(subscription.channel);
    subscriptionCount--;
  }

  function stopCatchingUp(session: Session, subscription: Subscription): void {
    session.heldBytes -= subscription.catchUp?.heldBytes ?? 0;
    subscription.catchUp = null;
    const waiting = catchingUp.get(subscription.topic);
    if (!waiting) return;
    for (const entry of waiting) if (entry.subscription === subscription && entry.session === session) waiting.delete(entry);
    if (waiting.size === 0) catchingUp.delete(subscription.topic);
  }

  /** Sends what was held, then hands the subscription over to its channel; returns how many frames it sent. */
  function goLive(session: Session, subscription: Subscription): number {
    const held = subscription.catchUp?.held ?? [];
    stopCatchingUp(session, subscription);
    if (held.length > 0) session.socket.gathered(() => held.forEach(({ frame }) => session.socket.send(frame)));
    session.socket.joinChannel(subscription.channel);
    return held.length;
  }

  /** Holds the event for a catching-up subscription; returns how many frames went out meanwhile. */
  function holdOrSend(
    session: Session,
    subscription: Subscription,
    catchUp: CatchUp,
    event: RelayEvent,
    position: LogPosition,
    eventBytes: number,
  ): number {
    if (comparePositions(position, catchUp.after) <= 0) return 0;
    const frame = renderEvent(subscription.access, event, new Map());
    if (catchUp.replayDone) {
      // The client's cursor was ahead of this relay; this is the first event after it.
      if (frame !== null) catchUp.held.push({ event, eventBytes, frame });
      return goLive(session, subscription);
    }
    if (frame === null) return 0;
    const bytes = eventBytes + Buffer.byteLength(frame);
    catchUp.held.push({ event, eventBytes, frame });
    catchUp.heldBytes += bytes;
    session.heldBytes += bytes;
    // Per connection: each of its subscriptions catching up holds events for the same client.
    if (session.heldBytes + session.socket.unsentBytes() > maxUnsentBytes) {
      session.socket.logger().info({ topic: subscription.topic }, 'a catching-up subscriber fell too far behind; closing it');
      session.socket.end(options.slowConsumerCloseCode ?? 4008, 'too far behind');
    }
    return 0;
  }

  /** Re-decides each subscription of a session; those no longer allowed end with `forbidden`. */
  function recheck(session: Session): void {
    for (const subscription of [...session.subscriptions.values()]) {
      // A `forbidden` sent here can close the connection at once (it passed its send budget): the
      // close ended the subscriptions not re-decided yet, and ending one twice would leave its
      // access class twice, dropping the class under another subscriber of it.
      if (!isCurrent(session, subscription)) continue;
      const compiled = compile(session, subscription.topic, subscription.clientFilter, subscription.access.leaves);
      if (!compiled.ok) {
        end(session, subscription);
        options.notifyRevoked(session, subscription.topic, compiled.message, subscription.unanswered?.ref);
        continue;
      }
      if (compiled.access.key === subscription.access.key) continue;
      // Join the new class before leaving the old one, so the router never drops a class in use.
      const channel = router.join(compiled.access);
      if (!subscription.catchUp) {
        session.socket.joinChannel(channel);
        session.socket.leaveChannel(subscription.channel);
      }
      router.leave(subscription.channel);
      subscription.access = compiled.access;
      subscription.channel = channel;
      if (subscription.catchUp) renderHeldAgain(session, subscription.catchUp, compiled.access);
    }
  }

  /**
   * Held frames were rendered under the access the subscription had then; once its claims or
   * grants change, nothing may go out under the old ones (a row or column no longer allowed).
   * Events the old access passed over stay passed over, as they would for a live subscriber:
   * the change applies from here on.
   */
  function renderHeldAgain(session: Session, catchUp: CatchUp, access: Access): void {
    const held: HeldEvent[] = [];
    let heldBytes = 0;
    for (const { event, eventBytes } of catchUp.held) {
      const frame = renderEvent(access, event, new Map());
      if (frame === null) continue;
      held.push({ event, eventBytes, frame });
      heldBytes += eventBytes + Buffer.byteLength(frame);
    }
    catchUp.held = held;
    session.heldBytes += heldBytes - catchUp.heldBytes;
    catchUp.heldBytes = heldBytes;
  }

  return {
    open(socket, identity) {
      const session: Session = { socket, identity, subscriptions: new Map(), heldBytes: 0 };
      sessions.add(session);
      return session;
    },

    close(session) {
      if (!sessions.delete(session)) return;
      for (const subscription of [...session.subscriptions.values()]) end(session, subscription);
    },

    subscribe(session, topic, view, resumeAfter, ref) {
      if (session.subscriptions.has(topic)) return fail('already_subscribed', `already subscribed to ${JSON.stringify(topic)}`);
      if (session.subscriptions.size >= maxSubscriptions) {
        return fail('too_many_subscriptions', `a connection may hold ${maxSubscriptions} subscriptions; unsubscribe from one first`);
      }
      if (!catalog.topics.has(topic)) return fail('unknown_topic', `no topic ${JSON.stringify(topic)} is watched or granted`);
      let clientFilter: Filter | null = null;
      if (view.filter !== undefined) {
        const parsed = parseFilter(view.filter, options.filterLimits);
        if (!parsed.ok) return fail('bad_request', parsed.error);
        clientFilter = parsed.filter;
      }
      const compiled = compile(session, topic, clientFilter, view.leaves === true);
      if (!compiled.ok) return fail('forbidden', compiled.message);
      const channel = router.join(compiled.access);
      const unanswered = resumeAfter ? { ...(ref !== undefined && { ref }) } : null;
      const subscription: Subscription = { topic, clientFilter, access: compiled.access, channel, catchUp: null, unanswered };
      session.subscriptions.set(topic, subscription);
      subscriptionCount++;
      if (resumeAfter) {
        subscription.catchUp = { after: resumeAfter, held: [], heldBytes: 0, replayDone: false };
        const waiting = catchingUp.get(topic) ?? new Set();
        catchingUp.set(topic, waiting.add({ session, subscription }));
      } else {
        session.socket.joinChannel(channel);
      }
      return { ok: true };
    },

    answered(session, topic) {
      const subscription = session.subscriptions.get(topic);
      if (subscription) subscription.unanswered = null;
    },

    unsubscribe(session, topic) {
      const subscription = session.subscriptions.get(topic);
      if (!subscription) return fail('not_subscribed', `not subscribed to ${JSON.stringify(topic)}`);
      end(session, subscription);
      return { ok: true };
    },

    render(session, topic, event) {
      const subscription = session.subscriptions.get(topic);
      return subscription ? renderEvent(subscription.access, event, new Map()) : null;
    },

    catchUpToken(session, topic) {
      return sessions.has(session) ? (session.subscriptions.get(topic)?.catchUp ?? null) : null;
    },

    finishCatchUp(session, topic, token) {
      const subscription = session.subscriptions.get(topic);
      const catchUp = subscription?.catchUp;
      if (!subscription || !catchUp || catchUp !== token) return 0;
      catchUp.replayDone = true;
      // A cursor ahead of this relay (from a relay further along) waits for the events after it.
      return comparePositions(options.livePosition(), catchUp.after) >= 0 ? goLive(session, subscription) : 0;
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

    deliver(event, position, eventBytes = 0) {
      let sent = 0;
      for (const [channel, frame] of router.route(event)) sent += options.publish(channel, frame);
      const waiting = catchingUp.get(event.topic);
      if (!waiting) return sent;
      for (const { session, subscription } of [...waiting]) {
        if (subscription.catchUp) sent += holdOrSend(session, subscription, subscription.catchUp, event, position, eventBytes);
      }
      return sent;
    },

    // A subscription catching up has joined its class in the router too (at subscribe), so the
    // router knows every topic anyone here is subscribed to.
    wants: (topic) => router.hasTopic(topic),

    position: () => options.livePosition(),

    stats() {
      return { sessions: sessions.size, subscriptions: subscriptionCount, classes: router.stats().classes };
    },
  };
}
