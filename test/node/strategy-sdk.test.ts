/**
 * The strategy API as a user's code meets it: what a step sees (candles of
 * several timeframes, indicators warm or null, its position, the seeded
 * random source) and what becomes of what it does (actions checked; a throw,
 * a second action, garbage or a state that is not JSON is a fault and never
 * a signal). Then the multi-timeframe example through the test kit.
 */
import * as v from "valibot";
import { describe, expect, it } from "vitest";
import type { Candle, Timeframe } from "../../src/domain/candle.ts";
import { getInstrument } from "../../src/domain/instruments.ts";
import { defineStrategy, SMA, type StrategyContext, type StrategyDefinition } from "../../src/domain/strategy/index.ts";
import { RunMemory } from "../../src/domain/strategy/run-memory.ts";
import { STEP_BUDGET_OPS_DEFAULT } from "../../src/domain/strategy/meter.ts";
import { stepStrategy, type StepOutcome } from "../../src/domain/strategy/step.ts";
import type { Position } from "../../src/domain/trading/position.ts";
import type { OrderIntent } from "../../src/domain/trading/types.ts";
import { StrategyFaultError } from "../../src/replay/backtester.ts";
import { candlesFromCsv, runStrategy, type KitCandle } from "../../src/replay/test-kit.ts";

const eur = getInstrument("EUR_USD");
const T0 = Date.UTC(2024, 0, 2); // a Tuesday
const HOUR = 3_600_000;

function candle(i: number, close: number, tf: Timeframe = "1h"): Candle {
  const ms = tf === "1h" ? HOUR : tf === "4h" ? 4 * HOUR : 60_000;
  return { t: T0 + i * ms, bo: close, bh: close + 5, bl: close - 5, bc: close, ao: close + 10, ah: close + 15, al: close + 5, ac: close + 10, n: 3 };
}

type Probe = (ctx: StrategyContext<Record<string, unknown>>, state: unknown) => unknown;

/** A one-off strategy whose step is `probe`, watching 1h (and 4h when asked). */
function probeStrategy(probe: Probe, extra: Partial<StrategyDefinition<Record<string, unknown>, unknown>> = {}): StrategyDefinition<Record<string, unknown>, unknown> {
  return defineStrategy<Record<string, unknown>, unknown>({
    name: "probe",
    description: "test",
    params: v.object({}),
    watch: () => ({ timeframes: ["1h"], history: 3 }),
    init: () => ({}),
    onCandle: (ctx, state) => probe(ctx, state),
    ...extra,
  });
}

function stepOnce(definition: StrategyDefinition<Record<string, unknown>, unknown>, opts: { position?: Position | null; closes?: number[]; entries?: OrderIntent[] } = {}): StepOutcome {
  const memory = new RunMemory(definition, {}, eur);
  const closes = opts.closes ?? [110_000];
  closes.forEach((c, i) => memory.feed("1h", candle(i, c)));
  const last = candle(closes.length - 1, closes[closes.length - 1] as number);
  return stepStrategy(definition, {}, memory, {}, { tf: "1h", candle: last, position: opts.position ?? null, entries: opts.entries ?? [], strategyId: "probe", budgetOps: STEP_BUDGET_OPS_DEFAULT }, eur);
}

