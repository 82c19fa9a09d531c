// Frames for the protocol fuzzer: valid client messages, then mutated the ways a broken or hostile
// client would (cut short, bytes flipped, huge numbers, wrong types, deep nesting, unknown types,
// binary frames, invalid UTF-8, over the size limit), all drawn from one seeded PRNG.
import type { Random } from './random.ts';

/** One frame to send: its bytes and whether it goes out as a binary frame. */
export interface FuzzFrame {
  readonly data: Buffer;
  readonly binary: boolean;
  /** The mutation applied, for the run's statistics. */
  readonly kind: string;
}

/** What valid frames may name: real topics and cursors, and tokens of every sort. */
export interface FuzzVocabulary {
  readonly topics: readonly string[];
  readonly cursors: readonly string[];
  readonly tokens: readonly string[];
}

const FRAME_LIMIT_BYTES = 64 * 1024;
/** uWebSockets.js drops (1006) frames over this without reading them (maxPayloadLength). */
const HARD_CAP_BYTES = 2 * FRAME_LIMIT_BYTES;

const HUGE_NUMBERS = ['1e308', '-1e308', '1e999', '-0', '18446744073709551616', '123456789012345678901234567890', '0.0000000000000000001', '9007199254740993'];

/** A random JSON value of any type, nested at most `depth` levels. */
function randomValue(random: Random, depth = 2): unknown {
  switch (random.int(0, depth > 0 ? 7 : 5)) {
    case 0:
      return null;
    case 1:
      return random.chance(0.5);
    case 2:
      return random.int(-1e6, 1e6);
    case 3:
      return random.next() * 10 ** random.int(-10, 300);
    case 4:
      return randomString(random, random.int(0, 20));
    case 5:
      return random.pick(['', 'orders', '__proto__', 'constructor', '\u0000', '\ud800', '😀', 'a'.repeat(300)]);
    case 6:
      return Array.from({ length: random.int(0, 4) }, () => randomValue(random, depth - 1));
    default:
      return Object.fromEntries(Array.from({ length: random.int(0, 4) }, () => [randomKey(random), randomValue(random, depth - 1)]));
  }
}

function randomKey(random: Random): string {
  return random.pick(['type', 'topic', 'filter', 'since', 'token', 'ref', 'and', 'or', 'not', 'eq', 'in', 'claim', 'status', '__proto__', randomString(random, 5)]);
}

function randomString(random: Random, length: number): string {
  let text = '';
  for (let index = 0; index < length; index++) text += String.fromCharCode(random.int(0, 1) ? random.int(32, 126) : random.int(0, 0xffff));
  return text;
}

function randomFilter(random: Random): unknown {
  const column = random.pick(['status', 'hospital_id', 'customer_id', 'quantity', 'id']);
  return random.pick<unknown>([
    {},
    { [column]: randomValue(random, 0) },
    { [column]: { [random.pick(['eq', 'ne', 'lt', 'lte', 'gt', 'gte', 'in', 'like'])]: randomValue(random, 1) } },
    { or: [{ status: 'placed' }, { [column]: { claim: random.pick(['sub', 'hospital_id', 'no.such.claim']) } }] },
    { not: { [column]: { in: { claim: 'merchant_ids' } } } },
    randomValue(random),
  ]);
}

/** A valid client message (possibly refused by the relay, e.g. a topic that does not exist). */
export function validMessage(random: Random, vocabulary: FuzzVocabulary): Record<string, unknown> {
  const ref = random.chance(0.5) ? { ref: random.chance(0.5) ? random.int(0, 1e9) : randomString(random, 8) } : {};
  switch (random.int(0, 4)) {
    case 0:
      return { type: 'ping', ...ref };
    case 1:
      return { type: 'unsubscribe', topic: random.pick(vocabulary.topics), ...ref };
    case 2:
      return { type: 'auth', token: random.pick(vocabulary.tokens), ...ref };
    default:
      return {
        type: 'subscribe',
        topic: random.pick(vocabulary.topics),
        ...(random.chance(0.5) && { filter: randomFilter(random) }),
        ...(random.chance(0.3) && { since: random.pick(vocabulary.cursors) }),
        ...ref,
      };
  }
}

