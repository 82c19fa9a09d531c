// Fan-out: subscribers with the same access key form one class with one pub/sub channel, and an
// event reaches a class through a per-topic index of column values, so route() touches only the
// classes that could match (plus the unindexed ones), not every class of the topic.

import type { RelayEvent } from '../events.ts';
import { indexKeys, indexValueOf, unionOfIndexKeys, type IndexKeys } from '../filters/index-keys.ts';
import { columnValue } from '../filters/match-filter.ts';
import type { Access } from './access.ts';
import { renderEvent as defaultRenderEvent } from './render-event.ts';

export interface Router {
  /** Registers one subscriber of access.key; returns the class's channel name (ref-counted). */
  join(access: Access): string;
  /** One subscriber of the channel's class left; the class is dropped at zero. */
  leave(channel: string): void;
  /** What to publish for this event: one frame per class that must receive it. */
  route(event: RelayEvent): Array<readonly [channel: string, frame: string]>;
  /** Whether any class is subscribed to the topic (route() of its events can send anything). */
  hasTopic(topic: string): boolean;
  stats(): { classes: number; subscribers: number };
}

export interface RouterOptions {
  /** Replaceable so tests can count which classes route() examines. */
  readonly renderEvent?: typeof defaultRenderEvent;
}

interface AccessClass {
  readonly channel: string;
  readonly access: Access;
  readonly keys: IndexKeys;
  subscribers: number;
}

interface TopicIndex {
  /** `column + '\u0000' + indexValue` -> classes indexed there. */
  readonly byValue: Map<string, Set<AccessClass>>;
  readonly unindexed: Set<AccessClass>;
  /** Indexed columns -> how many classes use them, so route() looks up only those. */
  readonly columns: Map<string, number>;
  classes: number;
  /** Classes that asked for `left` frames: an update reaches them by its previous values too. */
  leaving: number;
}

/** Creates an empty router. */
export function createRouter(options: RouterOptions = {}): Router {
  const renderEvent = options.renderEvent ?? defaultRenderEvent;
  const classesByKey = new Map<string, AccessClass>();
  const classesByChannel = new Map<string, AccessClass>();
  const topics = new Map<string, TopicIndex>();
  let nextChannel = 1;
  let subscribers = 0;

  function add(accessClass: AccessClass): void {
    const topic = topics.get(accessClass.access.topic) ?? newTopicIndex();
    topics.set(accessClass.access.topic, topic);
    topic.classes += 1;
    if (accessClass.access.leaves) topic.leaving += 1;
    if (accessClass.keys === 'unindexed') {
      topic.unindexed.add(accessClass);
      return;
    }
    for (const { column, values } of accessClass.keys) {
      topic.columns.set(column, (topic.columns.get(column) ?? 0) + 1);
      for (const value of values) {
        const slot = `${column}\u0000${value}`;
        const set = topic.byValue.get(slot) ?? new Set<AccessClass>();
        topic.byValue.set(slot, set.add(accessClass));
      }
    }
  }

  function remove(accessClass: AccessClass): void {
    const topic = topics.get(accessClass.access.topic);
    if (topic === undefined) return;
    if (accessClass.keys === 'unindexed') {
      topic.unindexed.delete(accessClass);
    } else {
      for (const { column, values } of accessClass.keys) {
        const left = (topic.columns.get(column) ?? 1) - 1;
        if (left === 0) topic.columns.delete(column);
        else topic.columns.set(column, left);
        for (const value of values) {
          const slot = `${column}\u0000${value}`;
          const set = topic.byValue.get(slot);
          set?.delete(accessClass);
          if (set?.size === 0) topic.byValue.delete(slot);
        }
      }
    }
    topic.classes -= 1;
    if (accessClass.access.leaves) topic.leaving -= 1;
    if (topic.classes === 0) topics.delete(accessClass.access.topic);
  }

  /**
   * Classes of the topic that the event could match, each once; for an update, also those asking
   * for `left` frames that its previous row could match (the row may have left their view).
   */
  function candidates(topic: TopicIndex, event: RelayEvent): Set<AccessClass> {
    const found = new Set(topic.unindexed);
    const { old } = event;
    for (const column of topic.columns.keys()) {
      // Missing columns compare as null (see match-filter.ts), so they are looked up as null. A
      // number kept as text is looked up as its nearest double (index-keys.ts): a superset of
      // the classes it matches exactly, which renderEvent's matchesFilter narrows.
      const value = indexValueOf(columnValue(event.data, column));
      if (value !== undefined) for (const accessClass of topic.byValue.get(`${column}\u0000${value}`) ?? []) found.add(accessClass);
      // The previous row has the previous value where the column changed (none where old lacks
      // it: see previousRow in render-event.ts), the same elsewhere.
      if (topic.leaving === 0 || old === undefined || !(Object.hasOwn(old, column) || event.changed?.includes(column))) continue;
      const previous = indexValueOf(columnValue(old, column));
      if (previous === undefined || previous === value) continue;
      for (const accessClass of topic.byValue.get(`${column}\u0000${previous}`) ?? []) if (accessClass.access.leaves) found.add(accessClass);
    }
    return found;
  }

  return {
    join(access) {
      subscribers += 1;
      const existing = classesByKey.get(access.key);
      if (existing !== undefined) {
        existing.subscribers += 1;
        return existing.channel;
      }
      const accessClass: AccessClass = { channel: `c${nextChannel++}`, access, keys: classIndexKeys(access), subscribers: 1 };
      classesByKey.set(access.key, accessClass);
      classesByChannel.set(accessClass.channel, accessClass);
      add(accessClass);
      return accessClass.channel;
    },

    leave(channel) {
      // Unknown channels are ignored: a double leave must not drop a class others still use.
      const accessClass = classesByChannel.get(channel);
      if (accessClass === undefined) return;
      subscribers -= 1;
      accessClass.subscribers -= 1;
      if (accessClass.subscribers > 0) return;
      classesByKey.delete(accessClass.access.key);
      classesByChannel.delete(channel);
      remove(accessClass);
    },

    route(event) {
      const topic = topics.get(event.topic);
      if (topic === undefined) return [];
      const cache = new Map<string, string>();
      const out: Array<readonly [string, string]> = [];
      for (const accessClass of candidates(topic, event)) {
        const frame = renderEvent(accessClass.access, event, cache);
        if (frame !== null) out.push([accessClass.channel, frame]);
      }
      return out;
    },

    hasTopic: (topic) => topics.has(topic),

    stats() {
      return { classes: classesByKey.size, subscribers };
    },
  };
}

/**
 * The client filter is ANDed with everything, so its keys suffice; otherwise the alternatives
 * are ORed, so all of them must be indexed. A client filter that can match nothing gets no keys.
 */
function classIndexKeys(access: Access): IndexKeys {
  if (access.clientFilter === 'match-nothing') return [];
  if (access.clientFilter !== null) {
    const clientKeys = indexKeys(access.clientFilter);
    if (clientKeys !== 'unindexed') return clientKeys;
  }
  return unionOfIndexKeys(access.alternatives.map((alternative) => indexKeys(alternative.filter)));
}

function newTopicIndex(): TopicIndex {
  return { byValue: new Map(), unindexed: new Set(), columns: new Map(), classes: 0, leaving: 0 };
}
