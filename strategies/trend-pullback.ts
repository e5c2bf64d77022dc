import { ATR, defineStrategy, EMA, param, RSI, v } from "../src/domain/strategy/index.ts";

/**
 * Two timeframes: a slow EMA on the higher one (default 4h) says which way
 * the trend runs; on the lower one (default 15m) an RSI pullback against it
 * is the entry, with an ATR stop and target. Flat again when the higher
 * timeframe's trend turns against the position. Trades only with the trend,
 * and only when flat.
 */
export default defineStrategy({
  name: "trend-pullback",
  description: "Higher-timeframe EMA trend filter, lower-timeframe RSI pullback entries with ATR stop and target",
  params: v.pipe(
    v.object({
      trendTimeframe: param.timeframe("4h"),
      entryTimeframe: param.timeframe("15m"),
      trendPeriod: param.period(50),
      rsiPeriod: param.period(14),
      /** Buy a pullback in an uptrend when RSI falls below this (sell above 100 - it in a downtrend). */
      pullback: param.number(35, 5, 49),
      atrPeriod: param.period(14),
      atrStopMultiple: param.number(2, 0.1, 20),
      atrTargetMultiple: param.number(3, 0.1, 40),
    }),
    v.check((p) => timeframeMinutes(p.trendTimeframe) > timeframeMinutes(p.entryTimeframe), "trendTimeframe must be longer than entryTimeframe"),
  ),
  watch: (p) => ({ timeframes: [p.entryTimeframe, p.trendTimeframe], history: 2 }),
  indicators: (p) => ({
    trend: { timeframe: p.trendTimeframe, create: () => new EMA(p.trendPeriod) },
    rsi: { timeframe: p.entryTimeframe, create: () => new RSI(p.rsiPeriod) },
    atr: { timeframe: p.entryTimeframe, input: "hlc", create: () => new ATR(p.atrPeriod) },
  }),
  /** The trend as the last higher-timeframe candle left it: 1 up, -1 down, 0 unknown. */
  init: () => ({ trend: 0 }),
  onCandle(ctx, state) {
    const p = ctx.params;
    if (ctx.candle.timeframe === p.trendTimeframe) {
      const ema = ctx.indicator("trend");
      const trend = ema === null ? 0 : ctx.candle.close > ema ? 1 : ctx.candle.close < ema ? -1 : state.trend;
      const held = ctx.position;
      if (held && trend !== 0 && Math.sign(held.units) !== trend) ctx.close({ reason: `the ${p.trendTimeframe} trend turned`, metadata: { ema } });
      return { trend };
    }
    const rsi = ctx.indicator("rsi");
    const atr = ctx.indicator("atr");
    if (ctx.position || state.trend === 0 || rsi === null || atr === null || atr <= 0) return state;
    const close = ctx.candle.close;
    const metadata = { rsi, atr, trend: state.trend };
    if (state.trend > 0 && rsi < p.pullback) {
      ctx.buy({ reason: `pullback in a ${p.trendTimeframe} uptrend (RSI ${rsi.toFixed(1)})`, stopLoss: close - p.atrStopMultiple * atr, takeProfit: close + p.atrTargetMultiple * atr, metadata });
    } else if (state.trend < 0 && rsi > 100 - p.pullback) {
      ctx.sell({ reason: `pullback in a ${p.trendTimeframe} downtrend (RSI ${rsi.toFixed(1)})`, stopLoss: close + p.atrStopMultiple * atr, takeProfit: close - p.atrTargetMultiple * atr, metadata });
    }
    return state;
  },
});

function timeframeMinutes(tf: string): number {
  return { "1m": 1, "5m": 5, "15m": 15, "1h": 60, "4h": 240, "1D": 1440 }[tf] ?? 0;
}
