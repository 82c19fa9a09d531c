// A small seeded PRNG (mulberry32) for property tests: the same seed replays the same run.

import { randomInt } from 'node:crypto';

/** Deterministic random choices from one 32-bit seed. */
export interface Random {
  readonly seed: number;
  /** A float in [0, 1). */
  next(): number;
  /** An integer in [min, max], both included. */
  int(min: number, max: number): number;
  /** True with probability p. */
  chance(p: number): boolean;
  pick<T>(items: readonly T[]): T;
  /** A non-empty random subset, in the items' order. */
  someOf<T>(items: readonly T[]): T[];
  /** `n` distinct items, in random order (n is capped at items.length). */
  sample<T>(items: readonly T[], n: number): T[];
}

/** The seed from `envValue` when it is set (decimal), else a fresh random one. */
export function seedFrom(envValue: string | undefined): number {
  if (envValue === undefined || envValue === '') return randomInt(0, 2 ** 31);
  const seed = Number(envValue);
  if (!Number.isSafeInteger(seed) || seed < 0) throw new Error(`seed must be a non-negative integer, got ${JSON.stringify(envValue)}`);
  return seed >>> 0;
}

/** A PRNG seeded with `seed`. */
export function createRandom(seed: number): Random {
  let state = seed >>> 0;
  const next = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let z = state;
    z = Math.imul(z ^ (z >>> 15), z | 1);
    z ^= z + Math.imul(z ^ (z >>> 7), z | 61);
    return ((z ^ (z >>> 14)) >>> 0) / 4294967296;
  };
  const int = (min: number, max: number): number => min + Math.floor(next() * (max - min + 1));
  const pick = <T>(items: readonly T[]): T => {
    if (items.length === 0) throw new Error('pick from an empty list');
    return items[int(0, items.length - 1)] as T;
  };
  const sample = <T>(items: readonly T[], n: number): T[] => {
    const pool = [...items];
    const out: T[] = [];
    while (out.length < n && pool.length > 0) out.push(pool.splice(int(0, pool.length - 1), 1)[0] as T);
    return out;
  };
  return {
    seed,
    next,
    int,
    chance: (p) => next() < p,
    pick,
    someOf(items) {
      for (;;) {
        const chosen = items.filter(() => next() < 0.5);
        if (chosen.length > 0) return chosen;
      }
    },
    sample,
  };
}
