import { defineStrategy, param, v } from "../../src/domain/strategy/index.ts";

/**
 * A strategy that fails on purpose, for the tests of suspension (included
 * only when FXRT_TEST_STRATEGIES=1): from its `after`-th candle it throws,
 * acts with garbage, acts twice, returns a state that is not JSON, loops
 * forever, or loops forever catching the budget's error; before that it
 * counts candles and does nothing.
 */
export default defineStrategy({
  name: "faulty",
  description: "Fails on purpose from its after-th candle (tests only)",
  params: v.object({
    timeframe: param.timeframe("1m"),
    mode: param.choice(["throw", "garbage", "twice", "state", "loop", "swallow"], "throw"),
    after: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(1_000)), 1),
  }),
  watch: (p) => ({ timeframes: [p.timeframe] }),
  init: () => ({ candles: 0 }),
  onCandle(ctx, state) {
    const candles = state.candles + 1;
    if (candles < ctx.params.after) return { candles };
    switch (ctx.params.mode) {
      case "throw":
        throw new Error(`faulty: failing at candle ${candles}`);
      case "garbage":
        ctx.buy({ units: -5 });
        return { candles };
      case "twice":
        ctx.buy();
        ctx.sell();
        return { candles };
      case "state":
        return { candles: Number.NaN };
      case "loop":
        for (;;) ctx.candles(ctx.params.timeframe);
      case "swallow": {
        // Catches every error, the budget's too, and buys once "done".
        let spins = 0;
        try {
          while (spins >= 0) spins = spin(spins);
        } catch {
          // fall through as if nothing happened
        }
        ctx.buy();
        return { candles };
      }
    }
  },
});

function spin(n: number): number {
  return n + 1;
}
