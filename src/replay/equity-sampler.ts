import type { EquityPoint } from "./result.ts";

/** Points kept of an equity curve: plenty for a chart, bounded for ten years of minutes. */
export const EQUITY_POINTS_MAX = 10_000;

/**
 * Keeps an evenly thinned series of at most `max` points (an equity curve, an
 * exposure series): every point until full, then every 2nd, 4th, ...
 * (halving what is kept each time it fills). Deterministic, O(1) amortised
 * per point; the last point offered is always returned by points().
 */
export class EquitySampler<T extends { t: number } = EquityPoint> {
  private readonly kept: T[] = [];
  private stride = 1;
  private seen = 0;
  private last: T | null = null;

  constructor(private readonly max = EQUITY_POINTS_MAX) {
    if (!Number.isInteger(max) || max < 2) throw new RangeError(`max must be an integer >= 2, got ${max}`);
  }

  push(point: T): void {
    this.last = point;
    if (this.seen++ % this.stride !== 0) return;
    this.kept.push(point);
    if (this.kept.length < this.max) return;
    // Keep points 0, 2, 4 ... i.e. every (2 * stride)-th point seen.
    let w = 0;
    for (let i = 0; i < this.kept.length; i += 2) this.kept[w++] = this.kept[i] as T;
    this.kept.length = w;
    this.stride *= 2;
  }

  /** Replace the latest point (the final close-out changes its value). */
  amendLast(amend: (last: T) => T): void {
    if (this.last === null) return;
    const amended = amend(this.last);
    if (this.kept[this.kept.length - 1] === this.last) this.kept[this.kept.length - 1] = amended;
    this.last = amended;
  }

  points(): T[] {
    const out = this.kept.slice();
    if (this.last !== null && out[out.length - 1] !== this.last) out.push(this.last);
    return out;
  }
}
