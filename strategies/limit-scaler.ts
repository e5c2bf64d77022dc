import { ATR, defineStrategy, EMA, param, v } from "../src/domain/strategy/index.ts";

const TIMEFRAME_MS = { "1m": 60_000, "5m": 300_000, "15m": 900_000, "1h": 3_600_000, "4h": 14_400_000, "1D": 86_400_000 } as const;

/**
 * Limit entries that expire, and scaling in by position: with the trend (the
 * close against a slow EMA), a flat strategy rests a limit entry some ATRs
 * back from the close, with a stop, for a few candles; filled, it adds its
 * configured units again each time price has run `scaleAtr` ATRs beyond the
 * average entry, up to `maxAdds` times; it is flat again when the trend turns.
 * An entry still resting when the trend no longer backs it is withdrawn (and
 * one on the new side placed in the same step).
 */
export default defineStrategy({
  name: "limit-scaler",
  description: "Expiring limit entries with the EMA trend, scaling in as the position runs, out when the trend turns",
  params: v.object({
    timeframe: param.timeframe("1h"),
    trendPeriod: param.period(50),
    atrPeriod: param.period(14),
    /** How far back from the close the limit rests, in ATRs. */
    entryAtr: param.number(0.5, 0, 10),
    /** Candles the entry rests before it expires. */
    expiryCandles: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(100)), 4),
    stopAtr: param.number(2, 0.1, 20),
    /** Add once price is this many ATRs beyond the average entry. */
    scaleAtr: param.number(1, 0.1, 20),
    maxAdds: v.optional(v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(5)), 2),
  }),
  watch: (p) => ({ timeframes: [p.timeframe] }),
  indicators: (p) => ({
    trend: { timeframe: p.timeframe, create: () => new EMA(p.trendPeriod) },
    atr: { timeframe: p.timeframe, input: "hlc", create: () => new ATR(p.atrPeriod) },
  }),
  /** The units one entry adds (learnt from the first fill) and how many adds so far. */
  init: () => ({ base: 0, adds: 0 }),
  onCandle(ctx, state) {
    const p = ctx.params;
    const ema = ctx.indicator("trend");
    const atr = ctx.indicator("atr");
    if (ema === null || atr === null || atr <= 0) return state;
    const close = ctx.candle.close;
    const trend = close > ema ? 1 : close < ema ? -1 : 0;
    const held = ctx.position;
    if (held) {
      const base = state.base || Math.abs(held.units);
      const side = Math.sign(held.units);
      if (trend !== 0 && trend !== side) {
        ctx.close({ reason: "the trend turned", metadata: { ema } });
        return { base: 0, adds: 0 };
      }
      const run = side * (close - held.averagePrice);
      if (state.adds < p.maxAdds && run >= p.scaleAtr * atr) {
        ctx.target(held.units + side * base, { reason: `scale in: ${(run / atr).toFixed(1)} ATR beyond the average entry`, metadata: { atr, averagePrice: held.averagePrice } });
        return { base, adds: state.adds + 1 };
      }
      return { base, adds: state.adds };
    }
    const stale = ctx.orders.filter((o) => (o.side === "buy" ? 1 : -1) !== trend);
    for (const o of stale) ctx.cancel(o.id);
    if (trend === 0 || ctx.orders.length > stale.length) return { base: 0, adds: 0 };
    const price = close - trend * p.entryAtr * atr;
    ctx.enter({
      side: trend > 0 ? "buy" : "sell",
      type: "limit",
      price,
      expiresAfterMs: p.expiryCandles * TIMEFRAME_MS[p.timeframe],
      stopLoss: price - trend * p.stopAtr * atr,
      reason: `limit ${p.entryAtr} ATR back, with the ${trend > 0 ? "up" : "down"}trend`,
      metadata: { ema, atr },
    });
    return { base: 0, adds: 0 };
  },
});
