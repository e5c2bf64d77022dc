/**
 * The sanity bands of prices that enter (issue 14, items 2 and 3): ticks far from the pair's
 * plausible range or from its last price never pass; order prices and levels pass only inside the
 * band around the mid and on their side of the market. Properties over random prices.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { getInstrument } from "../../src/domain/instruments.ts";
import { orderPriceBand, plausibleRange, tickMoveFractionMax, TICK_MOVE_BASE_FRACTION, TICK_MOVE_MAX_FRACTION } from "../../src/domain/price-band.ts";
import { checkTick, defaultTickRules, type TickContext } from "../../src/domain/tick-validation.ts";
import { checkPriceBand, checkPriceForm, subPointIssues } from "../../src/domain/trading/order-prices.ts";
import type { OrderIntent, Quote } from "../../src/domain/trading/types.ts";

const eur = getInstrument("EUR_USD");
const jpy = getInstrument("USD_JPY");
const NOW = Date.UTC(2030, 0, 2, 10);

describe("tick bands", () => {
  it("the move band starts at 10%, widens 10% a minute and stops at 50%", () => {
    expect(tickMoveFractionMax(0)).toBe(0.1);
    expect(tickMoveFractionMax(60_000)).toBeCloseTo(0.2, 12);
    expect(tickMoveFractionMax(3_600_000)).toBe(0.5);
    fc.assert(
      fc.property(fc.integer({ min: -1e9, max: 1e10 }), fc.integer({ min: 0, max: 1e6 }), (a, d) => {
        const m = tickMoveFractionMax(a);
        expect(m).toBeGreaterThanOrEqual(TICK_MOVE_BASE_FRACTION);
        expect(m).toBeLessThanOrEqual(TICK_MOVE_MAX_FRACTION);
        expect(tickMoveFractionMax(a + d)).toBeGreaterThanOrEqual(m);
      }),
    );
  });

  it("EUR_USD 0.000005 and a USD_JPY price on EUR_USD are no prices of the pair", () => {
    const ctx: TickContext = { instrument: eur, rules: defaultTickRules(eur), nowMs: NOW, lastTs: -Infinity, closedUntil: 0 };
    expect(checkTick({ ts: NOW, bid: 0.000005, ask: 0.000006 }, ctx)).toMatchObject({ ok: false, reason: { type: "out_of_band" } });
    expect(checkTick({ ts: NOW, bid: 150.1, ask: 150.2 }, { ...ctx, rules: { ...ctx.rules, maxSpreadPips: 10_000 } })).toMatchObject({ ok: false, reason: { type: "out_of_band" } });
    expect(checkTick({ ts: NOW, bid: 1.085, ask: 1.0851 }, ctx)).toMatchObject({ ok: true });
    expect(plausibleRange(jpy)).toEqual({ low: 32_500, high: 520_000 });
  });

  it("a tick passes the band exactly when its mid is plausible and within the move band of the last tick (property)", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 90_000, max: 130_000 }),
        fc.integer({ min: 1, max: 30 }),
        fc.double({ min: -0.8, max: 0.8, noNaN: true }),
        fc.integer({ min: 0, max: 600_000 }),
        (lastBid, spread, move, elapsedMs) => {
          const last = { ts: NOW - 700_000, bid: lastBid, ask: lastBid + spread };
          const lastMid = (last.bid + last.ask) / 2;
          const bid = Math.max(1, Math.round(lastMid * (1 + move)) - 1);
          const tick = { ts: last.ts + elapsedMs, bid: bid / 1e5, ask: (bid + 2) / 1e5 };
          const ctx: TickContext = { instrument: eur, rules: { maxSpreadPips: 1_000, maxFutureMs: 5_000 }, nowMs: NOW, lastTs: last.ts, closedUntil: 0, last };
          const out = checkTick(tick, ctx);
          const mid = bid + 1;
          const fraction = tickMoveFractionMax(elapsedMs);
          const range = plausibleRange(eur);
          const inside = mid >= Math.max(range.low, Math.ceil(lastMid * (1 - fraction))) && mid <= Math.min(range.high, Math.floor(lastMid * (1 + fraction)));
          // Nothing else can refuse these ticks (ordered, spread within the rules, not ahead of the clock).
          if (!out.ok) expect(out.reason.type).toBe("out_of_band");
          expect(out.ok).toBe(inside);
        },
      ),
      { numRuns: 2_000 },
    );
  });
});

describe("order price checks", () => {
  const quote: Quote = { ts: NOW, bid: 108_500, ask: 108_510 };
  const intent = (extra: Partial<OrderIntent>): OrderIntent => ({ clientOrderId: "c", pair: "EUR_USD", strategyId: "manual", side: "buy", units: 1_000, type: "market", reduceOnly: false, createdAt: NOW, ...extra });

  it("refuses what is no price at all, whatever the quote", () => {
    expect(checkPriceForm(intent({ price: 0, type: "limit" }), eur)).toEqual({ type: "invalid_price", field: "price", problem: "not_a_price" });
    expect(checkPriceForm(intent({ stopLoss: Number.NaN }), eur)).toEqual({ type: "invalid_price", field: "stopLoss", problem: "not_a_price" });
    expect(checkPriceForm(intent({ takeProfit: Infinity }), eur)).toEqual({ type: "invalid_price", field: "takeProfit", problem: "not_a_price" });
    expect(checkPriceForm(intent({ trailingStopPips: 0.04 }), eur)).toEqual({ type: "invalid_price", field: "trailingStopPips", problem: "below_one_point" });
    expect(checkPriceBand(intent({ stopLoss: 108_000 }), null)).toEqual({ type: "invalid_price", field: "stopLoss", problem: "no_quote" });
    expect(subPointIssues({ price: 0.000004, stopLoss: 1.08, trailingStopPips: 0.01 }, eur).map((i) => i.path)).toEqual(["price", "trailingStopPips"]);
    expect(subPointIssues({ price: 0.0004 }, jpy).map((i) => i.path)).toEqual(["price"]);
  });

  it("passes a level exactly when it is in the band and on its side (property)", () => {
    const band = orderPriceBand((quote.bid + quote.ask) / 2);
    fc.assert(
      fc.property(
        fc.constantFrom("buy", "sell") as fc.Arbitrary<"buy" | "sell">,
        fc.constantFrom("market", "limit", "stop") as fc.Arbitrary<"market" | "limit" | "stop">,
        fc.integer({ min: 60_000, max: 160_000 }),
        fc.option(fc.integer({ min: 60_000, max: 160_000 }), { nil: undefined }),
        fc.option(fc.integer({ min: 60_000, max: 160_000 }), { nil: undefined }),
        (side, type, price, stopLoss, takeProfit) => {
          const i = intent({ side, type, ...(type !== "market" ? { price } : {}), ...(stopLoss !== undefined ? { stopLoss } : {}), ...(takeProfit !== undefined ? { takeProfit } : {}) });
          const out = checkPriceBand(i, quote);
          const levels = [i.price, i.stopLoss, i.takeProfit].filter((x): x is number => x !== undefined);
          const inBand = levels.every((x) => x >= band.low && x <= band.high);
          const long = side === "buy";
          const reference = type !== "market" ? price : long ? quote.bid : quote.ask;
          const stopOk = type !== "stop" || (long ? price > quote.ask : price < quote.bid);
          const slOk = stopLoss === undefined || (long ? stopLoss < reference : stopLoss > reference);
          const tpOk = takeProfit === undefined || (long ? takeProfit > reference : takeProfit < reference);
          expect(out === null).toBe(inBand && stopOk && slOk && tpOk);
        },
      ),
      { numRuns: 3_000 },
    );
  });
});
