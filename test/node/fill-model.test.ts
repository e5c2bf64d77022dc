import fc from "fast-check";
import * as v from "valibot";
import { describe, expect, it } from "vitest";
import { DEFAULT_FILL_MODEL, FillModelConfig } from "../../schemas/trading.ts";
import { getInstrument, SYMBOLS } from "../../src/domain/instruments.ts";
import { commissionQuoteMicros, fillMarket, isTriggered, triggerPending } from "../../src/domain/trading/fill-model.ts";
import type { OrderIntent, OrderType, Quote, Side } from "../../src/domain/trading/types.ts";

const EUR_USD = getInstrument("EUR_USD");
const USD_JPY = getInstrument("USD_JPY");

function intent(side: Side, units: number, type: OrderType = "market", price?: number): OrderIntent {
  return {
    clientOrderId: "EUR_USD-ema-0123456789abcdef",
    pair: "EUR_USD",
    strategyId: "ema",
    side,
    units,
    type,
    ...(price === undefined ? {} : { price }),
    reduceOnly: false,
    createdAt: 0,
  };
}

const quote = (bid: number, ask: number, ts = 1_000): Quote => ({ ts, bid, ask });
const model = (slippagePips: number, commissionPerMillion = 0) => v.parse(FillModelConfig, { slippagePips, commissionPerMillion });

/** Exact commission by BigInt: units * rate micros, rate in cents per million, half up. */
function referenceCommission(units: number, commissionPerMillion: number): number {
  const hundredths = BigInt(units) * BigInt(Math.round(commissionPerMillion * 100));
  return Number((hundredths + 50n) / 100n);
}

describe("FillModelConfig", () => {
  it("defaults to no slippage and no commission", () => {
    expect(DEFAULT_FILL_MODEL).toEqual({ slippagePips: 0, commissionPerMillion: 0 });
    expect(v.parse(FillModelConfig, { slippagePips: 0.3 })).toEqual({ slippagePips: 0.3, commissionPerMillion: 0 });
  });

  it("refuses negative, non-finite, sub-cent and misspelt settings", () => {
    for (const bad of [
      { slippagePips: -0.1 },
      { slippagePips: Number.NaN },
      { commissionPerMillion: Number.POSITIVE_INFINITY },
      { commissionPerMillion: -1 },
      { commissionPerMillion: 12.345 },
      { slipagePips: 1 },
    ]) {
      expect(v.safeParse(FillModelConfig, bad).success, JSON.stringify(bad)).toBe(false);
    }
    expect(v.safeParse(FillModelConfig, { commissionPerMillion: 12.34 }).success).toBe(true);
  });
});

describe("fillMarket", () => {
  it("buys at ask + slippage and sells at bid - slippage, in points", () => {
    const m = model(0.5, 50);
    const buy = fillMarket(intent("buy", 100_000), quote(110_000, 110_008), m, EUR_USD, 1);
    expect(buy).toEqual({
      id: "EUR_USD-ema-0123456789abcdef:1",
      clientOrderId: "EUR_USD-ema-0123456789abcdef",
      pair: "EUR_USD",
      side: "buy",
      units: 100_000,
      price: 110_013,
      // 100,000 units at 50 USD per million = 5 USD.
      commissionQuoteMicros: 5_000_000,
      ts: 1_000,
    });
    expect(fillMarket(intent("sell", 100_000), quote(110_000, 110_008), m, EUR_USD, 2).price).toBe(109_995);
    // USD_JPY: 1 pip = 0.01 = 10 points as well.
    expect(fillMarket(intent("buy", 1), quote(151_200, 151_215), model(1), USD_JPY, 0).price).toBe(151_225);
  });

  it("never fills a buy below the ask nor a sell above the bid", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...SYMBOLS).map(getInstrument),
        fc.constantFrom<Side>("buy", "sell"),
        fc.integer({ min: 1, max: 1_000_000_000 }),
        fc.integer({ min: 1_000, max: 50_000_000 }),
        fc.integer({ min: -50, max: 500 }),
        fc.double({ min: 0, max: 100, noNaN: true }),
        (inst, side, units, bid, spread, slippagePips) => {
          const q = quote(bid, bid + spread);
          const f = fillMarket(intent(side, units), q, model(slippagePips), inst, 0);
          if (side === "buy") expect(f.price).toBeGreaterThanOrEqual(q.ask);
          else expect(f.price).toBeLessThanOrEqual(q.bid);
          expect(Number.isSafeInteger(f.price)).toBe(true);
        },
      ),
      { numRuns: 3_000 },
    );
  });
});

describe("commission", () => {
  it("is units * rate / 10^6 in quote micros: exact, integer, non-negative", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 1_000_000_000 }), fc.integer({ min: 0, max: 10_000_000 }), (units, cents) => {
        const rate = cents / 100;
        const c = commissionQuoteMicros(units, rate);
        expect(Number.isSafeInteger(c)).toBe(true);
        expect(c).toBeGreaterThanOrEqual(0);
        expect(c).toBe(referenceCommission(units, rate));
        // Within half a micro of the real value.
        expect(Math.abs(c - (units * cents) / 100)).toBeLessThanOrEqual(0.5);
      }),
      { numRuns: 5_000 },
    );
  });

  it("is exactly units * rate for whole rates, and rounds half up otherwise", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 1_000_000_000 }), fc.integer({ min: 0, max: 100_000 }), (units, rate) => {
        expect(commissionQuoteMicros(units, rate)).toBe(units * rate);
      }),
    );
    expect(commissionQuoteMicros(1, 0.5)).toBe(1);
    expect(commissionQuoteMicros(1, 0.49)).toBe(0);
    expect(commissionQuoteMicros(3, 0.5)).toBe(2);
    expect(commissionQuoteMicros(5, 0.3)).toBe(2);
  });
});

