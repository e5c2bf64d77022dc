/**
 * Incremental technical indicators over closed candles, backed by `trading-signals` (8.x, whose
 * classes are number-based; there are no separate "Faster*" classes any more). Pure: no I/O, no clock.
 *
 * Conventions of the library, checked against published references in test/node/indicators.test.ts:
 * - SMA: plain mean of the last `period` closes.
 * - EMA: alpha = 2 / (period + 1), seeded with the FIRST close (not with an SMA, as StockCharts and
 *   LEAN do). The seed difference decays by (1 - alpha) per bar; we report it once `period` closes
 *   have been seen, like the library's `isStable`.
 * - RSI: Wilder smoothing (WSMA, alpha = 1 / period) of gains and losses, seeded with the simple
 *   mean of the first `period` changes, so the first value needs period + 1 closes.
 * - ATR: Wilder smoothing of the true range, seeded with the mean of the first `period` TRs; the
 *   first bar's TR is high - low (no previous close).
 * - Bollinger: SMA middle, +- k * POPULATION standard deviation (divide by n, not n - 1).
 * - MACD: EMA(fast) - EMA(slow), both seeded with the first close; the signal EMA is seeded with
 *   the first MACD value (at bar `slow`). We report MACD only once the signal EMA has seen
 *   `signal` values, i.e. from bar slow + signal - 1.
 */
import { ATR, BollingerBands, EMA, MACD, RSI, SMA } from "trading-signals";
import type { Candle } from "./candle.ts";

export interface IndicatorConfig {
  smaPeriod: number;
  emaPeriod: number;
  rsiPeriod: number;
  atrPeriod: number;
  bollingerPeriod: number;
  bollingerStdDev: number;
  macdFast: number;
  macdSlow: number;
  macdSignal: number;
}

export const DEFAULT_INDICATOR_CONFIG: Readonly<IndicatorConfig> = Object.freeze({
  smaPeriod: 20,
  emaPeriod: 20,
  rsiPeriod: 14,
  atrPeriod: 14,
  bollingerPeriod: 20,
  bollingerStdDev: 2,
  macdFast: 12,
  macdSlow: 26,
  macdSignal: 9,
});

/** Each field is null until that indicator is warmed up. */
export interface IndicatorValues {
  sma: number | null;
  ema: number | null;
  rsi: number | null;
  atr: number | null;
  bollinger: { upper: number; middle: number; lower: number } | null;
  macd: { macd: number; signal: number; histogram: number } | null;
}

/** A candle in decimal prices (floats), as the indicators take it. */
export interface HLC {
  high: number;
  low: number;
  close: number;
}

function checkConfig(c: IndicatorConfig): void {
  const periods = [c.smaPeriod, c.emaPeriod, c.rsiPeriod, c.atrPeriod, c.bollingerPeriod, c.macdFast, c.macdSlow, c.macdSignal];
  if (!periods.every((p) => Number.isInteger(p) && p >= 1)) throw new RangeError("indicator periods must be integers >= 1");
  // trading-signals' RSI keeps only `period` closes and needs two to form a change: period 1 never warms up.
  if (c.rsiPeriod < 2) throw new RangeError("rsiPeriod must be >= 2");
  if (!(c.macdFast < c.macdSlow)) throw new RangeError("macdFast must be shorter than macdSlow");
  if (!(Number.isFinite(c.bollingerStdDev) && c.bollingerStdDev > 0)) throw new RangeError("bollingerStdDev must be > 0");
}

/** One set of indicators for one instrument and timeframe; feed it closed candles in order. */
export class IndicatorSet {
  readonly config: Readonly<IndicatorConfig>;
  readonly #sma: SMA;
  readonly #ema: EMA;
  readonly #rsi: RSI;
  readonly #atr: ATR;
  readonly #bb: BollingerBands;
  readonly #macd: MACD;

  constructor(config: IndicatorConfig = DEFAULT_INDICATOR_CONFIG) {
    checkConfig(config);
    this.config = Object.freeze({ ...config });
    this.#sma = new SMA(config.smaPeriod);
    this.#ema = new EMA(config.emaPeriod);
    this.#rsi = new RSI(config.rsiPeriod); // default smoothing is WSMA (Wilder)
    this.#atr = new ATR(config.atrPeriod); // default smoothing is WSMA (Wilder)
    this.#bb = new BollingerBands(config.bollingerPeriod, config.bollingerStdDev);
    this.#macd = new MACD(new EMA(config.macdFast), new EMA(config.macdSlow), new EMA(config.macdSignal));
  }

  update(candle: HLC): IndicatorValues {
    const { high, low, close } = candle;
    if (!(Number.isFinite(high) && Number.isFinite(low) && Number.isFinite(close))) {
      // One NaN would poison every running average for good; refuse it instead.
      throw new RangeError("indicator input must be finite");
    }
    this.#sma.add(close);
    this.#ema.add(close);
    this.#rsi.add(close);
    this.#atr.add({ high, low, close });
    this.#bb.add(close);
    this.#macd.add(close);
    return this.values();
  }

  values(): IndicatorValues {
    // `isStable` is the warm-up gate: the library's EMA returns a number from the first input, and
    // getResult() before warm-up throws and catches an error inside (a profile showed those throws).
    const result = <T>(i: { isStable: boolean; getResult(): T | null }): T | null => (i.isStable ? i.getResult() : null);
    const bb = result(this.#bb);
    const macd = this.#macd.signal.isStable ? this.#macd.getResult() : null;
    return {
      sma: result(this.#sma),
      ema: result(this.#ema),
      rsi: result(this.#rsi),
      atr: result(this.#atr),
      bollinger: bb === null ? null : { upper: bb.upper, middle: bb.middle, lower: bb.lower },
      macd: macd === null ? null : { macd: macd.macd, signal: macd.signal, histogram: macd.histogram },
    };
  }
}

/**
 * Mid high/low/close in decimal price. The mid high is taken as (bid high + ask high) / 2, the
 * usual approximation for bid/ask bars (the two highs need not come from the same tick).
 */
export function candleToMidHLC(c: Candle, displayPrecision: number): HLC {
  const scale = 2 * 10 ** displayPrecision; // one division: (points sum) / (2 * 10^p)
  return { high: (c.bh + c.ah) / scale, low: (c.bl + c.al) / scale, close: (c.bc + c.ac) / scale };
}

/** Round every value to `digits` decimals for the wire (e.g. displayPrecision + 2); nulls stay null. */
export function roundIndicatorValues(v: IndicatorValues, digits: number): IndicatorValues {
  if (!(Number.isInteger(digits) && digits >= 0 && digits <= 20)) throw new RangeError("digits must be an integer in 0..20");
  // "+ 0": a tiny negative rounds to -0, which the wire and comparisons should see as plain 0.
  const r = (x: number): number => Number(x.toFixed(digits)) + 0;
  const rn = (x: number | null): number | null => (x === null ? null : r(x));
  return {
    sma: rn(v.sma),
    ema: rn(v.ema),
    rsi: rn(v.rsi),
    atr: rn(v.atr),
    bollinger: v.bollinger === null ? null : { upper: r(v.bollinger.upper), middle: r(v.bollinger.middle), lower: r(v.bollinger.lower) },
    macd: v.macd === null ? null : { macd: r(v.macd.macd), signal: r(v.macd.signal), histogram: r(v.macd.histogram) },
  };
}
