import type { RsiReversionParams } from "../../../../schemas/strategy.ts";
import { atrInit, atrUpdate, atrValue, rsiInit, rsiUpdate, rsiValue, type AtrState, type RsiState } from "../series-state.ts";
import { candlePrices, clamp01, type StrategyDefinition } from "../strategy.ts";

export interface RsiReversionState {
  rsi: RsiState;
  atr: AtrState;
  lastRsi: number | null;
}

/**
 * Mean reversion: buy when RSI falls below `oversold`, sell when it rises
 * above `overbought`, and close when it crosses back over `exitLevel`. The
 * stop sits `atrStopMultiple` ATRs beyond the close. Confidence grows with how
 * far RSI went past its threshold.
 */
export const rsiReversion: StrategyDefinition<RsiReversionParams, RsiReversionState> = {
  kind: "rsi-reversion",
  timeframe: (p) => p.timeframe,
  init: (p) => ({ rsi: rsiInit(p.period), atr: atrInit(p.atrPeriod), lastRsi: null }),
  onCandle(state, input, p) {
    const px = candlePrices(input.candle, p.price);
    const rsiState = rsiUpdate(state.rsi, px.close);
    const atrState = atrUpdate(state.atr, px.high, px.low, px.close);
    const rsi = rsiValue(rsiState);
    const atr = atrValue(atrState);
    const next: RsiReversionState = { rsi: rsiState, atr: atrState, lastRsi: rsi };
    const prev = state.lastRsi;
    if (rsi === null || prev === null || atr === null || atr <= 0) return { state: next, signal: null };
    const metadata = { rsi, atr };
    if (prev >= p.oversold && rsi < p.oversold) {
      return {
        state: next,
        signal: {
          type: "buy",
          confidence: clamp01(0.5 + (p.oversold - rsi) / p.oversold),
          reason: `RSI${p.period} fell below ${p.oversold}`,
          stopLoss: Math.round(px.close - p.atrStopMultiple * atr),
          metadata,
        },
      };
    }
    if (prev <= p.overbought && rsi > p.overbought) {
      return {
        state: next,
        signal: {
          type: "sell",
          confidence: clamp01(0.5 + (rsi - p.overbought) / (100 - p.overbought)),
          reason: `RSI${p.period} rose above ${p.overbought}`,
          stopLoss: Math.round(px.close + p.atrStopMultiple * atr),
          metadata,
        },
      };
    }
    const crossedExit = (prev < p.exitLevel && rsi >= p.exitLevel) || (prev > p.exitLevel && rsi <= p.exitLevel);
    if (crossedExit) {
      return { state: next, signal: { type: "close", confidence: 1, reason: `RSI${p.period} crossed ${p.exitLevel}`, metadata } };
    }
    return { state: next, signal: null };
  },
};
