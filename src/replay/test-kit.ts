/**
 * The strategy test kit: run a strategy of strategies/ over candles given in
 * a test (an array, or CSV text) with the backtest engine, the very kernel
 * the pair actors trade with, and read back its signals, its orders (filled
 * or refused, with the reason) and its trades. No runtime, no data lake:
 * a plain vitest test.
 *
 *   import { runStrategy } from "../src/replay/test-kit.ts";
 *   const run = runStrategy("sma-cross", { pair: "EUR_USD", candles, params: { fast: 3, slow: 5 } });
 *   expect(run.trades).toHaveLength(2);
 */
import * as v from "valibot";
import type { RiskLimits } from "../../schemas/trading.ts";
import { StrategyConfig } from "../../schemas/strategy.ts";
import type { Candle, Timeframe } from "../domain/candle.ts";
import { bucketEnd, bucketStart } from "../domain/fx-time.ts";
import { getInstrument, type Instrument } from "../domain/instruments.ts";
import { isPricePoints, pipsToPoints, toPoints } from "../domain/price.ts";
import type { Fill, OrderIntent, OrderRejection, Signal } from "../domain/trading/types.ts";
import { Backtester } from "./backtester.ts";
import type { BacktestResult, BacktestTrade } from "./result.ts";

/** A candle given to the kit: decimal prices; `ask` omitted = bid + spreadPips. */
export interface KitCandle {
  /** Start: epoch ms, or an ISO 8601 date-time with a zone. */
  time: number | string;
  open: number;
  high: number;
  low: number;
  close: number;
  ask?: { open: number; high: number; low: number; close: number };
}

export interface KitOptions {
  pair: string;
  /** In time order, of the finest timeframe the strategy reads; or CSV text (see candlesFromCsv). */
  candles: readonly KitCandle[] | string;
  /** The timeframe of the candles given (default 1m). */
  timeframe?: Timeframe;
  params?: Record<string, unknown>;
  /** Units the strategy is configured with (default 10,000). */
  units?: number;
  protection?: StrategyConfig["protection"];
  /** Ask = bid + this when a candle has no ask (default 1 pip). */
  spreadPips?: number;
  risk?: RiskLimits;
}

export interface KitOrder {
  intent: OrderIntent;
  filled: Fill | null;
  refused: OrderRejection | null;
  /** A resting entry that expired unfilled: when. */
  expiredAt: number | null;
  /** A resting entry the strategy withdrew (ctx.cancel): when. */
  cancelledAt: number | null;
}

export interface KitRun {
  signals: Signal[];
  orders: KitOrder[];
  trades: BacktestTrade[];
  result: BacktestResult;
}

/** Candles past this are refused: a test, not a backtest. */
export const KIT_CANDLES_MAX = 1_000_000;

/** Run strategy `kind` (a file of strategies/) over the candles. Throws with a clear message on bad input. */
export function runStrategy(kind: string, options: KitOptions): KitRun {
  const instrument = getInstrument(options.pair);
  const tf = options.timeframe ?? "1m";
  const parsed = v.safeParse(StrategyConfig, {
    id: kind,
    kind,
    ...(options.units !== undefined ? { units: options.units } : {}),
    ...(options.protection !== undefined ? { protection: options.protection } : {}),
    params: options.params ?? {},
  });
  if (!parsed.success) throw new RangeError(parsed.issues.map((i) => i.message).join("; "));
  const spreadPoints = pipsToPoints(options.spreadPips ?? 1, instrument);
  const given = typeof options.candles === "string" ? candlesFromCsv(options.candles) : options.candles;
  if (given.length === 0) throw new RangeError("no candles");
  if (given.length > KIT_CANDLES_MAX) throw new RangeError(`at most ${KIT_CANDLES_MAX} candles`);
  const bars = given.map((c, i) => toBar(c, i, tf, instrument, spreadPoints));
  const signals: Signal[] = [];
  const orders: KitOrder[] = [];
  const backtester = new Backtester({
    instrument,
    strategy: parsed.output,
    fromMs: (bars[0] as Candle).t,
    toMs: bucketEnd(tf, (bars[bars.length - 1] as Candle).t),
    spreadPips: null,
    ...(options.risk ? { risk: options.risk } : {}),
    observer: {
      signal: (s) => signals.push(s),
      order: (intent, outcome) =>
        orders.push({
          intent,
          filled: "filled" in outcome ? outcome.filled : null,
          refused: "refused" in outcome ? outcome.refused : null,
          expiredAt: "expired" in outcome ? outcome.expired : null,
          cancelledAt: "cancelled" in outcome ? outcome.cancelled : null,
        }),
    },
  });
  let lastT = Number.NEGATIVE_INFINITY;
  for (const bar of bars) {
    if (bar.t <= lastT) throw new RangeError(`candles must be in time order, one per ${tf} period: ${new Date(bar.t).toISOString()} after ${new Date(lastT).toISOString()}`);
    lastT = bar.t;
    backtester.onBar(bar, bucketEnd(tf, bar.t));
  }
  const result = backtester.finish();
  return { signals, orders, trades: result.trades, result };
}

