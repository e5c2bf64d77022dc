import { ATR, defineStrategy, EMA, param, v } from "../src/domain/strategy/index.ts";

/**
 * Trend following: go long when the fast EMA crosses above the slow one,
 * short when it crosses below; the stop loss sits `atrStopMultiple` ATRs from
 * the close, the take profit `atrTakeProfitMultiple` ATRs away (null: none).
 * Confidence grows with the gap between the EMAs measured in ATRs.
 */
export default defineStrategy({
  name: "ema-cross",
  description: "Trend following on crosses of two exponential moving averages, ATR stop and target",
  params: v.pipe(
    v.object({
      timeframe: param.timeframe("15m"),
      fast: param.period(12),
      slow: param.period(26),
      atrPeriod: param.period(14),
      /** Stop loss at this many ATRs from the close. */
      atrStopMultiple: param.number(2, 0.1, 20),
      /** Take profit at this many ATRs from the close; null = none. */
      atrTakeProfitMultiple: v.optional(v.nullable(v.pipe(v.number(), v.finite(), v.minValue(0.1), v.maxValue(20))), 3),
      price: param.choice(["bid", "mid"], "mid"),
    }),
    v.check((p) => p.fast < p.slow, "fast must be shorter than slow"),
  ),
  watch: (p) => ({ timeframes: [p.timeframe] }),
  indicators: (p) => ({
    fast: { timeframe: p.timeframe, price: p.price, create: () => new EMA(p.fast) },
    slow: { timeframe: p.timeframe, price: p.price, create: () => new EMA(p.slow) },
    atr: { timeframe: p.timeframe, price: p.price, input: "hlc", create: () => new ATR(p.atrPeriod) },
  }),
  /** Sign of (fast - slow) on the previous candle: 1, -1, or 0 before both are ready. */
  init: () => ({ lastSide: 0 }),
  onCandle(ctx, state) {
    const fast = ctx.indicator("fast");
    const slow = ctx.indicator("slow");
    const atr = ctx.indicator("atr");
    if (fast === null || slow === null || atr === null || atr <= 0) return state;
    const side = fast > slow ? 1 : fast < slow ? -1 : state.lastSide;
    // A cross needs a known previous side: the first ready candle only sets it.
    if (state.lastSide !== 0 && side !== state.lastSide) {
      const p = ctx.params;
      const close = ctx.candle[p.price].close;
      const long = side > 0;
      const away = (multiple: number) => (long ? close + multiple * atr : close - multiple * atr);
      const order = {
        confidence: Math.min(1, 0.5 + Math.abs(fast - slow) / atr),
        reason: `EMA${p.fast} crossed ${long ? "above" : "below"} EMA${p.slow}`,
        stopLoss: away(-p.atrStopMultiple),
        ...(p.atrTakeProfitMultiple !== null ? { takeProfit: away(p.atrTakeProfitMultiple) } : {}),
        metadata: { emaFast: fast, emaSlow: slow, atr },
      };
      if (long) ctx.buy(order);
      else ctx.sell(order);
    }
    return { lastSide: side };
  },
});
