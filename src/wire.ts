import type { Candle, Tick } from "./domain/candle.ts";
import type { Instrument } from "./domain/instruments.ts";
import { toDecimal } from "./domain/price.ts";
import type { WireCandle } from "../schemas/candle.ts";

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
