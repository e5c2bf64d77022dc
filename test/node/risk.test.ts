import fc from "fast-check";
import * as v from "valibot";
import { describe, expect, it } from "vitest";
import { DEFAULT_RISK_LIMITS, RiskLimits, RiskRejectionSchema } from "../../schemas/trading.ts";
import { getInstrument } from "../../src/domain/instruments.ts";
import { checkOrder, isRiskIncreasing, type RiskContext, signedUnits, weekendReopenMs } from "../../src/domain/trading/risk.ts";
import type { OrderIntent, Side } from "../../src/domain/trading/types.ts";

const EUR_USD = getInstrument("EUR_USD");
/** Wednesday 10 January 2024, 10:00 New York: the market is open. */
const WEDNESDAY_MS = Date.UTC(2024, 0, 10, 15);

function order(side: Side, units: number, extra: Partial<OrderIntent> = {}): OrderIntent {
  return {
    clientOrderId: "c",
    pair: "EUR_USD",
    strategyId: "ema",
    side,
    units,
    type: "market",
    stopLoss: side === "buy" ? 109_000 : 111_000,
    reduceOnly: false,
    createdAt: 0,
    ...extra,
  };
}

function ctx(extra: Partial<RiskContext> = {}): RiskContext {
  const nowMs = extra.nowMs ?? WEDNESDAY_MS;
  return {
    limits: DEFAULT_RISK_LIMITS,
    instrument: EUR_USD,
    pairNetUnits: 0,
    strategyNetUnits: 0,
    quote: { ts: nowMs - 1_000, bid: 110_000, ask: 110_008 },
    recentOrderTimesMs: [],
    nowMs,
    ...extra,
  };
}

function withoutStop(intent: OrderIntent): OrderIntent {
  const { stopLoss: _, ...rest } = intent;
  return rest;
}

const limits = (over: Partial<RiskLimits>): RiskLimits => v.parse(RiskLimits, over);
const rejection = (intent: OrderIntent, c: RiskContext) => {
  const d = checkOrder(intent, c);
  return d.accepted ? null : d.rejection;
};

describe("RiskLimits", () => {
  it("has sane defaults", () => {
    expect(DEFAULT_RISK_LIMITS).toEqual({
      maxPositionUnits: 100_000,
      maxSpreadPips: 5,
      maxOrdersPerMinute: 10,
      stopLossRequired: "strategy",
      stalePriceMs: 60_000,
      weekendGuard: true,
    });
  });

  it("refuses nonsense and misspelt keys", () => {
    for (const bad of [
      { maxPositionUnits: -1 },
      { maxPositionUnits: 1.5 },
      { maxSpreadPips: Number.NaN },
      { maxOrdersPerMinute: 2.5 },
      { stopLossRequired: "sometimes" },
      { stalePriceMs: 0 },
      { weekendGuard: "yes" },
      { maxPositonUnits: 5 },
    ]) {
      expect(v.safeParse(RiskLimits, bad).success, JSON.stringify(bad)).toBe(false);
    }
  });
});

describe("isRiskIncreasing", () => {
  it("is false only for an opposite-side order no larger than the position", () => {
    expect(isRiskIncreasing({ side: "sell", units: 100 }, 100)).toBe(false);
    expect(isRiskIncreasing({ side: "sell", units: 40 }, 100)).toBe(false);
    expect(isRiskIncreasing({ side: "sell", units: 101 }, 100)).toBe(true);
    expect(isRiskIncreasing({ side: "buy", units: 1 }, 100)).toBe(true);
    expect(isRiskIncreasing({ side: "buy", units: 100 }, -100)).toBe(false);
    expect(isRiskIncreasing({ side: "buy", units: 101 }, -100)).toBe(true);
    expect(isRiskIncreasing({ side: "sell", units: 1 }, -100)).toBe(true);
    expect(isRiskIncreasing({ side: "buy", units: 1 }, 0)).toBe(true);
    expect(isRiskIncreasing({ side: "sell", units: 1 }, 0)).toBe(true);
    expect(isRiskIncreasing({ side: "sell", units: 1 }, Number.NaN)).toBe(true);
  });
});

