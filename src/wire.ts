import type { Candle, Tick } from "./domain/candle.ts";
import type { Instrument } from "./domain/instruments.ts";
import { toDecimal } from "./domain/price.ts";
import type { WireCandle } from "../schemas/candle.ts";
import type { WireSignal } from "../schemas/signal.ts";
import type { Signal } from "./domain/trading/types.ts";

/** Integer-point candle -> wire candle with decimal prices. */
export function toWireCandle(c: Candle, instrument: Instrument, complete: boolean): WireCandle {
  const d = (p: number) => toDecimal(p, instrument);
  return {
    t: c.t,
    bid: { o: d(c.bo), h: d(c.bh), l: d(c.bl), c: d(c.bc) },
    ask: { o: d(c.ao), h: d(c.ah), l: d(c.al), c: d(c.ac) },
    n: c.n,
    complete,
  };
}

export function toWireTick(t: Tick, instrument: Instrument): { ts: number; bid: number; ask: number } {
  return { ts: t.ts, bid: toDecimal(t.bid, instrument), ask: toDecimal(t.ask, instrument) };
}

/** Domain signal -> wire signal (protective levels as decimal prices). */
export function toWireSignal(s: Signal, instrument: Instrument): WireSignal {
  return {
    id: s.id,
    pair: s.pair,
    strategyId: s.strategyId,
    timeframe: s.timeframe,
    type: s.type,
    confidence: s.confidence,
    reason: s.reason,
    time: s.ts,
    candleT: s.candleT,
    ...(s.stopLoss !== undefined ? { stopLoss: toDecimal(s.stopLoss, instrument) } : {}),
    ...(s.takeProfit !== undefined ? { takeProfit: toDecimal(s.takeProfit, instrument) } : {}),
    metadata: s.metadata,
  };
}
