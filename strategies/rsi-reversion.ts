import { ATR, defineStrategy, param, RSI, v } from "../src/domain/strategy/index.ts";

/**
 * Mean reversion: buy when RSI falls below `oversold`, sell when it rises
 * above `overbought`, and close when it crosses back over `exitLevel`. The
 * stop sits `atrStopMultiple` ATRs beyond the close. Confidence grows with
 * how far RSI went past its threshold.
 */
export default defineStrategy({
  name: "rsi-reversion",
  description: "Mean reversion on RSI extremes, closed when RSI crosses back over its exit level",
  params: v.pipe(
    v.object({
      timeframe: param.timeframe("15m"),
      period: param.period(14),
      oversold: param.number(30, 1, 49),
      overbought: param.number(70, 51, 99),
      /** Close the position when RSI crosses back over this level. */
      exitLevel: param.number(50, 1, 99),
      atrPeriod: param.period(14),
      atrStopMultiple: param.number(1.5, 0.1, 20),
      price: param.choice(["bid", "mid"], "mid"),
    }),
    v.check((p) => p.oversold < p.exitLevel && p.exitLevel < p.overbought, "need oversold < exitLevel < overbought"),
  ),
  watch: (p) => ({ timeframes: [p.timeframe] }),
  indicators: (p) => ({
    rsi: { timeframe: p.timeframe, price: p.price, create: () => new RSI(p.period) },
    atr: { timeframe: p.timeframe, price: p.price, input: "hlc", create: () => new ATR(p.atrPeriod) },
  }),
  init: () => ({ lastRsi: null as number | null }),
  onCandle(ctx, state) {
    const p = ctx.params;
    const rsi = ctx.indicator("rsi");
    const atr = ctx.indicator("atr");
    const prev = state.lastRsi;
    if (rsi === null || prev === null || atr === null || atr <= 0) return { lastRsi: rsi };
    const close = ctx.candle[p.price].close;
    const metadata = { rsi, atr };
    if (prev >= p.oversold && rsi < p.oversold) {
      ctx.buy({
        confidence: Math.min(1, 0.5 + (p.oversold - rsi) / p.oversold),
        reason: `RSI${p.period} fell below ${p.oversold}`,
        stopLoss: close - p.atrStopMultiple * atr,
        metadata,
      });
    } else if (prev <= p.overbought && rsi > p.overbought) {
      ctx.sell({
        confidence: Math.min(1, 0.5 + (rsi - p.overbought) / (100 - p.overbought)),
        reason: `RSI${p.period} rose above ${p.overbought}`,
        stopLoss: close + p.atrStopMultiple * atr,
        metadata,
      });
    } else if ((prev < p.exitLevel && rsi >= p.exitLevel) || (prev > p.exitLevel && rsi <= p.exitLevel)) {
      ctx.close({ reason: `RSI${p.period} crossed ${p.exitLevel}`, metadata });
    }
    return { lastRsi: rsi };
  },
});