describe("checkOrder rejections", () => {
  it("accepts a sound order", () => {
    expect(checkOrder(order("buy", 10_000), ctx())).toEqual({ accepted: true, riskIncreasing: true });
  });

  it("max_position_size, for the pair and for the strategy", () => {
    expect(rejection(order("buy", 100_001), ctx())).toEqual({ type: "max_position_size", scope: "pair", limit: 100_000, actual: 100_001 });
    expect(rejection(order("buy", 30_000), ctx({ pairNetUnits: 80_000, strategyNetUnits: 10_000 }))).toEqual({
      type: "max_position_size",
      scope: "pair",
      limit: 100_000,
      actual: 110_000,
    });
    // Another strategy is short: the pair stays inside the limit, this strategy would not.
    expect(rejection(order("buy", 30_000), ctx({ pairNetUnits: -50_000, strategyNetUnits: 80_000 }))).toEqual({
      type: "max_position_size",
      scope: "strategy",
      limit: 100_000,
      actual: 110_000,
    });
    expect(rejection(order("sell", 200_000), ctx({ pairNetUnits: 50_000, strategyNetUnits: 50_000 }))).toEqual({
      type: "max_position_size",
      scope: "pair",
      limit: 100_000,
      actual: 150_000,
    });
    expect(checkOrder(order("buy", 100_000), ctx()).accepted).toBe(true);
    // A pair left above its limit by exits may still move towards flat.
    expect(checkOrder(order("sell", 10_000), ctx({ pairNetUnits: 150_000, strategyNetUnits: 0 })).accepted).toBe(true);
  });

  it("max_spread", () => {
    const c = ctx({ quote: { ts: WEDNESDAY_MS, bid: 110_000, ask: 110_051 } });
    expect(rejection(order("buy", 1), c)).toEqual({ type: "max_spread", limit: 5, actual: 5.1 });
    expect(checkOrder(order("buy", 1), ctx({ quote: { ts: WEDNESDAY_MS, bid: 110_000, ask: 110_050 } })).accepted).toBe(true);
  });

  it("max_orders_per_minute over a sliding 60 s window, this order included", () => {
    const nine = Array.from({ length: 9 }, (_, i) => WEDNESDAY_MS - 59_999 + i);
    expect(checkOrder(order("buy", 1), ctx({ recentOrderTimesMs: nine })).accepted).toBe(true);
    const ten = [...nine, WEDNESDAY_MS];
    expect(rejection(order("buy", 1), ctx({ recentOrderTimesMs: ten }))).toEqual({ type: "max_orders_per_minute", limit: 10, actual: 11 });
    // An order exactly 60 s old has left the window.
    const tenOld = [...nine, WEDNESDAY_MS - 60_000];
    expect(checkOrder(order("buy", 1), ctx({ recentOrderTimesMs: tenOld })).accepted).toBe(true);
  });

  it("stop_loss_required: strategy orders by default, manual ones per policy", () => {
    const noStop = (strategyId: string): OrderIntent => withoutStop(order("buy", 1, { strategyId }));
    expect(rejection(noStop("ema"), ctx())).toEqual({ type: "stop_loss_required" });
    expect(checkOrder(noStop("manual"), ctx()).accepted).toBe(true);
    expect(rejection(noStop("manual"), ctx({ limits: limits({ stopLossRequired: "always" }) }))).toEqual({ type: "stop_loss_required" });
    expect(checkOrder(noStop("ema"), ctx({ limits: limits({ stopLossRequired: "never" }) })).accepted).toBe(true);
  });

  it("stale_price, and no quote at all", () => {
    const c = ctx({ quote: { ts: WEDNESDAY_MS - 60_001, bid: 110_000, ask: 110_008 } });
    expect(rejection(order("buy", 1), c)).toEqual({ type: "stale_price", limit: 60_000, actual: 60_001 });
    expect(checkOrder(order("buy", 1), ctx({ quote: { ts: WEDNESDAY_MS - 60_000, bid: 110_000, ask: 110_008 } })).accepted).toBe(true);
    expect(rejection(order("buy", 1), ctx({ quote: null }))).toEqual({ type: "stale_price", limit: 60_000, actual: null });
    // A quote stamped in the future beyond the window is not trusted either.
    const ahead = ctx({ quote: { ts: WEDNESDAY_MS + 60_001, bid: 110_000, ask: 110_008 } });
    expect(rejection(order("buy", 1), ahead)).toEqual({ type: "stale_price", limit: 60_000, actual: -60_001 });
    expect(checkOrder(order("buy", 1), ctx({ quote: { ts: WEDNESDAY_MS + 5_000, bid: 110_000, ask: 110_008 } })).accepted).toBe(true);
    const short = ctx({ limits: limits({ stalePriceMs: 5_000 }), quote: { ts: WEDNESDAY_MS - 5_001, bid: 1, ask: 1 } });
    expect(rejection(order("buy", 1), short)).toEqual({ type: "stale_price", limit: 5_000, actual: 5_001 });
  });

  it("invalid_order, even for reduce-only intents", () => {
    expect(rejection(order("buy", 0), ctx())).toEqual({ type: "invalid_order", field: "units" });
    expect(rejection(order("buy", 1.5, { reduceOnly: true }), ctx())).toEqual({ type: "invalid_order", field: "units" });
    expect(rejection(order("buy", 1, { pair: "USD_JPY" }), ctx())).toEqual({ type: "invalid_order", field: "pair" });
    expect(rejection(order("hold" as Side, 1), ctx())).toEqual({ type: "invalid_order", field: "side" });
  });

  it("returns the first failure in the documented order", () => {
    const noStop = withoutStop(order("buy", 1_000_000));
    const everything: RiskContext = ctx({
      nowMs: Date.UTC(2024, 0, 13, 12),
      quote: { ts: Date.UTC(2024, 0, 13, 12) - 1, bid: 110_000, ask: 111_000 },
      recentOrderTimesMs: Array.from({ length: 50 }, () => Date.UTC(2024, 0, 13, 12)),
    });
    const expected = ["market_closed", "stale_price", "max_spread", "stop_loss_required", "max_position_size", "max_orders_per_minute"];
    let c = everything;
    const seen: string[] = [];
    for (;;) {
      const r = rejection(noStop, c);
      if (r === null) break;
      seen.push(r.type);
      // Remove the cause just reported and look again.
      if (r.type === "market_closed") c = { ...c, nowMs: WEDNESDAY_MS, recentOrderTimesMs: c.recentOrderTimesMs.map(() => WEDNESDAY_MS) };
      else if (r.type === "stale_price") c = { ...c, quote: { ts: WEDNESDAY_MS - 120_000, bid: 110_000, ask: 111_000 }, limits: limits({ stalePriceMs: 200_000 }) };
      else if (r.type === "max_spread") c = { ...c, limits: { ...c.limits, maxSpreadPips: 1_000 } };
      else if (r.type === "stop_loss_required") c = { ...c, limits: { ...c.limits, stopLossRequired: "never" } };
      else if (r.type === "max_position_size") c = { ...c, limits: { ...c.limits, maxPositionUnits: 1_000_000 } };
      else if (r.type === "max_orders_per_minute") c = { ...c, recentOrderTimesMs: [] };
      else throw new Error(`unexpected ${r.type}`);
    }
    expect(seen).toEqual(expected);
  });

  it("produces rejections that match the wire schema", () => {
    const samples = [
      rejection(order("buy", 0), ctx()),
      rejection(order("buy", 1), ctx({ nowMs: Date.UTC(2024, 0, 13) })),
      rejection(order("buy", 1), ctx({ quote: null })),
      rejection(order("buy", 1), ctx({ quote: { ts: WEDNESDAY_MS, bid: 1, ask: 1_000 } })),
      rejection(withoutStop(order("buy", 1)), ctx()),
      rejection(order("buy", 1e6), ctx()),
      rejection(order("buy", 1), ctx({ recentOrderTimesMs: Array(10).fill(WEDNESDAY_MS) })),
    ];
    for (const s of samples) expect(v.safeParse(RiskRejectionSchema, s).success, JSON.stringify(s)).toBe(true);
  });
});