describe("what a step sees", () => {
  it("decimal candles of bid, ask and mid, the history it asked for, the close time as its only clock", () => {
    let seen: StrategyContext<Record<string, unknown>> | null = null;
    const out = stepOnce(probeStrategy((ctx) => ((seen = ctx), {})), { closes: [110_000, 110_100, 110_200, 110_300] });
    expect(out).toEqual({ ok: true, state: {}, draft: null, cancels: [] });
    const ctx = seen as unknown as StrategyContext<Record<string, unknown>>;
    expect(ctx.now).toBe(T0 + 4 * HOUR);
    expect(ctx.candle).toMatchObject({ timeframe: "1h", time: T0 + 3 * HOUR, closeTime: T0 + 4 * HOUR, close: 1.10305, bid: { close: 1.103, high: 1.10305 }, ask: { close: 1.1031 }, ticks: 3 });
    // history: 3 kept of 4 fed, oldest first
    expect(ctx.candles("1h").map((c) => c.bid.close)).toEqual([1.101, 1.102, 1.103]);
    expect(() => ctx.candles("4h")).toThrow(/does not watch that timeframe/);
    expect(ctx.instrument).toEqual({ symbol: "EUR_USD", base: "EUR", quote: "USD", pip: 0.0001, precision: 5 });
  });

  it("indicators are null until stable, then trading-signals' values", () => {
    const values: (number | null)[] = [];
    const def = probeStrategy((ctx) => (values.push(ctx.indicator("sma")), {}), {
      indicators: () => ({ sma: { timeframe: "1h", price: "bid", create: () => new SMA(3) } }),
    });
    const memory = new RunMemory(def, {}, eur);
    [110_000, 110_300, 110_600, 110_900].forEach((c, i) => {
      memory.feed("1h", candle(i, c));
      stepStrategy(def, {}, memory, {}, { tf: "1h", candle: candle(i, c), position: null, strategyId: "p", budgetOps: STEP_BUDGET_OPS_DEFAULT }, eur);
    });
    expect(values.slice(0, 2)).toEqual([null, null]);
    expect(values[2]).toBeCloseTo(1.103, 12);
    expect(values[3]).toBeCloseTo(1.106, 12);
  });

  it("its own position: signed units, average entry, unrealised P&L at the close, protection", () => {
    const position = {
      id: "EUR_USD:probe:f1", pair: "EUR_USD", strategyId: "probe", status: "OPEN", side: "sell", units: 20_000, costUnitPoints: 20_000 * 110_500, entryPrice: 110_500,
      accountCurrency: "USD", stopLoss: 111_000, takeProfit: 109_000, breakEven: { triggerPips: 10, offsetPips: 1, status: "MOVED" },
      realisedPnlQuoteMicros: 0, realisedPnlAccountCents: 0, commissionQuoteMicros: 0, commissionAccountCents: 0, openedAt: T0, lastFillId: "f1", fillCount: 1, version: 1,
    } as Position;
    let view: unknown = null;
    stepOnce(probeStrategy((ctx) => ((view = ctx.position), {})), { position, closes: [110_000] });
    expect(view).toEqual({ side: "short", units: -20_000, averagePrice: 1.105, unrealizedPnlQuote: expect.closeTo(-20_000 * (1.10005 - 1.105), 9), stopLoss: 1.11, takeProfit: 1.09, trailingStop: null, breakEvenDone: true, openedAt: T0 });
  });

  it("a random source seeded by pair, strategy and candle: the same numbers on every run", () => {
    const draw = (closes: number[]) => {
      let xs: number[] = [];
      stepOnce(probeStrategy((ctx) => ((xs = [ctx.random(), ctx.random()]), {})), { closes });
      return xs;
    };
    expect(draw([110_000])).toEqual(draw([110_000]));
    expect(draw([110_000, 110_100])).not.toEqual(draw([110_000]));
    for (const x of draw([110_000])) expect(x >= 0 && x < 1).toBe(true);
  });
});

