import { mergeCandle, type Candle, type Timeframe } from "./candle.ts";
import { bucketEnd, bucketStart } from "./fx-time.ts";

/**
 * Rolls time-ordered bars (1-minute candles, or ticks as one-point bars) up
 * into candles of one timeframe, with the same buckets and OHLC merge as the
 * live CandleAggregator (a property test holds them equal). The backtester's
 * hot path: one bucket computation per candle, not per bar, which the
 * all-timeframes aggregator cannot offer. Periods without bars produce no
 * candle.
 */
export class TimeframeRollup {
  private open: Candle | null = null;
  private endMs = Number.NEGATIVE_INFINITY;

  constructor(readonly tf: Timeframe) {}

  /** Close and return the open candle if its period ended at or before `nowMs`. */
  closeDue(nowMs: number): Candle | null {
    const open = this.open;
    if (open === null || nowMs < this.endMs) return null;
    this.open = null;
    return open;
  }

  /** Add a bar that starts at `bar.t`; call closeDue(bar.t) first so a bar never lands in an ended period. */
  add(bar: Candle): void {
    if (this.open !== null) {
      mergeCandle(this.open, bar);
      return;
    }
    const start = bucketStart(this.tf, bar.t);
    this.open = { ...bar, t: start };
    this.endMs = bucketEnd(this.tf, start);
  }

  /** End (exclusive) of the open candle's period; -Infinity when none is open. */
  get openEndMs(): number {
    return this.open === null ? Number.NEGATIVE_INFINITY : this.endMs;
  }

  /** Whatever is open, closed now (end of data). */
  flush(): Candle | null {
    return this.closeDue(Number.POSITIVE_INFINITY);
  }
}
