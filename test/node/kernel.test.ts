/**
 * The trading kernel driven directly with a scripted event sequence, the way
 * the pair actor and the backtester drive it: candles to a signal, the
 * signal's order refused and then approved, its fill, the trailing stop
 * moving, an add level, a stop-out and the closing fill. Every effect is
 * checked, and the state passed in is never changed.
 */
import fc from "fast-check";
import * as v from "valibot";
import { describe, expect, it } from "vitest";
import { StrategyConfig } from "../../schemas/strategy.ts";
import { RiskLimits } from "../../schemas/trading.ts";
import type { Candle } from "../../src/domain/candle.ts";
import { getInstrument } from "../../src/domain/instruments.ts";
import { fillMarket } from "../../src/domain/trading/fill-model.ts";
import { emptyKernelState, step, type KernelEffect, type KernelEvent, type KernelState, type OrderContext } from "../../src/domain/trading/kernel.ts";
import { closeIntent } from "../../src/domain/trading/signal-intent.ts";
import { startRun } from "../../src/domain/strategy/run.ts";
import type { OrderIntent, Quote } from "../../src/domain/trading/types.ts";

const EUR_USD = getInstrument("EUR_USD");
const config = { instrument: EUR_USD, accountCurrency: "USD" };
/** A Monday noon, UTC: the weekend guard lets orders through. */
const T0 = Date.UTC(2030, 0, 7, 12);
const MIN = 60_000;
const ACTIVE = { state: "ACTIVE", reason: "", since: 0 } as const;
const NO_COSTS = { slippagePips: 0, commissionPerMillion: 0 };

const strategy = v.parse(StrategyConfig, {
  id: "trend",
  kind: "sma-cross",
  units: 10_000,
  params: { timeframe: "1m", fast: 2, slow: 4, price: "bid" },
  protection: { trailingStopPips: 10, addLevels: { maxLevels: 1, offsetPips: 20, sizeMultiplier: 1 } },
});

const candle = (i: number, close: number): Candle => ({ t: T0 + i * MIN, bo: close, bh: close, bl: close, bc: close, ao: close + 2, ah: close + 2, al: close + 2, ac: close + 2, n: 1 });
const quote = (ts: number, bid: number): Quote => ({ ts, bid, ask: bid + 2 });
const context = (q: Quote, more: Partial<OrderContext> = {}): OrderContext => ({
  nowMs: q.ts,
  quote: q,
  limits: v.parse(RiskLimits, {}),
  tradeable: true,
  brokerAvailable: true,
  tradingState: ACTIVE,
  ...more,
});

/** The state as data: a run's memory (history and indicator objects) is the one part a candle advances in place. */
const asData = (state: KernelState) => structuredClone({ ...state, runs: state.runs.map((r) => ({ config: r.config, state: r.state })) });

/** Step and check that the state passed in came out untouched. */
function run(state: KernelState, event: KernelEvent): { state: KernelState; effects: KernelEffect[] } {
  const before = asData(state);
  const out = step(config, state, event);
  expect(asData(state)).toEqual(before);
  return out;
}

function only<T extends KernelEffect["type"]>(effects: KernelEffect[], type: T): Extract<KernelEffect, { type: T }> {
  expect(effects.map((e) => e.type)).toEqual([type]);
  return effects[0] as Extract<KernelEffect, { type: T }>;
}