describe("what becomes of what it does", () => {
  it("an action becomes a signal draft, prices in points, protection and units with it", () => {
    const out = stepOnce(probeStrategy((ctx) => (ctx.buy({ units: 5_000, stopLoss: 1.099, takeProfit: 1.1125, trailingStopPips: 15, confidence: 0.7, reason: "r", metadata: { k: 1 } }), {})));
    expect(out).toEqual({ ok: true, state: {}, cancels: [], draft: { type: "buy", confidence: 0.7, reason: "r", metadata: { k: 1 }, stopLoss: 109_900, takeProfit: 111_250, order: { units: 5_000, trailingStopPips: 15 } } });
    const target = stepOnce(probeStrategy((ctx) => (ctx.target(-3_000), {})));
    expect(target).toMatchObject({ ok: true, draft: { type: "sell", order: { units: 3_000 } } });
    expect(stepOnce(probeStrategy((ctx) => (ctx.target(0, { reason: "flat" }), {})))).toMatchObject({ ok: true, draft: { type: "close", reason: "flat" } });
  });

  it("withdraws its resting entries by id or all at once, besides its one action; unknown ids are passed over", () => {
    const rest = (id: string, side: "buy" | "sell"): OrderIntent => ({ clientOrderId: id, pair: "EUR_USD", strategyId: "probe", side, units: 10_000, type: "limit", price: side === "buy" ? 109_000 : 111_000, expiresAtMs: T0 + 10 * HOUR, reduceOnly: false, signalId: `s-${id}`, createdAt: T0 });
    const entries = [rest("a", "buy"), rest("b", "sell")];
    let ids: string[] = [];
    const one = stepOnce(probeStrategy((ctx) => ((ids = ctx.orders.map((o) => o.id)), ctx.cancel("b"), ctx.cancel("b"), ctx.cancel("gone"), {})), { entries });
    expect(ids).toEqual(["a", "b"]);
    expect(one).toMatchObject({ ok: true, draft: null, cancels: ["b"] });
    // Cancel everything and place a new entry in the same step.
    const all = stepOnce(probeStrategy((ctx) => (ctx.cancel(), ctx.enter({ side: "sell", type: "limit", price: 1.12, expiresAfterMs: HOUR }), {})), { entries });
    expect(all).toMatchObject({ ok: true, cancels: ["a", "b"], draft: { type: "sell", order: { entry: { type: "limit", price: 112_000 } } } });
    expect(stepOnce(probeStrategy((ctx) => (ctx.cancel(7 as never), {})), { entries })).toMatchObject({ ok: false, fault: { code: "invalid_action", message: expect.stringMatching(/cancel: the id must be a string/) } });
  });

  it("a throw, a second action, garbage or a state that is not JSON is a fault, never a signal", () => {
    const fault = (probe: Probe) => {
      const out = stepOnce(probeStrategy(probe));
      expect(out.ok).toBe(false);
      return out.ok ? null : out.fault;
    };
    expect(fault(() => { throw new TypeError("boom"); })).toEqual({ code: "threw", message: "TypeError: boom" });
    expect(fault((ctx) => (ctx.buy(), ctx.sell(), {}))).toMatchObject({ code: "invalid_action", message: expect.stringMatching(/one action per step/) });
    expect(fault((ctx) => (ctx.buy({ units: -5 }), {}))).toMatchObject({ code: "invalid_action", message: expect.stringMatching(/units/) });
    expect(fault((ctx) => (ctx.buy({ stopLoss: Number.NaN }), {}))).toMatchObject({ code: "invalid_action" });
    expect(fault((ctx) => (ctx.buy({ stopLoss: 1e30 }), {}))).toMatchObject({ code: "invalid_action", message: expect.stringMatching(/not a price of EUR_USD/) });
    expect(fault((ctx) => (ctx.buy({ confidence: 2 }), {}))).toMatchObject({ code: "invalid_action" });
    expect(fault((ctx) => (ctx.buy({ units: 1, leverage: 50 } as never), {}))).toMatchObject({ code: "invalid_action", message: expect.stringMatching(/leverage/) });
    expect(fault((ctx) => (ctx.target(0.5), {}))).toMatchObject({ code: "invalid_action" });
    expect(fault(() => undefined)).toMatchObject({ code: "invalid_state" });
    expect(fault(() => ({ f: () => 1 }))).toMatchObject({ code: "invalid_state" });
    expect(fault(() => ({ x: Number.NaN }))).toMatchObject({ code: "invalid_state" });
    expect(fault(() => ({ big: "x".repeat(70_000) }))).toMatchObject({ code: "invalid_state", message: expect.stringMatching(/bytes of JSON/) });
    expect(fault(() => Promise.resolve({}))).toMatchObject({ code: "invalid_state", message: expect.stringMatching(/synchronous/) });
  });

  it("no wall clock and no Math.random inside a step; both come back after it", () => {
    expect(stepOnce(probeStrategy(() => ({ t: Date.now() })))).toMatchObject({ ok: false, fault: { code: "invalid_action", message: expect.stringMatching(/Date.now\(\) is not available.*ctx.now/) } });
    expect(stepOnce(probeStrategy(() => ({ r: Math.random() })))).toMatchObject({ ok: false, fault: { message: expect.stringMatching(/Math.random\(\) is not available.*ctx.random/) } });
    expect(stepOnce(probeStrategy(() => ({ r: performance.now() })))).toMatchObject({ ok: false, fault: { message: expect.stringMatching(/performance.now/) } });
    expect(Date.now()).toBeGreaterThan(T0);
    expect(Math.random()).toBeLessThan(1);
  });

  it("a definition that cannot run says why when its run is created", () => {
    expect(() => new RunMemory(probeStrategy(() => ({}), { watch: () => ({ timeframes: [] }) }), {}, eur)).toThrow(/at least one timeframe/);
    expect(() => new RunMemory(probeStrategy(() => ({}), { watch: () => ({ timeframes: ["1h"], history: 5_000 }) }), {}, eur)).toThrow(/history must be a whole number in 1..1000/);
  });
});

