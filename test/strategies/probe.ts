import { defineStrategy, param, v } from "../../src/domain/strategy/index.ts";

/**
 * Reports what a step sees of the account (tests only): from its first
 * candle it holds `units` long and says so at every close, with
 * ctx.account in the signal's metadata.
 */
export default defineStrategy({
  name: "probe",
  description: "Holds long and reports ctx.account at every close (tests only)",
  params: v.object({ timeframe: param.timeframe("1m") }),
  watch: (p) => ({ timeframes: [p.timeframe] }),
  init: () => ({}),
  onCandle(ctx, state) {
    ctx.buy({ metadata: { currency: ctx.account.currency, equity: ctx.account.equity } });
    return state;
  },
});
