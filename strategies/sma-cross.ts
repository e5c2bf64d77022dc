import { defineStrategy, param, SMA, v } from "../src/domain/strategy/index.ts";

/**
 * The reference strategy of the backtests: at each close compute SMA(fast)
 * and SMA(slow) of the closes; a cross up (fast > slow now, fast <= slow
 * before) means be long, a cross down (fast < slow now, fast >= slow before)
 * be short. Stop and reverse, no stops.
 */
export default defineStrategy({
  name: "sma-cross",
  description: "Stop and reverse on crosses of a fast and a slow simple moving average",
  params: v.pipe(
    v.object({
      timeframe: param.timeframe("1h"),
      fast: param.period(20),
      slow: param.period(50),
      price: param.choice(["bid", "mid"], "bid"),
    }),
    v.check((p) => p.fast < p.slow, "fast must be shorter than slow"),
  ),
  watch: (p) => ({ timeframes: [p.timeframe] }),
  indicators: (p) => ({
    fast: { timeframe: p.timeframe, price: p.price, create: () => new SMA(p.fast) },
    slow: { timeframe: p.timeframe, price: p.price, create: () => new SMA(p.slow) },
  }),
  /** fast - slow on the previous candle, null until both are ready. */
  init: () => ({ lastDiff: null as number | null }),
  onCandle(ctx, state) {
    const fast = ctx.indicator("fast");
    const slow = ctx.indicator("slow");
    const diff = fast !== null && slow !== null ? fast - slow : null;
    const prev = state.lastDiff;
    if (diff !== null && prev !== null) {
      const metadata = { smaFast: fast, smaSlow: slow };
      const { fast: f, slow: s } = ctx.params;
      if (diff > 0 && prev <= 0) ctx.buy({ reason: `SMA${f} crossed above SMA${s}`, metadata });
      if (diff < 0 && prev >= 0) ctx.sell({ reason: `SMA${f} crossed below SMA${s}`, metadata });
    }
    return { lastDiff: diff };
  },
});
