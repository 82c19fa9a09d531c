// Parsing what clients send (contract section 3). Pure: bad input becomes a bad_request outcome,
// never an exception, so a hostile client cannot end anything but its own request.

import type { LosslessNumber } from 'lossless-json';
import { isExactNumber, JsonTooDeepError, parseUntrustedJsonExactly } from '../exact-json.ts';
import { DEFAULT_FRAME_SHAPE_LIMITS, frameShapeProblem, topLevelRef, type FrameShapeLimits } from './frame-shape.ts';

/**
 * A client's correlation id, echoed back in the reply as it came: a number that a double would
 * change (9007199254740993) is kept as its text (see server-frames.ts).
 */
export type MessageRef = string | number | LosslessNumber;

/** `{"type":"subscribe","topic":T,"filter":F?,"since":C?,"leaves":B?}`. The filter is checked by parseFilter. */
export interface SubscribeMessage {
  readonly type: 'subscribe';
  readonly topic: string;
  readonly filter?: Readonly<Record<string, unknown>>;
  readonly since?: string;
  /** Whether to be told, with a `left` frame, when an update takes a row out of the subscription's view. */
  readonly leaves?: boolean;
  readonly ref?: MessageRef;
}

/** `{"type":"unsubscribe","topic":T}`. */
export interface UnsubscribeMessage {
  readonly type: 'unsubscribe';
  readonly topic: string;
  readonly ref?: MessageRef;
}

/** `{"type":"auth","token":JWT}`: replaces the connection's claims. */
export interface AuthMessage {
  readonly type: 'auth';
  readonly token: string;
  readonly ref?: MessageRef;
}

/** `{"type":"ping"}`. */
export interface PingMessage {
  readonly type: 'ping';
  readonly ref?: MessageRef;
}

/** Any valid client message. */
export type ClientMessage = SubscribeMessage | UnsubscribeMessage | AuthMessage | PingMessage;

/** Why a frame was refused; `ref` is kept when the frame had a usable one, and so is `topic`. */
export interface BadRequest {
  readonly code: 'bad_request';
  readonly message: string;
  readonly ref?: MessageRef;
  /** A subscribe's or unsubscribe's valid topic, when another of its fields is wrong. */
  readonly topic?: string;
}

/** Outcome of {@link parseClientMessage}. */
export type ParsedClientMessage =
  | { readonly ok: true; readonly message: ClientMessage }
  | { readonly ok: false; readonly error: BadRequest };

/**
 * Longest topic name, in characters (code points) as PostgreSQL's length() counts them: the
 * limit relay.watch, relay.allow and relay.publish apply, so that every topic they take can be named.
 */
export const MAX_TOPIC_LENGTH = 256;

type JsonObject = Record<string, unknown>;
type Fields = Omit<ClientMessage, 'ref'>;

// Thrown inside this module only, and always caught by parseClientMessage.
class Refusal {
  readonly message: string;
  constructor(message: string) {
    this.message = message;
  }
}

const FIELD_PARSERS: Readonly<Record<ClientMessage['type'], (frame: JsonObject) => Fields>> = {
  subscribe: (frame) => ({
    type: 'subscribe',
    topic: readTopic(frame),
    ...optional(frame, 'filter', readFilter),
    ...optional(frame, 'since', (value) => nonEmptyString(value, '"since" must be a non-empty string (a cursor)')),
    ...optional(frame, 'leaves', (value) => {
      if (typeof value !== 'boolean') throw new Refusal(`"leaves" must be true or false, got ${jsonKind(value)}`);
      return value;
    }),
  }),
  unsubscribe: (frame) => ({ type: 'unsubscribe', topic: readTopic(frame) }),
  auth: (frame) => ({ type: 'auth', token: nonEmptyString(own(frame, 'token'), '"token" must be a non-empty string') }),
  ping: () => ({ type: 'ping' }),
};

