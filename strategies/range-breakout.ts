import { defineStrategy, param, v } from "../src/domain/strategy/index.ts";

/**
 * A strategy that decides on every tick (onTick): once the bid breaks above
 * the last closed candle's high (plus a buffer) it goes long, once the ask
 * breaks below its low it goes short, at most once per candle, with the stop
 * at the other side of that candle; a wide spread keeps it out. Candle
 * closes only set the range it watches.
 */
export default defineStrategy({
  name: "range-breakout",
  description: "On every tick: long above the last candle's high, short below its low, stop at the other side",
  params: v.object({
    timeframe: param.timeframe("15m"),
    bufferPips: param.number(2, 0, 100),
    maxSpreadPips: param.number(3, 0.1, 50),
  }),
  watch: (p) => ({ timeframes: [p.timeframe], ticks: true }),
  /** The start of the candle whose range it last traded (one breakout per candle). */
  init: () => ({ traded: null as number | null }),
  onCandle: (_ctx, state) => state,
  onTick(ctx, state) {
    const range = ctx.candle;
    const { bid, ask } = ctx.quote;
    const pip = ctx.instrument.pip;
    const p = ctx.params;
    if (range === null || state.traded === range.time || ask - bid > p.maxSpreadPips * pip) return state;
    const held = ctx.position?.units ?? 0;
    if (held <= 0 && bid > range.bid.high + p.bufferPips * pip) {
      ctx.buy({ stopLoss: range.bid.low, reason: "broke above the last candle's high", metadata: { high: range.bid.high, bid } });
      return { traded: range.time };
    }
    if (held >= 0 && ask < range.ask.low - p.bufferPips * pip) {
      ctx.sell({ stopLoss: range.ask.high, reason: "broke below the last candle's low", metadata: { low: range.ask.low, ask } });
      return { traded: range.time };
    }
    return state;
  },
});