describe("the multi-timeframe example through the test kit", () => {
  /** Hourly candles: a steady 4h uptrend with a sharp pullback in it. */
  function trendWithPullback(): KitCandle[] {
    const out: KitCandle[] = [];
    let price = 1.1;
    for (let i = 0; i < 24 * 20; i++) {
      const inPullback = i % 48 >= 40; // 8 falling hours every 2 days
      const next = price + (inPullback ? -0.0012 : 0.0006);
      out.push({ time: T0 + i * HOUR, open: price, high: Math.max(price, next) + 0.0003, low: Math.min(price, next) - 0.0003, close: next });
      price = next;
    }
    return out;
  }

  it("buys pullbacks only with the higher timeframe's trend, with its stop and target, the same on every run", () => {
    const options = { pair: "EUR_USD", timeframe: "1h" as const, candles: trendWithPullback(), params: { trendTimeframe: "1D", entryTimeframe: "1h", trendPeriod: 3, rsiPeriod: 5, pullback: 40 } };
    const run = runStrategy("trend-pullback", options);
    const entries = run.signals.filter((s) => s.type !== "close");
    expect(entries.length).toBeGreaterThan(3);
    expect(entries.every((s) => s.type === "buy" && s.timeframe === "1h" && s.stopLoss !== undefined && s.takeProfit !== undefined)).toBe(true);
    expect(run.orders.every((o) => o.filled !== null)).toBe(true);
    expect(run.trades.length).toBeGreaterThan(2);
    expect(JSON.stringify(runStrategy("trend-pullback", options))).toBe(JSON.stringify(run));
    // Flat before each entry: an entry only ever opens a position.
    expect(run.orders.filter((o) => o.intent.signalId !== undefined && !o.intent.reduceOnly).every((o) => o.intent.units === 10_000)).toBe(true);
  });

  it("refuses parameters that make no sense together, and candles out of order", () => {
    expect(() => runStrategy("trend-pullback", { pair: "EUR_USD", candles: trendWithPullback(), params: { trendTimeframe: "15m", entryTimeframe: "1h" } })).toThrow(/trendTimeframe must be longer/);
    const shuffled = trendWithPullback().slice(0, 3).reverse();
    expect(() => runStrategy("trend-pullback", { pair: "EUR_USD", timeframe: "1h", candles: shuffled })).toThrow(/time order/);
  });

  it("a backtest of a strategy that fails stops there, in the strategy's words", () => {
    const candles = Array.from({ length: 5 }, (_, i) => ({ time: T0 + i * HOUR, open: 1.1, high: 1.1002, low: 1.0998, close: 1.1 }));
    expect(() => runStrategy("faulty", { pair: "EUR_USD", timeframe: "1h", candles, params: { timeframe: "1h", mode: "throw", after: 3 } })).toThrow(
      new StrategyFaultError("faulty", T0 + 3 * HOUR, { code: "threw", message: "Error: faulty: failing at candle 3" }),
    );
  });

  it("reads candles from CSV", () => {
    const csv = "time,open,high,low,close\n2024-01-02T00:00:00Z,1.1,1.1004,1.0998,1.1002\n\n1704157260000,1.1002,1.1003,1.1,1.1001\n";
    expect(candlesFromCsv(csv)).toEqual([
      { time: "2024-01-02T00:00:00Z", open: 1.1, high: 1.1004, low: 1.0998, close: 1.1002 },
      { time: 1704157260000, open: 1.1002, high: 1.1003, low: 1.1, close: 1.1001 },
    ]);
    expect(() => candlesFromCsv("when,open\n1,2")).toThrow(/needs a time column/);
    expect(runStrategy("sma-cross", { pair: "EUR_USD", candles: csv, params: { timeframe: "1m", fast: 2, slow: 3 } }).result.bars).toBe(2);
  });
});

