/**
 * What a strategy run keeps in memory besides its JSON state: the closed
 * candles of the timeframes it reads and its indicator objects. Neither is
 * saved: trading-signals' indicators keep private fields that cannot be
 * written out, so after a restart they are rebuilt by feeding them the
 * pair's stored candles again (warmUpCandles of each timeframe). Windowed
 * indicators (SMA, Bollinger bands, Donchian) come back exactly; smoothed
 * ones (EMA, RSI, ATR, MACD) too when WARM_UP_MAX candles cover 40 of their
 * periods (periods up to 50), else within what their decay leaves.
 */
import type { Candle, Timeframe } from "../candle.ts";
import { bucketEnd } from "../fx-time.ts";
import type { Instrument } from "../instruments.ts";
import type { CandleView, IndicatorLike, IndicatorSpec, Ohlc, StrategyDefinition, Watch } from "./api.ts";
import { HISTORY_MAX, INDICATORS_MAX } from "./api.ts";

/**
 * Candles fed to an indicator to rebuild it, as a multiple of what it needs
 * to be stable: 40 periods of an EMA or Wilder average leave a start error
 * below e^-37 of itself, under a double's precision, so a rebuilt RSI(14),
 * ATR(14) or EMA(26) comes back bit for bit (test/node/strategies.test.ts).
 */
const WARM_UP_MULTIPLE = 40;
/** At most this many candles per timeframe are read back to warm a run up. */
export const WARM_UP_MAX = 2_000;

interface LiveIndicator {
  spec: IndicatorSpec;
  instance: IndicatorLike;
}

export class RunMemory {
  readonly watch: Required<Watch>;
  /** Every timeframe whose candles the run reads: watched ones and its indicators'. */
  readonly timeframes: readonly Timeframe[];
  private readonly history = new Map<Timeframe, CandleView[]>();
  private readonly indicators = new Map<string, LiveIndicator>();
  /** Indicator values are rounded to three digits past the pair's precision. */
  private readonly roundingScale: number;

  constructor(definition: StrategyDefinition<Record<string, unknown>, unknown>, params: Record<string, unknown>, private readonly instrument: Instrument) {
    this.roundingScale = 10 ** (instrument.displayPrecision + 3);
    const watch = definition.watch(params);
    const history = watch.history ?? 1;
    if (!Array.isArray(watch.timeframes) || watch.timeframes.length === 0) throw new StrategyDefinitionError(`${definition.name}: watch() must name at least one timeframe`);
    if (!(Number.isInteger(history) && history >= 1 && history <= HISTORY_MAX)) throw new StrategyDefinitionError(`${definition.name}: history must be a whole number in 1..${HISTORY_MAX}, got ${history}`);
    if (watch.ticks && typeof definition.onTick !== "function") throw new StrategyDefinitionError(`${definition.name}: watch() asks for ticks: define onTick`);
    this.watch = { timeframes: [...new Set(watch.timeframes)], history, ticks: watch.ticks === true };
    const specs = definition.indicators?.(params) ?? {};
    const names = Object.keys(specs);
    if (names.length > INDICATORS_MAX) throw new StrategyDefinitionError(`${definition.name}: at most ${INDICATORS_MAX} indicators, got ${names.length}`);
    for (const name of names) {
      const spec = specs[name] as IndicatorSpec;
      this.indicators.set(name, { spec, instance: spec.create() });
    }
    const tfs = new Set<Timeframe>(this.watch.timeframes);
    for (const { spec } of this.indicators.values()) tfs.add(spec.timeframe);
    this.timeframes = [...tfs];
  }

  /** Stored candles of `tf` to feed after a restart: the history, and enough to warm its indicators. */
  warmUpCandles(tf: Timeframe): number {
    let n = this.watch.timeframes.includes(tf) ? this.watch.history : 0;
    for (const { spec, instance } of this.indicators.values()) {
      if (spec.timeframe !== tf) continue;
      const required = instance.getRequiredInputs?.() ?? 1;
      n = Math.max(n, required * WARM_UP_MULTIPLE);
    }
    return Math.min(n, WARM_UP_MAX);
  }

  /** A closed candle of `tf`: into the history and the indicators of that timeframe. */
  feed(tf: Timeframe, candle: Candle): void {
    if (!this.timeframes.includes(tf)) return;
    const view = candleView(tf, candle, this.instrument);
    if (this.watch.timeframes.includes(tf)) {
      const list = this.history.get(tf) ?? [];
      list.push(view);
      if (list.length > this.watch.history) list.shift();
      this.history.set(tf, list);
    }
    for (const { spec, instance } of this.indicators.values()) {
      if (spec.timeframe !== tf) continue;
      const px = view[spec.price ?? "mid"];
      const input = spec.input === "hlc" ? { high: px.high, low: px.low, close: px.close } : spec.input === "ohlc" ? { ...px } : px.close;
      instance.add(input as never);
    }
  }

  candles(tf: Timeframe): readonly CandleView[] {
    if (!this.watch.timeframes.includes(tf)) throw new StrategyActionError(`candles(${JSON.stringify(tf)}): the strategy does not watch that timeframe (it watches ${this.watch.timeframes.join(", ")})`);
    return this.history.get(tf) ?? [];
  }

  /**
   * The indicator's value, its numbers rounded to three digits past the
   * pair's precision (as the pair publishes its own indicators): decimal
   * prices are inexact doubles, and an SMA(2) and SMA(3) that are equal to the
   * point (1.269) would otherwise differ by 2e-16 and cross where they touch.
   */
  indicator(name: string): unknown {
    const live = this.indicators.get(name);
    if (!live) throw new StrategyActionError(`indicator(${JSON.stringify(name)}): no such indicator (there are: ${[...this.indicators.keys()].join(", ") || "none"})`);
    return live.instance.isStable ? rounded(live.instance.getResult(), this.roundingScale) : null;
  }
}

/** `value`'s numbers rounded to 1/scale (scale = 10^digits). */
function rounded(value: unknown, scale: number): unknown {
  // "+ 0": a tiny negative rounds to -0, which comparisons and JSON should see as plain 0.
  if (typeof value === "number") return Number.isFinite(value) ? Math.round(value * scale) / scale + 0 : value;
  if (value === null || typeof value !== "object") return value;
  if (Array.isArray(value)) return value.map((v) => rounded(v, scale));
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, rounded(v, scale)]));
}

/** A definition that cannot run with these parameters (found when the run is created). */
export class StrategyDefinitionError extends Error {
  override readonly name = "StrategyDefinitionError";
}

/** A step that asked for something it may not have, or acted wrongly. */
export class StrategyActionError extends Error {
  override readonly name = "StrategyActionError";
}

export function candleView(tf: Timeframe, c: Candle, instrument: Instrument): CandleView {
  const scale = 10 ** instrument.displayPrecision;
  const bid: Ohlc = { open: c.bo / scale, high: c.bh / scale, low: c.bl / scale, close: c.bc / scale };
  const ask: Ohlc = { open: c.ao / scale, high: c.ah / scale, low: c.al / scale, close: c.ac / scale };
  const mid: Ohlc = {
    open: (c.bo + c.ao) / 2 / scale,
    high: (c.bh + c.ah) / 2 / scale,
    low: (c.bl + c.al) / 2 / scale,
    close: (c.bc + c.ac) / 2 / scale,
  };
  return { timeframe: tf, time: c.t, closeTime: bucketEnd(tf, c.t), ...mid, bid, ask, mid, ticks: c.n };
}
