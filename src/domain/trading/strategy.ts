/**
 * A strategy sees closed candles of its timeframe and emits signals. It is a
 * pure function of (state, candle): state is plain JSON, so an actor can save
 * it after every candle and a backtest can run the same code with a clock of
 * its own. Strategies compute the indicators they need with their own
 * parameters (series-state.ts); the pair's shared indicator values are passed
 * too, for strategies that want them.
 */
import type { Candle, Timeframe } from "../candle.ts";
import type { IndicatorValues } from "../indicators.ts";
import type { Instrument } from "../instruments.ts";
import type { SignalType } from "./types.ts";

export interface StrategyInput {
  tf: Timeframe;
  /** A closed candle, integer points. */
  candle: Candle;
  /** The pair's shared indicators for this timeframe, including this candle. */
  indicators: IndicatorValues | null;
  /** Close time of the candle (decision time). */
  closeTs: number;
}

/** What a strategy decides; the runtime turns it into a Signal with an id. */
export interface SignalDraft {
  type: SignalType;
  confidence: number;
  reason: string;
  stopLoss?: number;
  takeProfit?: number;
  metadata: Record<string, number | string | boolean | null>;
}

export interface StrategyDefinition<P, S> {
  readonly kind: string;
  timeframe(params: P): Timeframe;
  init(params: P): S;
  onCandle(state: S, input: StrategyInput, params: P, instrument: Instrument): { state: S; signal: SignalDraft | null };
}

/** The price series a strategy reads: bid closes (histdata files are bids) or mids. */
export function candlePrices(c: Candle, source: "bid" | "mid"): { high: number; low: number; close: number } {
  if (source === "bid") return { high: c.bh, low: c.bl, close: c.bc };
  return { high: (c.bh + c.ah) / 2, low: (c.bl + c.al) / 2, close: (c.bc + c.ac) / 2 };
}

export function clamp01(x: number): number {
  return Math.min(1, Math.max(0, x));
}