describe("triggerPending", () => {
  const m = model(0.2);
  it("triggers limits at their price or better and stops at their price or worse, boundaries included", () => {
    expect(isTriggered(intent("buy", 1, "limit", 110_000), quote(109_990, 110_000))).toBe(true);
    expect(isTriggered(intent("buy", 1, "limit", 110_000), quote(109_991, 110_001))).toBe(false);
    expect(isTriggered(intent("sell", 1, "limit", 110_000), quote(110_000, 110_010))).toBe(true);
    expect(isTriggered(intent("sell", 1, "limit", 110_000), quote(109_999, 110_009))).toBe(false);
    expect(isTriggered(intent("buy", 1, "stop", 110_000), quote(109_990, 110_000))).toBe(true);
    expect(isTriggered(intent("buy", 1, "stop", 110_000), quote(109_989, 109_999))).toBe(false);
    expect(isTriggered(intent("sell", 1, "stop", 110_000), quote(110_000, 110_010))).toBe(true);
    expect(isTriggered(intent("sell", 1, "stop", 110_000), quote(110_001, 110_011))).toBe(false);
    expect(triggerPending(intent("buy", 1, "limit", 110_000), quote(109_991, 110_001), m, EUR_USD, 0)).toBeNull();
  });

  it("fills a resting limit at its price, a marketable one at the touch plus slippage capped at its price", () => {
    const buyLimit = intent("buy", 1_000, "limit", 110_000);
    expect(triggerPending(buyLimit, quote(109_950, 109_960), m, EUR_USD, 0)?.price).toBe(110_000);
    expect(triggerPending(buyLimit, quote(109_950, 109_960), m, EUR_USD, 0, "arrival")?.price).toBe(109_962);
    expect(triggerPending(buyLimit, quote(109_990, 109_999), m, EUR_USD, 0, "arrival")?.price).toBe(110_000);
    const sellLimit = intent("sell", 1_000, "limit", 110_000);
    expect(triggerPending(sellLimit, quote(110_050, 110_060), m, EUR_USD, 0)?.price).toBe(110_000);
    expect(triggerPending(sellLimit, quote(110_050, 110_060), m, EUR_USD, 0, "arrival")?.price).toBe(110_048);
    expect(triggerPending(sellLimit, quote(110_001, 110_011), m, EUR_USD, 0, "arrival")?.price).toBe(110_000);
  });

  it("turns a triggered stop into a market order", () => {
    expect(triggerPending(intent("buy", 1, "stop", 110_000), quote(110_020, 110_030), m, EUR_USD, 3)?.price).toBe(110_032);
    expect(triggerPending(intent("sell", 1, "stop", 110_000), quote(109_970, 109_980), m, EUR_USD, 3)?.price).toBe(109_968);
    expect(triggerPending(intent("buy", 1), quote(110_020, 110_030), m, EUR_USD, 3)?.price).toBe(110_032);
  });

  it("walks a bar as open, low, high, close quotes: a buy limit fills at its price at the low", () => {
    // Bid bar 1.10050 / 1.10080 / 1.09950 / 1.10000 with a 1 pip spread; buy limit at 1.09980.
    const bar = [quote(110_050, 110_060, 0), quote(109_950, 109_960, 1), quote(110_080, 110_090, 2), quote(110_000, 110_010, 3)];
    const order = intent("buy", 10_000, "limit", 109_980);
    const fills = bar.map((q) => triggerPending(order, q, m, EUR_USD, 0));
    expect(fills.map((f) => f?.price ?? null)).toEqual([null, 109_980, null, null]);
    expect(fills[1]?.ts).toBe(1);
  });

  it("refuses a limit or stop without a trigger price", () => {
    expect(() => triggerPending(intent("buy", 1, "limit"), quote(1, 2), m, EUR_USD, 0)).toThrow(/trigger price/);
  });

  it("never fills a buy below the ask or a sell above the bid, nor a limit beyond its price", () => {
    fc.assert(
      fc.property(
        fc.constantFrom<Side>("buy", "sell"),
        fc.constantFrom<OrderType>("market", "limit", "stop"),
        fc.constantFrom<"arrival" | "resting">("arrival", "resting"),
        fc.integer({ min: 100_000, max: 120_000 }),
        fc.integer({ min: 0, max: 100 }),
        fc.integer({ min: 100_000, max: 120_000 }),
        fc.double({ min: 0, max: 10, noNaN: true }),
        fc.integer({ min: 0, max: 100_000 }),
        (side, type, phase, bid, spread, price, slippagePips, cents) => {
          const q = quote(bid, bid + spread);
          const order = intent(side, 100_000, type, type === "market" ? undefined : price);
          const f = triggerPending(order, q, model(slippagePips, cents / 100), EUR_USD, 7, phase);
          expect(f === null).toBe(!isTriggered(order, q));
          if (f === null) return;
          if (side === "buy") expect(f.price).toBeGreaterThanOrEqual(q.ask);
          else expect(f.price).toBeLessThanOrEqual(q.bid);
          if (type === "limit") {
            if (side === "buy") expect(f.price).toBeLessThanOrEqual(price);
            else expect(f.price).toBeGreaterThanOrEqual(price);
          }
          expect(f.commissionQuoteMicros).toBe(referenceCommission(100_000, cents / 100));
          expect(f.id).toBe(`${order.clientOrderId}:7`);
        },
      ),
      { numRuns: 5_000 },
    );
  });
});