describe("weekend guard", () => {
  const at = (iso: string) => Date.parse(iso);
  const closedAt = (nowMs: number) => rejection(order("buy", 1), ctx({ nowMs }));

  const cases = [
    // [label, Friday 17:00 NY in UTC, Sunday 17:00 NY in UTC]
    ["winter (EST)", "2024-01-12T22:00:00.000Z", "2024-01-14T22:00:00.000Z"],
    ["summer (EDT)", "2024-07-12T21:00:00.000Z", "2024-07-14T21:00:00.000Z"],
    ["DST starts that Sunday", "2024-03-08T22:00:00.000Z", "2024-03-10T21:00:00.000Z"],
    ["DST ends that Sunday", "2024-11-01T21:00:00.000Z", "2024-11-03T22:00:00.000Z"],
  ] as const;

  for (const [label, friday, sunday] of cases) {
    it(`closes at Friday 17:00 and reopens at Sunday 17:00 New York, ${label}`, () => {
      const closeMs = at(friday);
      const openMs = at(sunday);
      expect(closedAt(closeMs - 1)).toBeNull();
      expect(closedAt(closeMs)).toEqual({ type: "market_closed", actual: closeMs, reopensAtMs: openMs });
      expect(closedAt(closeMs + 26 * 3_600_000)).toEqual({ type: "market_closed", actual: closeMs + 26 * 3_600_000, reopensAtMs: openMs });
      expect(closedAt(openMs - 1)).toEqual({ type: "market_closed", actual: openMs - 1, reopensAtMs: openMs });
      expect(closedAt(openMs)).toBeNull();
      expect(weekendReopenMs(closeMs)).toBe(openMs);
    });
  }

  it("can be switched off per pair", () => {
    const c = ctx({ nowMs: at("2024-01-13T12:00:00.000Z"), limits: limits({ weekendGuard: false }) });
    expect(checkOrder(order("buy", 1), c).accepted).toBe(true);
  });
});

