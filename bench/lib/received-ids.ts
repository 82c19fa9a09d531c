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
      let count = 0;
      for (let id = low; id <= high; id++) {
        const word = id >>> 5;
        if (word >= words.length) break;
        if ((words[word]! & (1 << (id & 31))) !== 0) count++;
      }
      return count;
    },
  };
}