describe("trading kernel", () => {
  it("runs a signal, a refused order, a fill, a trailing stop, an add level and a stop-out, effect by effect", () => {
    let state = emptyKernelState([startRun(strategy, EUR_USD)]);

    // Candles: a fall (the fast SMA below the slow one from the start), then a jump: it crosses up on the last one.
    const closes = [110_000, 109_900, 109_800, 109_700, 109_600, 109_500, 110_300];
    let signalEffects: KernelEffect[] = [];
    closes.forEach((close, i) => {
      const out = run(state, { type: "candle", tf: "1m", candle: candle(i, close) });
      state = out.state;
      const signals = out.effects.filter((e) => e.type === "signal");
      if (i < closes.length - 1) expect(signals).toEqual([]);
      else signalEffects = signals;
    });
    const { signal } = only(signalEffects, "signal");
    expect(signal).toMatchObject({ pair: "EUR_USD", strategyId: "trend", type: "buy", ts: T0 + 7 * MIN });

    // The signal becomes the strategy's order, with its configured protection.
    const { intent } = only(run(state, { type: "signal", signal }).effects, "order");
    expect(intent).toMatchObject({ side: "buy", units: 10_000, type: "market", reduceOnly: false, trailingStopPips: 10, signalId: signal.id });

    // Per-pair risk by default wants a stop loss on a strategy order: refused, with the reason.
    const q1 = quote(T0 + 7 * MIN + 100, 110_300);
    const refused = only(run(state, { type: "order", intent, context: context(q1) }).effects, "refused");
    expect(refused.rejection).toEqual({ type: "stop_loss_required" });

    // Without that rule it adds risk: the portfolio is asked to reserve room for it.
    const relaxed = v.parse(RiskLimits, { stopLossRequired: "never" });
    const approve = only(run(state, { type: "order", intent, context: context(q1, { limits: relaxed }) }).effects, "approve");
    expect(approve.request).toEqual({ clientOrderId: intent.clientOrderId, pair: "EUR_USD", deltaUnits: 10_000, mid: 1.10301, opensPosition: true });
    // ... unless the portfolio is reducing, or the broker is failing (a strategy's order is then refused for good).
    expect(only(run(state, { type: "order", intent, context: context(q1, { limits: relaxed, tradingState: { state: "REDUCING", reason: "daily loss", since: 1 } }) }).effects, "refused").rejection).toEqual({ type: "reduce_only", reason: "daily loss" });
    expect(only(run(state, { type: "order", intent, context: context(q1, { limits: relaxed, brokerAvailable: false }) }).effects, "refused").rejection.type).toBe("broker_unavailable");

    // Sent: it counts in the order-rate window; then the fill opens the position at the ask.
    state = run(state, { type: "order_sent", intent, nowMs: q1.ts }).state;
    expect(state.orderTimesMs).toEqual([q1.ts]);
    const fill = fillMarket(intent, q1, NO_COSTS, EUR_USD, 1);
    const opened = run(state, { type: "fill", intent, fill, rates: [] });
    state = opened.state;
    const { position: open, before } = only(opened.effects, "position");
    expect(before).toBeNull();
    expect(open).toMatchObject({ status: "OPEN", side: "buy", units: 10_000, entryPrice: 110_302, trailingStopPips: 10 });
    expect(state.positions).toEqual([open]);

    // The price rises 15 pips: the trailing stop follows at bid - 10 pips; no exit, no add level yet.
    const q2 = quote(q1.ts + 1_000, 110_450);
    const trailed = run(state, { type: "quote", quote: q2 });
    state = trailed.state;
    expect(only(trailed.effects, "position").position.trailingStopPrice).toBe(110_350);

    // 20 pips above the entry (ask 110,502): the add level is due, as an order for the same units.
    const q3 = quote(q2.ts + 1_000, 110_500);
    const added = run(state, { type: "quote", quote: q3 });
    state = added.state;
    expect(added.effects.map((e) => e.type)).toEqual(["position", "order"]);
    const addIntent = (added.effects[1] as { intent: OrderIntent }).intent;
    expect(addIntent).toMatchObject({ side: "buy", units: 10_000, addLevel: true, reduceOnly: false });
    const addFill = fillMarket(addIntent, q3, NO_COSTS, EUR_USD, 2);
    const grown = run(state, { type: "fill", intent: addIntent, fill: addFill, rates: [] });
    state = grown.state;
    expect(only(grown.effects, "position").position).toMatchObject({ units: 20_000, entryPrice: (110_302 + 110_502) / 2 });

    // The price falls through the trailing stop (now 110,400): the exit is reported, not yet sent.
    const q4 = quote(q3.ts + 1_000, 110_390);
    const stopped = run(state, { type: "quote", quote: q4 });
    state = stopped.state;
    const exit = only(stopped.effects, "exit");
    expect(exit).toMatchObject({ purpose: "exit", reason: "trailing_stop" });

    // The close goes out reduce-only; HALTED still lets it through, and its fill closes the trade.
    const close = closeIntent(exit.position, "exit", 1, q4.ts);
    expect(only(run(state, { type: "order", intent: close, context: context(q4, { tradingState: { state: "HALTED", reason: "kill", since: 2 } }) }).effects, "send").intent).toBe(close);
    const closeFill = fillMarket(close, q4, NO_COSTS, EUR_USD, 3);
    const closed = run(state, { type: "fill", intent: close, fill: closeFill, rates: [] });
    expect(closed.effects.map((e) => e.type)).toEqual(["position", "closed"]);
    const trade = (closed.effects[1] as { position: { status: string; realisedPnlQuoteMicros: number } }).position;
    // 10,000 units bought at 110,302 and 10,000 at 110,502, sold at 110,390: (88 - 112) points x 10,000 units = -2.4 USD.
    expect(trade).toMatchObject({ status: "CLOSED", realisedPnlQuoteMicros: -2_400_000 });
    expect(closed.state.positions).toEqual([]);
  });

  it("refuses a risk-adding order in HALTED and fails a manual one on a failing broker for its caller to retry", () => {
    const state = emptyKernelState();
    const q = quote(T0, 110_000);
    const manual: OrderIntent = { clientOrderId: "m-1", pair: "EUR_USD", strategyId: "manual", side: "buy", units: 1_000, type: "market", reduceOnly: false, createdAt: T0 };
    expect(only(run(state, { type: "order", intent: manual, context: context(q, { tradingState: { state: "HALTED", reason: "kill", since: 1 } }) }).effects, "refused").rejection).toEqual({ type: "trading_halted", reason: "kill" });
    only(run(state, { type: "order", intent: manual, context: context(q, { brokerAvailable: false }) }).effects, "retry_later");
    expect(only(run(state, { type: "order", intent: manual, context: context(q, { tradeable: false }) }).effects, "refused").rejection).toEqual({ type: "market_halted" });
  });

  it("a position that cannot be evaluated is reported and never keeps another position's stop from firing", () => {
    let state = emptyKernelState();
    const q = quote(T0, 110_000);
    for (const [i, [strategyId, more]] of ([["a", { breakEven: { triggerPips: 5, offsetPips: 1 } }], ["b", { stopLoss: 109_900 }]] as const).entries()) {
      const intent: OrderIntent = { clientOrderId: `${strategyId}-1`, pair: "EUR_USD", strategyId, side: "buy", units: 10_000, type: "market", reduceOnly: false, createdAt: T0, ...more };
      state = run(state, { type: "fill", intent, fill: fillMarket(intent, q, NO_COSTS, EUR_USD, i + 1), rates: [] }).state;
    }
    // A corrupt row: a cost that is no whole number of unit-points makes the break-even arithmetic throw.
    const corrupt = { ...state.positions[0]!, costUnitPoints: 1_100_020_000.5 };
    const effects = run({ ...state, positions: [corrupt, state.positions[1]!] }, { type: "quote", quote: quote(T0 + 1_000, 109_800) }).effects;
    expect(effects.map((e) => [e.type, "position" in e ? e.position.strategyId : null])).toEqual([["fault", "a"], ["exit", "b"]]);
  });

  it("keeps one position per strategy and flattens them all", () => {
    let state = emptyKernelState();
    const q = quote(T0, 110_000);
    for (const [i, strategyId] of ["a", "b"].entries()) {
      const intent: OrderIntent = { clientOrderId: `${strategyId}-1`, pair: "EUR_USD", strategyId, side: i === 0 ? "buy" : "sell", units: 1_000 * (i + 1), type: "market", reduceOnly: false, createdAt: T0 };
      state = run(state, { type: "fill", intent, fill: fillMarket(intent, q, NO_COSTS, EUR_USD, i + 1), rates: [] }).state;
    }
    expect(state.positions.map((p) => [p.strategyId, p.side, p.units])).toEqual([["a", "buy", 1_000], ["b", "sell", 2_000]]);
    const exits = run(state, { type: "flatten" }).effects;
    expect(exits.map((e) => (e.type === "exit" ? [e.position.strategyId, e.purpose] : e.type))).toEqual([["a", "flatten"], ["b", "flatten"]]);
  });

  it("is deterministic and leaves its input alone, whatever the quotes", () => {
    let state = emptyKernelState();
    const intent: OrderIntent = { clientOrderId: "p-1", pair: "EUR_USD", strategyId: "p", side: "buy", units: 5_000, type: "market", reduceOnly: false, trailingStopPips: 5, createdAt: T0 };
    state = run(state, { type: "fill", intent, fill: fillMarket(intent, quote(T0, 110_000), NO_COSTS, EUR_USD, 1), rates: [] }).state;
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 109_000, max: 111_000 }), { minLength: 1, maxLength: 30 }), (bids) => {
        let a = state;
        let b = state;
        bids.forEach((bid, i) => {
          const event: KernelEvent = { type: "quote", quote: quote(T0 + i + 1, bid) };
          const x = run(a, event);
          const y = step(config, b, event);
          expect(y).toEqual(x);
          a = x.state;
          b = y.state;
          // The trailing stop only ever tightens.
          const [before, after] = [state.positions[0]?.trailingStopPrice ?? 0, a.positions[0]?.trailingStopPrice ?? 0];
          expect(after).toBeGreaterThanOrEqual(before);
        });
      }),
      { numRuns: 200 },
    );
  });
});
