/**
 * Small seeded PRNG (mulberry32) with a state that fits in one integer, so a
 * generator can be persisted and resumed exactly. Not for cryptography.
 */
export class SeededRandom {
  constructor(private s: number) {
    this.s = s >>> 0;
  }

  get state(): number {
    return this.s;
  }

  /** Uniform in [0, 1). */
  next(): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0;
    let z = this.s;
    z = Math.imul(z ^ (z >>> 15), z | 1);
    z ^= z + Math.imul(z ^ (z >>> 7), z | 61);
    return ((z ^ (z >>> 14)) >>> 0) / 4294967296;
  }

  /** Standard normal (Box-Muller; one of the pair is discarded to keep the state a single integer). */
  normal(): number {
    const u = 1 - this.next();
    const w = this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * w);
  }

  /** Exponential with the given mean. */
  exponential(mean: number): number {
    return -Math.log(1 - this.next()) * mean;
  }
}

/** Stable 32-bit hash of a string (FNV-1a), to derive per-pair seeds from one seed. */
export function hashSeed(seed: number, name: string): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < name.length; i++) {
    h ^= name.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}
