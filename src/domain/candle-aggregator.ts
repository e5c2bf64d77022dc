import { addTick, candleFromTick, mergeCandle, TIMEFRAMES, type Candle, type Tick, type Timeframe } from "./candle.ts";
import { bucketEnd, bucketStart } from "./fx-time.ts";

export interface ClosedCandle {
  tf: Timeframe;
  candle: Candle;
}

/**
 * Serialisable aggregator state: the open candle of each timeframe (the
 * period's ticks or bars so far) and the end of the latest closed candle of
 * the finest timeframe. An older shape (`base`: the open 1-minute candle,
 * `higher`: the closed minutes of each higher period) is still read, so a
 * pair persisted or backed up before keeps its open candles.
 */
export interface AggregatorState {
  open?: Partial<Record<Timeframe, Candle>>;
  /** End of the latest closed candle of the finest timeframe: ticks before it are too late. */
  closedUntil: number;
  /** The older shape: read when `open` is absent; written empty, so a release before this one reads a state of this one without failing (it starts its open candles afresh). */
  base?: Candle | null;
  higher?: Partial<Record<Timeframe, Candle>>;
}

/** Nothing closed: shared, so the common case allocates nothing. */
const NONE: readonly ClosedCandle[] = Object.freeze([]);

/**
 * Turns ticks, or bars (1-minute candles from history, ticks as one-point
 * bars in a backtest), into candles of the timeframes asked for: all of them
 * for a pair actor, the strategy's one for a backtest. A candle closes when
 * time passes its end: a later tick or bar arrives, or the caller's clock
 * (the actor's alarm) says so. Gaps produce no candles: only periods that had
 * ticks exist. Each timeframe's open candle keeps its end, so the hot path is
 * one comparison per timeframe and nothing is allocated until a candle closes.
 */
export class CandleAggregator {
  readonly timeframes: readonly Timeframe[];
  private readonly open: (Candle | null)[];
  private readonly endMs: number[];
  /** The earliest end of an open candle (+Infinity when none): closeDue's one comparison in the common case. */
  private nextEndMs = Number.POSITIVE_INFINITY;
  private closedUntilMs: number;
  /** Candles an older-shape state held as ended but not yet closed: closed by the first closeDue. */
  private ended: ClosedCandle[] = [];

  constructor(state?: AggregatorState, timeframes: readonly Timeframe[] = TIMEFRAMES) {
    this.timeframes = TIMEFRAMES.filter((tf) => timeframes.includes(tf));
    if (this.timeframes.length === 0) throw new RangeError("an aggregator needs at least one timeframe");
    this.open = this.timeframes.map(() => null);
    this.endMs = this.timeframes.map(() => Number.POSITIVE_INFINITY);
    this.closedUntilMs = state?.closedUntil ?? Number.NEGATIVE_INFINITY;
    this.timeframes.forEach((tf, i) => {
      if (!state) return;
      const { open, ended } = openOf(state, tf);
      if (open) this.start(i, { ...open, t: bucketStart(tf, open.t) });
      if (ended) this.ended.push({ tf, candle: { ...ended } });
    });
    if (this.ended.length > 0) this.nextEndMs = Number.NEGATIVE_INFINITY;
  }

  get closedUntil(): number {
    return this.closedUntilMs;
  }

  state(): AggregatorState {
    const open: Partial<Record<Timeframe, Candle>> = {};
    this.timeframes.forEach((tf, i) => {
      const c = this.open[i];
      if (c) open[tf] = { ...c };
    });
    return { open, closedUntil: this.closedUntilMs, base: null, higher: {} };
  }

  /** Add a tick (caller has validated order). Returns candles closed by its arrival. */
  onTick(tick: Tick): readonly ClosedCandle[] {
    const closed = this.closeDue(tick.ts);
    for (let i = 0; i < this.open.length; i++) {
      const c = this.open[i];
      if (c) addTick(c, tick);
      else this.start(i, candleFromTick(bucketStart(this.timeframes[i] as Timeframe, tick.ts), tick));
    }
    return closed;
  }

  /**
   * Add a bar that starts at `bar.t` and covers time up to `endMs` (a
   * 1-minute bar: its minute; a tick as a one-point bar: its instant).
   * Returns the candles closed before it and, when its end completes them,
   * with it (the bar may be reused by the caller afterwards).
   */
  onBar(bar: Candle, endMs: number = bucketEnd("1m", bar.t)): readonly ClosedCandle[] {
    const before = this.closeDue(bar.t);
    this.addBar(bar);
    const after = this.closeDue(endMs);
    if (after.length === 0) return before;
    return before.length === 0 ? after : [...before, ...after];
  }

  /** Merge a bar into the open candles; call closeDue(bar.t) first so a bar never lands in an ended period. */
  addBar(bar: Candle): void {
    for (let i = 0; i < this.open.length; i++) {
      const c = this.open[i];
      if (c) mergeCandle(c, bar);
      else this.start(i, { ...bar, t: bucketStart(this.timeframes[i] as Timeframe, bar.t) });
    }
  }

  /** Close every open candle whose period ended at or before `nowMs`, finest timeframe first. */
  closeDue(nowMs: number): readonly ClosedCandle[] {
    if (nowMs < this.nextEndMs) return NONE;
    let closed: ClosedCandle[] | null = this.ended.length > 0 ? this.ended : null;
    this.ended = [];
    for (let i = 0; i < this.open.length; i++) {
      const c = this.open[i];
      if (c == null || nowMs < (this.endMs[i] as number)) continue;
      (closed ??= []).push({ tf: this.timeframes[i] as Timeframe, candle: c });
      if (i === 0) this.closedUntilMs = this.endMs[i] as number;
      this.open[i] = null;
      this.endMs[i] = Number.POSITIVE_INFINITY;
    }
    this.nextEndMs = Math.min(...this.endMs);
    return closed ?? NONE;
  }

  /** The candle in progress for `tf`, a copy; undefined when none (or `tf` is not aggregated). */
  current(tf: Timeframe): Candle | undefined {
    const c = this.open[this.timeframes.indexOf(tf)];
    return c ? { ...c } : undefined;
  }

  /** Earliest instant at which some open candle should close, or undefined when none is open. */
  nextCloseAt(): number | undefined {
    return Number.isFinite(this.nextEndMs) ? this.nextEndMs : undefined;
  }

  private start(i: number, candle: Candle): void {
    this.open[i] = candle;
    const end = bucketEnd(this.timeframes[i] as Timeframe, candle.t);
    this.endMs[i] = end;
    if (end < this.nextEndMs) this.nextEndMs = end;
  }
}

/**
 * The open candle of `tf` in a persisted state of either shape. The older
 * one kept each higher period's closed minutes apart from the open minute:
 * merged, they are the open candle; a part of an earlier period than the open
 * minute (its period ended, it was to close with that minute) is `ended`.
 */
function openOf(state: AggregatorState, tf: Timeframe): { open?: Candle; ended?: Candle } {
  if (state.open) {
    const open = state.open[tf];
    return open ? { open } : {};
  }
  const base = state.base ?? null;
  if (tf === "1m") return base ? { open: base } : {};
  const part = state.higher?.[tf];
  if (!base) return part ? { open: part } : {};
  const start = bucketStart(tf, base.t);
  if (!part) return { open: { ...base, t: start } };
  if (part.t !== start) return { open: { ...base, t: start }, ended: part };
  const open = { ...part };
  mergeCandle(open, base);
  return { open };
}