describe("reduce-only orders", () => {
  // Everything wrong at once: weekend, stale and wide quote, rate exhausted, no stop, tiny limits.
  const hostile = (pairNetUnits: number, strategyNetUnits: number, quoteNull = false): RiskContext =>
    ctx({
      nowMs: Date.UTC(2024, 0, 13, 12),
      limits: limits({ maxPositionUnits: 0, maxOrdersPerMinute: 0, maxSpreadPips: 0, stopLossRequired: "always" }),
      quote: quoteNull ? null : { ts: 0, bid: 100_000, ask: 120_000 },
      recentOrderTimesMs: Array(100).fill(Date.UTC(2024, 0, 13, 12)),
      pairNetUnits,
      strategyNetUnits,
    });

  it("always pass, flagged or implied by the position, even with the market closed and prices stale", () => {
    fc.assert(
      fc.property(
        fc.constantFrom<Side>("buy", "sell"),
        fc.integer({ min: 1, max: 1_000_000 }),
        fc.integer({ min: 0, max: 1_000_000 }),
        fc.integer({ min: -2_000_000, max: 2_000_000 }),
        fc.boolean(),
        (side, units, extra, pairNetUnits, quoteNull) => {
          const bare = withoutStop(order(side, units));
          // Flagged reduce-only, whatever the position.
          const flagged = checkOrder({ ...bare, reduceOnly: true }, hostile(pairNetUnits, 0, quoteNull));
          expect(flagged).toEqual({ accepted: true, riskIncreasing: false });
          // Implied: the opposite side of a strategy position at least as large.
          const position = -signedUnits(side, units + extra);
          const implied = checkOrder(bare, hostile(pairNetUnits, position, quoteNull));
          expect(implied).toEqual({ accepted: true, riskIncreasing: false });
        },
      ),
      { numRuns: 2_000 },
    );
  });

  it("an order that flips the position is risk-increasing and checked", () => {
    expect(rejection(order("sell", 101), hostile(100, 100))?.type).toBe("market_closed");
  });
});