describe("ctx.account in a backtest", () => {
  it("is the initial balance plus the P&L marked at each close, in the account currency", () => {
    const T = Date.UTC(2024, 0, 2);
    const closes = [1.1, 1.101, 1.102, 1.1005, 1.103];
    const candles = closes.map((close, i) => ({ time: T + i * 3_600_000, open: i === 0 ? 1.1 : closes[i - 1]!, high: Math.max(close, closes[i - 1] ?? close), low: Math.min(close, closes[i - 1] ?? close), close }));
    const run = runStrategy("probe", { pair: "EUR_USD", timeframe: "1h", candles, params: { timeframe: "1h" } });
    // Bought at the second candle's open, at its ask (1.1000 + 1 pip); marked at each close's bid.
    expect(run.signals.map((s) => s.metadata)).toEqual([
      { currency: "USD", equity: 100_000 },
      { currency: "USD", equity: 100_009 },
      { currency: "USD", equity: 100_019 },
      { currency: "USD", equity: 100_004 },
      { currency: "USD", equity: 100_029 },
    ]);
  });
});

describe("onTick", () => {
  it("range-breakout decides on the tick that breaks the last candle's range and is filled at that tick's price", () => {
    const T = Date.UTC(2024, 0, 2, 10);
    const candles = [
      { time: T, open: 1.1005, high: 1.101, low: 1.1, close: 1.1006 },
      // Up: its path is open, low, high (30 s in), close: the high breaks 1.1010 + 2 pips.
      { time: T + 60_000, open: 1.1006, high: 1.103, low: 1.1004, close: 1.1025 },
      // Down through the second candle's low: a tick decides before the stop is checked, so it reverses.
      { time: T + 120_000, open: 1.1025, high: 1.1026, low: 1.099, close: 1.0995 },
    ];
    const run = runStrategy("range-breakout", { pair: "EUR_USD", timeframe: "1m", candles, params: { timeframe: "1m", bufferPips: 2 } });
    expect(run.signals.map((s) => ({ type: s.type, ts: s.ts, candleT: s.candleT, timeframe: s.timeframe, stopLoss: s.stopLoss }))).toEqual([
      { type: "buy", ts: T + 90_000, candleT: T + 60_000, timeframe: "1m", stopLoss: 110_000 },
      { type: "sell", ts: T + 150_000, candleT: T + 120_000, timeframe: "1m", stopLoss: 110_310 },
    ]);
    expect(run.orders.map((o) => [o.intent.side, o.intent.units, o.filled?.price, o.filled?.ts])).toEqual([
      ["buy", 10_000, 110_310, T + 90_000],
      ["sell", 20_000, 109_900, T + 150_000],
      // The end of the data closes what is open.
      ["buy", 10_000, 109_960, T + 180_000],
    ]);
    expect(run.trades.map((t) => [t.side, t.entryPrice, t.exitPrice, t.exitReason])).toEqual([["buy", 1.1031, 1.099, "signal"], ["sell", 1.099, 1.0996, "end"]]);
  });

  it("a strategy that asks for ticks must define onTick", () => {
    const def = probeStrategy(() => ({}), { watch: () => ({ timeframes: ["1h"], ticks: true }) });
    expect(() => new RunMemory(def, {}, eur)).toThrow(/define onTick/);
  });
});