function toBar(c: KitCandle, index: number, tf: Timeframe, instrument: Instrument, spreadPoints: number): Candle {
  const t = typeof c.time === "number" ? c.time : Date.parse(c.time);
  if (!Number.isFinite(t)) throw new RangeError(`candle ${index}: time ${String(c.time)} is not a date`);
  if (bucketStart(tf, t) !== t) throw new RangeError(`candle ${index}: ${new Date(t).toISOString()} is not the start of a ${tf} candle`);
  const p = (name: string, price: number): number => {
    const points = toPoints(price, instrument);
    if (!isPricePoints(points)) throw new RangeError(`candle ${index}: ${name} ${price} is not a price of ${instrument.symbol}`);
    return points;
  };
  const bid = { o: p("open", c.open), h: p("high", c.high), l: p("low", c.low), c: p("close", c.close) };
  if (bid.l > Math.min(bid.o, bid.c) || bid.h < Math.max(bid.o, bid.c)) throw new RangeError(`candle ${index}: low/high do not contain open and close`);
  const ask = c.ask
    ? { o: p("ask.open", c.ask.open), h: p("ask.high", c.ask.high), l: p("ask.low", c.ask.low), c: p("ask.close", c.ask.close) }
    : { o: bid.o + spreadPoints, h: bid.h + spreadPoints, l: bid.l + spreadPoints, c: bid.c + spreadPoints };
  return { t, bo: bid.o, bh: bid.h, bl: bid.l, bc: bid.c, ao: ask.o, ah: ask.h, al: ask.l, ac: ask.c, n: 1 };
}

/**
 * Candles from CSV text with a header row: `time,open,high,low,close`
 * (bid prices; `ask_open,ask_high,ask_low,ask_close` may follow). Time is
 * epoch ms or ISO 8601 with a zone. Blank lines are skipped.
 */
export function candlesFromCsv(text: string): KitCandle[] {
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== "");
  const header = (lines.shift() ?? "").split(",").map((h) => h.trim().toLowerCase());
  const col = (name: string) => header.indexOf(name);
  for (const name of ["time", "open", "high", "low", "close"]) if (col(name) < 0) throw new RangeError(`CSV: the header needs a ${name} column (it has: ${header.join(", ")})`);
  const hasAsk = ["ask_open", "ask_high", "ask_low", "ask_close"].every((n) => col(n) >= 0);
  return lines.map((line, i) => {
    const cells = line.split(",").map((c) => c.trim());
    const num = (name: string): number => {
      const n = Number(cells[col(name)]);
      if (cells[col(name)] === undefined || cells[col(name)] === "" || !Number.isFinite(n)) throw new RangeError(`CSV line ${i + 2}: ${name} is not a number`);
      return n;
    };
    const time = cells[col("time")] ?? "";
    return {
      time: /^\d+$/.test(time) ? Number(time) : time,
      open: num("open"),
      high: num("high"),
      low: num("low"),
      close: num("close"),
      ...(hasAsk ? { ask: { open: num("ask_open"), high: num("ask_high"), low: num("ask_low"), close: num("ask_close") } } : {}),
    };
  });
}