const text = (value: string, kind: string): FuzzFrame => ({ data: Buffer.from(value, 'utf8'), binary: false, kind });

/** One frame: a valid message, or one mutated by a randomly chosen mutation. */
export function fuzzFrame(random: Random, vocabulary: FuzzVocabulary): FuzzFrame {
  const message = validMessage(random, vocabulary);
  const json = JSON.stringify(message);
  const roll = random.next();
  if (roll < 0.15) return text(json, 'valid');
  if (roll < 0.25) return text(json.slice(0, random.int(0, Math.max(0, json.length - 1))), 'truncated');
  if (roll < 0.35) {
    const bytes = Buffer.from(json, 'utf8');
    for (let flips = random.int(1, 4); flips > 0; flips--) {
      const at = random.int(0, bytes.length - 1);
      // Mostly below the top bit, so that most flipped frames stay UTF-8 and reach the parser
      // (invalid UTF-8, which uWebSockets.js drops with the connection, has a mutation of its own).
      bytes[at] = bytes[at]! ^ (1 << random.int(0, random.chance(0.8) ? 6 : 7));
    }
    return { data: bytes, binary: false, kind: 'byte flips' };
  }
  if (roll < 0.45) {
    const key = random.pick(['ref', 'topic', 'since', 'token', 'type', 'filter']);
    const body = json.slice(1, -1);
    return text(`{"${key}":${random.pick(HUGE_NUMBERS)}${body ? `,${body}` : ''}}`, 'huge number');
  }
  if (roll < 0.6) {
    const key = random.pick(['type', 'topic', 'filter', 'since', 'token', 'ref']);
    return text(JSON.stringify({ ...message, [key]: randomValue(random) }), 'wrong type');
  }
  if (roll < 0.68) {
    // Up to about 56 KB: deep, yet under the frame limit, so that the parser has to face it.
    const depth = random.int(100, 7_000);
    const nested = random.chance(0.5) ? `${'{"not":'.repeat(depth)}{"status":"x"}${'}'.repeat(depth)}` : `${'['.repeat(depth)}${']'.repeat(depth)}`;
    return text(`{"type":"subscribe","topic":"orders","filter":${nested}}`, 'deep nesting');
  }
  if (roll < 0.74) return text(JSON.stringify({ ...message, type: random.pick([randomString(random, 6), 'SUBSCRIBE', 'toString', '__proto__', '']) }), 'unknown type');
  if (roll < 0.8) return { data: Buffer.from(json, 'utf8'), binary: true, kind: 'binary frame' };
  if (roll < 0.84) {
    const bytes = Buffer.from(json, 'utf8');
    const at = random.int(0, bytes.length);
    const bad = Buffer.from(random.pick([[0xff], [0xc0, 0x80], [0xed, 0xa0, 0x80], [0xf8, 0x88, 0x80, 0x80], [0xe2, 0x82]]));
    return { data: Buffer.concat([bytes.subarray(0, at), bad, bytes.subarray(at)]), binary: false, kind: 'invalid UTF-8' };
  }
  if (roll < 0.86) {
    // Mostly just over the limit (1009); now and then over uWebSockets.js's hard cap (1006).
    const size = random.chance(0.1) ? HARD_CAP_BYTES + random.int(1, 1024) : FRAME_LIMIT_BYTES + random.int(1, FRAME_LIMIT_BYTES);
    return text(JSON.stringify({ ...message, pad: 'x'.repeat(size) }), 'oversized');
  }
  if (roll < 0.93) return text(JSON.stringify(randomValue(random, 3)), 'random JSON');
  const bytes = Buffer.alloc(random.int(0, 200));
  for (let index = 0; index < bytes.length; index++) bytes[index] = random.int(0, 255);
  return { data: bytes, binary: random.chance(0.5), kind: 'random bytes' };
}
