/**
 * A bid/ask candle. Prices are integer points (see price.ts); `t` is the
 * candle's start in epoch ms UTC; `n` is the number of ticks (or merged 1m bars'
 * tick counts) in it. Mid prices are derivable: (bid + ask) / 2.
 */
export type Candle = {
  t: number;
  bo: number;
  bh: number;
  bl: number;
  bc: number;
  ao: number;
  ah: number;
  al: number;
  ac: number;
  n: number;
};

export const TIMEFRAMES = ["1m", "5m", "15m", "1h", "4h", "1D"] as const;
export type Timeframe = (typeof TIMEFRAMES)[number];

export function isTimeframe(value: string): value is Timeframe {
  return (TIMEFRAMES as readonly string[]).includes(value);
}

/** A tick with integer prices, as stored and aggregated. */
export type Tick = {
  ts: number;
  bid: number;
  ask: number;
};

export function candleFromTick(t: number, tick: Tick): Candle {
  return { t, bo: tick.bid, bh: tick.bid, bl: tick.bid, bc: tick.bid, ao: tick.ask, ah: tick.ask, al: tick.ask, ac: tick.ask, n: 1 };
}

export function addTick(candle: Candle, tick: Tick): void {
  if (tick.bid > candle.bh) candle.bh = tick.bid;
  if (tick.bid < candle.bl) candle.bl = tick.bid;
  if (tick.ask > candle.ah) candle.ah = tick.ask;
  if (tick.ask < candle.al) candle.al = tick.ask;
  candle.bc = tick.bid;
  candle.ac = tick.ask;
  candle.n += 1;
}

/** Merge a later candle into an earlier one (OHLC merge is associative). */
export function mergeCandle(into: Candle, later: Candle): void {
  if (later.bh > into.bh) into.bh = later.bh;
  if (later.bl < into.bl) into.bl = later.bl;
  if (later.ah > into.ah) into.ah = later.ah;
  if (later.al < into.al) into.al = later.al;
  into.bc = later.bc;
  into.ac = later.ac;
  into.n += later.n;
}

/** Mid close as a float, for indicators (not money). */
export function midClose(c: Candle): number {
  return (c.bc + c.ac) / 2;
}
