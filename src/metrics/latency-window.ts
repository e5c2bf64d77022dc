/**
 * The latest N latency samples (a ring buffer), for percentiles over recent
 * traffic with bounded memory. Not a histogram across restarts: an actor's
 * figures start empty when it starts.
 */
export class LatencyWindow {
  private readonly samples: Float64Array;
  private next = 0;
  private filled = 0;
  count = 0;

  constructor(size = 1024) {
    this.samples = new Float64Array(size);
  }

  record(ms: number): void {
    this.samples[this.next] = ms;
    this.next = (this.next + 1) % this.samples.length;
    this.filled = Math.min(this.filled + 1, this.samples.length);
    this.count++;
  }

  summary(): { count: number; p50: number | null; p95: number | null; p99: number | null; max: number | null } {
    if (this.filled === 0) return { count: this.count, p50: null, p95: null, p99: null, max: null };
    const sorted = Array.from(this.samples.subarray(0, this.filled)).sort((a, b) => a - b);
    const at = (q: number) => round(sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!);
    return { count: this.count, p50: at(0.5), p95: at(0.95), p99: at(0.99), max: round(sorted[sorted.length - 1]!) };
  }
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}
