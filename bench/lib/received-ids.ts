// Which row ids one subscriber received: a growable bitset, so that a duplicate is seen when it
// arrives and losses are counted per step without keeping millions of numbers.

/** The ids one subscriber has seen. */
export interface ReceivedIds {
  /** Marks `id`; false when it was already marked (a duplicate). */
  add(id: number): boolean;
  /** How many ids in [low, high] were marked. */
  countBetween(low: number, high: number): number;
}

/** An empty set. */
export function createReceivedIds(): ReceivedIds {
  let words = new Uint32Array(1024);
  return {
    add(id) {
      const word = id >>> 5;
      if (word >= words.length) {
        const grown = new Uint32Array(Math.max(words.length * 2, word + 1));
        grown.set(words);
        words = grown;
      }
      const bit = 1 << (id & 31);
      if ((words[word]! & bit) !== 0) return false;
      words[word] = words[word]! | bit;
      return true;
    },
    countBetween(low, high) {
      // Bit by bit only at the ragged ends, a word at a time between: the harness asks again and
      // again while a step's last deliveries arrive, for every subscriber.
      const last = Math.min(high, words.length * 32 - 1); // nothing is marked beyond the words
      let count = 0;
      let id = low;
      for (; id <= last && (id & 31) !== 0; id++) count += bitAt(words, id);
      for (; id + 31 <= last; id += 32) count += bitCount(words[id >>> 5]!);
      for (; id <= last; id++) count += bitAt(words, id);
      return count;
    },
  };
}

function bitAt(words: Uint32Array, id: number): number {
  return (words[id >>> 5]! >>> (id & 31)) & 1;
}

/** Set bits of a 32-bit word (the classic SWAR popcount). */
function bitCount(word: number): number {
  let v = word - ((word >>> 1) & 0x55555555);
  v = (v & 0x33333333) + ((v >>> 2) & 0x33333333);
  return Math.imul((v + (v >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24;
}