describe("position size invariant", () => {
  type Step = { strategy: string; side: Side; units: number; reduceOnly: boolean; dtMs: number };
  const stepArb = (strategies: readonly string[], maxUnits: number): fc.Arbitrary<Step> =>
    fc.record({
      strategy: fc.constantFrom(...strategies),
      side: fc.constantFrom<Side>("buy", "sell"),
      units: fc.integer({ min: 1, max: Math.max(1, Math.ceil(maxUnits * 1.5)) }),
      // One order in five is flagged reduce-only.
      reduceOnly: fc.integer({ min: 0, max: 4 }).map((n) => n === 0),
      dtMs: fc.integer({ min: 0, max: 20_000 }),
    });

  /** Applies accepted orders by netting per strategy; a reduce-only order is clamped to what it can reduce. */
  function run(maxPositionUnits: number, steps: readonly Step[], onAccepted: (before: number, after: number, increasing: boolean, books: Map<string, number>) => void) {
    const books = new Map<string, number>();
    const times: number[] = [];
    let nowMs = WEDNESDAY_MS;
    const lim = limits({ maxPositionUnits, maxOrdersPerMinute: 5, weekendGuard: false });
    for (const s of steps) {
      nowMs += s.dtMs;
      const pairBefore = [...books.values()].reduce((a, b) => a + b, 0);
      const own = books.get(s.strategy) ?? 0;
      const intent = order(s.side, s.units, { strategyId: s.strategy, reduceOnly: s.reduceOnly });
      const d = checkOrder(intent, ctx({ limits: lim, nowMs, pairNetUnits: pairBefore, strategyNetUnits: own, recentOrderTimesMs: times }));
      if (!d.accepted) continue;
      let filled = s.units;
      if (s.reduceOnly) filled = isRiskIncreasing({ side: s.side, units: 1 }, own) ? 0 : Math.min(s.units, Math.abs(own));
      if (filled === 0) continue;
      times.push(nowMs);
      books.set(s.strategy, own + signedUnits(s.side, filled));
      onAccepted(pairBefore, pairBefore + signedUnits(s.side, filled), d.riskIncreasing, books);
    }
  }

  it("one strategy: the position never exceeds maxPositionUnits", () => {
    let accepted = 0;
    let atLimit = 0;
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 200_000 }).chain((max) => fc.tuple(fc.constant(max), fc.array(stepArb(["ema"], max), { minLength: 20, maxLength: 200 }))), ([max, steps]) => {
        run(max, steps, (_before, after) => {
          expect(Math.abs(after)).toBeLessThanOrEqual(max);
          accepted++;
          if (max > 0 && Math.abs(after) > max / 2) atLimit++;
        });
      }),
      { numRuns: 500 },
    );
    // Not vacuous: many orders went through, many of them near the limit.
    expect(accepted).toBeGreaterThan(5_000);
    expect(atLimit).toBeGreaterThan(1_000);
  });

  it("several strategies: no strategy exceeds the limit, and a risk-increasing order never grows the pair beyond it", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 200_000 }).chain((max) => fc.tuple(fc.constant(max), fc.array(stepArb(["ema", "rsi", "manual"], max), { minLength: 20, maxLength: 200 }))),
        ([max, steps]) => {
          run(max, steps, (before, after, increasing, books) => {
            for (const units of books.values()) expect(Math.abs(units)).toBeLessThanOrEqual(max);
            if (increasing) expect(Math.abs(after) <= max || Math.abs(after) < Math.abs(before)).toBe(true);
          });
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe("totality", () => {
  it("never throws, and accepts risk-increasing orders only when every number is sound", () => {
    const num = fc.oneof(fc.double(), fc.integer({ min: -1_000_000, max: 1_000_000 }), fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY, -0));
    fc.assert(
      fc.property(num, num, num, num, num, num, fc.array(num, { maxLength: 5 }), (units, pairNet, stratNet, quoteTs, bid, nowOffset, times) => {
        const nowMs = WEDNESDAY_MS + (Number.isFinite(nowOffset) ? nowOffset : 0);
        const c = ctx({ nowMs, pairNetUnits: pairNet, strategyNetUnits: stratNet, quote: { ts: quoteTs, bid, ask: bid }, recentOrderTimesMs: times });
        const d = checkOrder(order("buy", units), c);
        if (d.accepted && d.riskIncreasing) {
          for (const n of [units, pairNet, stratNet, quoteTs, bid]) expect(Number.isFinite(n)).toBe(true);
        }
      }),
      { numRuns: 3_000 },
    );
  });
});
