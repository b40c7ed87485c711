/**
 * A small seeded pseudo-random generator (sfc32, state filled by splitmix32),
 * so that `--seed S` replays the same shop activity on any machine. Never used
 * for anything secret.
 *
 * @module
 */

/** A seeded source of random numbers; every draw advances the same state. */
export interface Prng {
  /** A float in [0, 1). */
  next(): number;
  /** An integer in [min, max], both inclusive. */
  int(min: number, max: number): number;
  /** One element of a non-empty list. */
  pick<T>(items: readonly T[]): T;
  /** One key of `weights`, chosen with probability proportional to its weight. */
  weighted<K extends string>(weights: Readonly<Record<K, number>>): K;
  /** True with probability `p`. */
  chance(p: number): boolean;
  /** `n` random hex digits. */
  hex(n: number): string;
}

/** The largest seed `--seed` accepts. */
export const MAX_SEED = Number.MAX_SAFE_INTEGER;

/**
 * Creates a generator from an integer seed in [0, {@link MAX_SEED}].
 *
 * @example
 * ```ts
 * import { createPrng } from "./prng.ts";
 * const a = createPrng(7);
 * const b = createPrng(7);
 * a.int(1, 6) === b.int(1, 6); // true
 * ```
 */
export function createPrng(seed: number): Prng {
  if (!Number.isSafeInteger(seed) || seed < 0) {
    throw new RangeError(`Cannot use ${seed} as a seed: it must be a whole number from 0`);
  }
  // Both halves of the seed feed splitmix32, which spreads them over 128 bits.
  let mix = (seed >>> 0) ^ Math.imul(Math.floor(seed / 2 ** 32), 0x9e3779b9);
  const splitmix = () => {
    mix = (mix + 0x9e3779b9) | 0;
    let z = mix;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  };
  let a = splitmix(), b = splitmix(), c = splitmix(), d = splitmix();

  function uint32(): number {
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return t >>> 0;
  }
  // Warm up: the first outputs of sfc32 still show the seed's structure.
  for (let i = 0; i < 12; i++) uint32();

  function next(): number {
    return uint32() / 4294967296;
  }
  function int(min: number, max: number): number {
    return min + Math.floor(next() * (max - min + 1));
  }
  function pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError("Cannot pick from an empty list");
    return items[Math.floor(next() * items.length)]!;
  }
  function weighted<K extends string>(weights: Readonly<Record<K, number>>): K {
    const entries = Object.entries(weights) as [K, number][];
    const total = entries.reduce((sum, [, w]) => sum + w, 0);
    let r = next() * total;
    for (const [key, w] of entries) {
      r -= w;
      if (r < 0) return key;
    }
    return entries[entries.length - 1]![0];
  }
  function chance(p: number): boolean {
    return next() < p;
  }
  function hex(n: number): string {
    let out = "";
    while (out.length < n) out += uint32().toString(16).padStart(8, "0");
    return out.slice(0, n);
  }
  return { next, int, pick, weighted, chance, hex };
}

/** A fresh seed for runs without `--seed` (logged, so that a run can be replayed). */
export function randomSeed(): number {
  return crypto.getRandomValues(new Uint32Array(1))[0]!;
}
