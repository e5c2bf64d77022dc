import type { SmaCrossParams } from "../../../../schemas/strategy.ts";
import { smaInit, smaUpdate, smaValue, type SmaState } from "../series-state.ts";
import { candlePrices, type StrategyDefinition } from "../strategy.ts";

export interface SmaCrossState {
  fast: SmaState;
  slow: SmaState;
  /** fast - slow on the previous candle, null until both are ready. */
  lastDiff: number | null;
}

/**
 * The reference strategy of the backtest issue, exactly: at each close compute
 * SMA(fast) and SMA(slow) of the closes; a cross up (fast > slow now, fast <=
 * slow before) means be long, a cross down (fast < slow now, fast >= slow
 * before) be short. Stop and reverse, no stops.
 */
export const smaCross: StrategyDefinition<SmaCrossParams, SmaCrossState> = {
  kind: "sma-cross",
  timeframe: (p) => p.timeframe,
  init: (p) => ({ fast: smaInit(p.fast), slow: smaInit(p.slow), lastDiff: null }),
  onCandle(state, input, p) {
    const { close } = candlePrices(input.candle, p.price);
    const fastState = smaUpdate(state.fast, close);
    const slowState = smaUpdate(state.slow, close);
    const fast = smaValue(fastState);
    const slow = smaValue(slowState);
    const diff = fast !== null && slow !== null ? fast - slow : null;
    const next: SmaCrossState = { fast: fastState, slow: slowState, lastDiff: diff };
    const prev = state.lastDiff;
    if (diff === null || prev === null) return { state: next, signal: null };
    const metadata = { smaFast: fast, smaSlow: slow };
    if (diff > 0 && prev <= 0) return { state: next, signal: { type: "buy", confidence: 1, reason: `SMA${p.fast} crossed above SMA${p.slow}`, metadata } };
    if (diff < 0 && prev >= 0) return { state: next, signal: { type: "sell", confidence: 1, reason: `SMA${p.fast} crossed below SMA${p.slow}`, metadata } };
    return { state: next, signal: null };
  },
};
