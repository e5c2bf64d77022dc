/**
 * Leading-edge coalescing of frequent events into frames: the first event
 * after a quiet interval goes out at once; events arriving within `intervalMs`
 * of the last frame are merged into one frame sent when the interval ends.
 * Clock and timer are injected so the rule is testable without sleeping.
 */
export class TickCoalescer<T> {
  private lastSentAt = Number.NEGATIVE_INFINITY;
  private pending: { item: T; merged: number } | null = null;

  constructor(
    private readonly intervalMs: number,
    private readonly send: (item: T, merged: number) => void,
    private readonly schedule: (fn: () => void, delayMs: number) => void,
    private readonly now: () => number,
  ) {}

  push(item: T, count = 1): void {
    if (this.pending) {
      this.pending.item = item;
      this.pending.merged += count;
      return;
    }
    const t = this.now();
    const wait = this.lastSentAt + this.intervalMs - t;
    if (wait <= 0) {
      this.lastSentAt = t;
      this.send(item, count);
      return;
    }
    this.pending = { item, merged: count };
    this.schedule(() => this.flush(), wait);
  }

  /** Send the merged frame now (called by the timer). */
  flush(): void {
    const p = this.pending;
    if (!p) return;
    this.pending = null;
    this.lastSentAt = this.now();
    this.send(p.item, p.merged);
  }

  get hasPending(): boolean {
    return this.pending !== null;
  }
}