/** Parses one text frame into a client message, or says what is wrong with it. */
export function parseClientMessage(text: string, shape: FrameShapeLimits = DEFAULT_FRAME_SHAPE_LIMITS): ParsedClientMessage {
  const tooCostly = frameShapeProblem(text, shape);
  if (tooCostly !== null) return refuse(tooCostly, topLevelRef(text));
  let frame: unknown;
  try {
    // Exactly, for the filter's sake: {"account_id": 9007199254740993} must not become the
    // neighbouring account's 9007199254740992.
    frame = parseUntrustedJsonExactly(text);
  } catch (error) {
    // The parser's message quotes the input back; ours need not.
    if (error instanceof JsonTooDeepError) return refuse(TOO_DEEP_FOR_EXACT_NUMBERS);
    return refuse('invalid JSON');
  }
  if (typeof frame !== 'object' || frame === null || Array.isArray(frame)) {
    return refuse(`a message must be a JSON object, got ${jsonKind(frame)}`);
  }
  const object = frame as JsonObject;
  const rawRef = own(object, 'ref');
  const ref = isRef(rawRef) ? rawRef : undefined;
  if (rawRef !== undefined && ref === undefined) return refuse('"ref" must be a string or a finite number');
  const type = own(object, 'type');
  if (typeof type !== 'string') return refuse('"type" must be a string: subscribe, unsubscribe, auth or ping', ref);
  // hasOwn, so that "constructor" or "toString" are unknown types, not inherited functions.
  if (!Object.hasOwn(FIELD_PARSERS, type)) return refuse(`unknown type ${quote(type)}`, ref);
  try {
    const fields = FIELD_PARSERS[type as ClientMessage['type']](object);
    return { ok: true, message: { ...fields, ...(ref !== undefined && { ref }) } as ClientMessage };
  } catch (error) {
    if (error instanceof Refusal) return refuse(error.message, ref, validTopic(type, object));
    throw error;
  }
}

/**
 * The frame's `ref`, when it has a usable one, whatever else is wrong with it: for the reply to a
 * frame refused over the rate limit. Read as parseClientMessage reads it, so the two never differ.
 */
export function refOfFrame(text: string, shape: FrameShapeLimits = DEFAULT_FRAME_SHAPE_LIMITS): MessageRef | undefined {
  const parsed = parseClientMessage(text, shape);
  return parsed.ok ? parsed.message.ref : parsed.error.ref;
}

const TOO_DEEP_FOR_EXACT_NUMBERS = 'a message with long numbers or exponents nested this deeply cannot be read exactly';

function refuse(message: string, ref?: MessageRef, topic?: string): ParsedClientMessage {
  return { ok: false, error: { code: 'bad_request', message, ...(ref !== undefined && { ref }), ...(topic !== undefined && { topic }) } };
}

/** The topic of a subscribe or unsubscribe refused for another field, so that the client knows which one failed. */
function validTopic(type: string, frame: JsonObject): string | undefined {
  if (type !== 'subscribe' && type !== 'unsubscribe') return undefined;
  try {
    return readTopic(frame);
  } catch {
    return undefined;
  }
}

// JSON.parse makes `__proto__` an own property; reading own properties only keeps it inert.
function own(object: JsonObject, key: string): unknown {
  return Object.hasOwn(object, key) ? object[key] : undefined;
}

function optional<K extends string, T>(object: JsonObject, key: K, read: (value: unknown) => T): { [P in K]?: T } {
  return Object.hasOwn(object, key) ? ({ [key]: read(object[key]) } as { [P in K]: T }) : {};
}

/** A string, or a number a double can come near (1e400 cannot: it is no correlation id). */
function isRef(value: unknown): value is MessageRef {
  if (isExactNumber(value)) return Number.isFinite(Number(value.value));
  return typeof value === 'string' || (typeof value === 'number' && Number.isFinite(value));
}

function readTopic(frame: JsonObject): string {
  const topic = own(frame, 'topic');
  if (typeof topic !== 'string' || topic === '') throw new Refusal('"topic" must be a non-empty string');
  if (topic.length > MAX_TOPIC_LENGTH && codePoints(topic) > MAX_TOPIC_LENGTH) throw new Refusal(`"topic" must be at most ${MAX_TOPIC_LENGTH} characters`);
  // Control characters have no business in a name, and would garble logs.
  if (/[\u0000-\u001f\u007f-\u009f]/.test(topic)) throw new Refusal('"topic" must not contain control characters');
  return topic;
}

function codePoints(text: string): number {
  let count = 0;
  for (const _ of text) count++;
  return count;
}

function readFilter(value: unknown): Readonly<Record<string, unknown>> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new Refusal(`"filter" must be a JSON object, got ${jsonKind(value)}`);
  }
  return value as Record<string, unknown>;
}

function nonEmptyString(value: unknown, problem: string): string {
  if (typeof value !== 'string' || value === '') throw new Refusal(problem);
  return value;
}

function jsonKind(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return `a ${typeof value}`;
}

// Echoes a client's string in a message, cut short so that a reply cannot grow with the input.
function quote(value: string): string {
  return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}...` : value);
}
