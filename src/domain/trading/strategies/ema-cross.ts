import type { EmaCrossParams } from "../../../../schemas/strategy.ts";
import { atrInit, atrUpdate, atrValue, emaInit, emaUpdate, emaValue, type AtrState, type EmaState } from "../series-state.ts";
import { candlePrices, clamp01, type StrategyDefinition } from "../strategy.ts";

export interface EmaCrossState {
  fast: EmaState;
  slow: EmaState;
  atr: AtrState;
  /** Sign of (fast - slow) on the previous candle: 1, -1, or 0 before both are ready. */
  lastSide: number;
}

/**
 * Trend following: go long when the fast EMA crosses above the slow one, short
 * when it crosses below; the stop loss sits `atrStopMultiple` ATRs from the
 * close, the take profit `atrTakeProfitMultiple` ATRs away. Confidence grows
 * with the gap between the EMAs measured in ATRs.
 */
export const emaCross: StrategyDefinition<EmaCrossParams, EmaCrossState> = {
  kind: "ema-cross",
  timeframe: (p) => p.timeframe,
  init: (p) => ({ fast: emaInit(p.fast), slow: emaInit(p.slow), atr: atrInit(p.atrPeriod), lastSide: 0 }),
  onCandle(state, input, p) {
    const px = candlePrices(input.candle, p.price);
    const next: EmaCrossState = {
      fast: emaUpdate(state.fast, px.close),
      slow: emaUpdate(state.slow, px.close),
      atr: atrUpdate(state.atr, px.high, px.low, px.close),
      lastSide: state.lastSide,
    };
    const fast = emaValue(next.fast);
    const slow = emaValue(next.slow);
    const atr = atrValue(next.atr);
    if (fast === null || slow === null || atr === null || atr <= 0) return { state: next, signal: null };
    const side = fast > slow ? 1 : fast < slow ? -1 : state.lastSide;
    next.lastSide = side;
    // A cross needs a known previous side: the first ready candle only sets it.
    if (state.lastSide === 0 || side === state.lastSide) return { state: next, signal: null };
    const long = side > 0;
    const stop = Math.round(long ? px.close - p.atrStopMultiple * atr : px.close + p.atrStopMultiple * atr);
    const tp = p.atrTakeProfitMultiple === null ? undefined : Math.round(long ? px.close + p.atrTakeProfitMultiple * atr : px.close - p.atrTakeProfitMultiple * atr);
    return {
      state: next,
      signal: {
        type: long ? "buy" : "sell",
        confidence: clamp01(0.5 + Math.abs(fast - slow) / atr),
        reason: `EMA${p.fast} crossed ${long ? "above" : "below"} EMA${p.slow}`,
        stopLoss: stop,
        ...(tp !== undefined ? { takeProfit: tp } : {}),
        metadata: { emaFast: fast, emaSlow: slow, atr },
      },
    };
  },
};
