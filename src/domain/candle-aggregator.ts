import { addTick, candleFromTick, mergeCandle, TIMEFRAMES, type Candle, type Tick, type Timeframe } from "./candle.ts";
import { bucketEnd, bucketStart } from "./fx-time.ts";

export interface ClosedCandle {
  tf: Timeframe;
  candle: Candle;
}

/**
 * Serialisable aggregator state. `base` is the open 1-minute candle; for every
 * higher timeframe `closedPart` is the merge of the 1-minute candles already
 * closed inside its current period (higher timeframes are derived from 1m).
 */
export interface AggregatorState {
  base: Candle | null;
  higher: Partial<Record<Timeframe, Candle>>;
  /** End of the latest closed 1m candle: ticks before it are too late. */
  closedUntil: number;
}

const HIGHER = TIMEFRAMES.filter((tf) => tf !== "1m");

function copy(c: Candle): Candle {
  return { ...c };
}

/**
 * Turns ticks (or 1-minute bars when back-filling) into candles for every
 * timeframe. A candle closes when time passes its end: either a later tick
 * arrives or the caller's clock (the actor's alarm) says so. Gaps produce no
 * candles: only periods that had ticks exist.
 */
export class CandleAggregator {
  private base: Candle | null;
  private readonly higher: Partial<Record<Timeframe, Candle>>;
  private closedUntilMs: number;

  constructor(state?: AggregatorState) {
    this.base = state?.base ? copy(state.base) : null;
    this.higher = {};
    for (const tf of HIGHER) {
      const c = state?.higher[tf];
      if (c) this.higher[tf] = copy(c);
    }
    this.closedUntilMs = state?.closedUntil ?? Number.NEGATIVE_INFINITY;
  }

  get closedUntil(): number {
    return this.closedUntilMs;
  }

  state(): AggregatorState {
    const higher: Partial<Record<Timeframe, Candle>> = {};
    for (const tf of HIGHER) {
      const c = this.higher[tf];
      if (c) higher[tf] = copy(c);
    }
    return { base: this.base ? copy(this.base) : null, higher, closedUntil: this.closedUntilMs };
  }

  /** Add a tick (caller has validated order). Returns candles closed by its arrival. */
  onTick(tick: Tick): ClosedCandle[] {
    const closed = this.closeDue(tick.ts);
    const t = bucketStart("1m", tick.ts);
    if (this.base) addTick(this.base, tick);
    else this.base = candleFromTick(t, tick);
    return closed;
  }

  /** Add a complete 1-minute bar (back-fill from bar history). Returns candles it closed, itself included. */
  onBar(bar: Candle): ClosedCandle[] {
    const closed = this.closeDue(bar.t);
    if (this.base) {
      // A bar for the minute in progress: merge it, then close that minute.
      mergeCandle(this.base, bar);
    } else {
      this.base = copy(bar);
    }
    return closed.concat(this.closeDue(bucketEnd("1m", bar.t)));
  }

  /** Close every open candle whose period ended at or before `nowMs`. */
  closeDue(nowMs: number): ClosedCandle[] {
    const closed: ClosedCandle[] = [];
    const base = this.base;
    if (base && bucketEnd("1m", base.t) <= nowMs) {
      closed.push({ tf: "1m", candle: copy(base) });
      this.closedUntilMs = bucketEnd("1m", base.t);
      this.base = null;
      // Higher periods that ended before this minute close first (cannot happen
      // with ordered input, but keeps state sane after a restore).
      for (const tf of HIGHER) {
        const start = bucketStart(tf, base.t);
        const part = this.higher[tf];
        if (part && part.t !== start) {
          closed.push({ tf, candle: part });
          delete this.higher[tf];
        }
        const current = this.higher[tf];
        if (current) mergeCandle(current, base);
        else this.higher[tf] = { ...base, t: start };
      }
    }
    for (const tf of HIGHER) {
      const part = this.higher[tf];
      if (part && bucketEnd(tf, part.t) <= nowMs) {
        closed.push({ tf, candle: part });
        delete this.higher[tf];
      }
    }
    return closed;
  }

  /** The candle in progress for `tf`, including the open minute; undefined when none. */
  current(tf: Timeframe): Candle | undefined {
    const base = this.base;
    if (tf === "1m") return base ? copy(base) : undefined;
    const part = this.higher[tf];
    if (!base) return part ? copy(part) : undefined;
    const start = bucketStart(tf, base.t);
    if (!part || part.t !== start) return { ...base, t: start };
    const view = copy(part);
    mergeCandle(view, base);
    return view;
  }

  /** Earliest instant at which some open candle should close, or undefined when none is open. */
  nextCloseAt(): number | undefined {
    let next = this.base ? bucketEnd("1m", this.base.t) : Number.POSITIVE_INFINITY;
    for (const tf of HIGHER) {
      const part = this.higher[tf];
      if (part) next = Math.min(next, bucketEnd(tf, part.t));
    }
    return Number.isFinite(next) ? next : undefined;
  }
}
