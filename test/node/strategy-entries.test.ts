/**
 * Resting entries a strategy places (ctx.enter): the same good-till rule in
 * the backtest, the paper broker and the order sent to OANDA (GTD), and the
 * example that uses them, limit-scaler, with position-aware scaling.
 */
import { describe, expect, it } from "vitest";
import { getInstrument } from "../../src/domain/instruments.ts";
import { orderRequest } from "../../src/broker/oanda/v20.ts";
import { PaperBroker, type PaperBook } from "../../src/broker/paper-broker.ts";
import type { BrokerAnswer } from "../../src/broker/broker.ts";
import type { OrderIntent } from "../../src/domain/trading/types.ts";
import { runStrategy, type KitCandle } from "../../src/replay/test-kit.ts";

const eur = getInstrument("EUR_USD");
const T0 = Date.UTC(2024, 0, 2); // a Tuesday
const HOUR = 3_600_000;

const entry: OrderIntent = {
  clientOrderId: "EUR_USD-s-1", pair: "EUR_USD", strategyId: "s", side: "buy", units: 10_000, type: "limit", price: 109_900,
  expiresAtMs: T0 + HOUR, reduceOnly: false, signalId: "sig", createdAt: T0,
};

function memoryBook(): PaperBook {
  const orders = new Map<string, { intent: OrderIntent; answer: BrokerAnswer }>();
  return {
    get: (id) => orders.get(id),
    put: (intent, answer) => void orders.set(intent.clientOrderId, { intent, answer }),
    working: () => [...orders.values()].filter((o) => o.answer.status === "working").map((o) => o.intent),
  };
}

describe("an entry's good-till time", () => {
  it("the paper broker rests it, cancels it at its time (not before), and refuses one already expired", async () => {
    const broker = new PaperBroker(memoryBook(), () => ({ slippagePips: 0, commissionPerMillion: 0 }), eur);
    expect(await broker.place(entry, { ts: T0, bid: 110_000, ask: 110_010 })).toMatchObject({ status: "working" });
    expect(await broker.onQuote({ ts: T0 + HOUR - 1, bid: 110_000, ask: 110_010 })).toEqual([]);
    expect(broker.takeCancelled()).toEqual([]);
    // At its time the market reaches it, but it is gone.
    expect(await broker.onQuote({ ts: T0 + HOUR, bid: 109_800, ask: 109_810 })).toEqual([]);
    expect(broker.takeCancelled()).toEqual([{ clientOrderId: entry.clientOrderId, reason: "expired" }]);
    expect(await broker.place({ ...entry, clientOrderId: "EUR_USD-s-2" }, { ts: T0 + HOUR, bid: 110_000, ask: 110_010 })).toMatchObject({ status: "rejected", reason: "expired" });
  });

  it("the paper broker cancels a resting entry on request (CLIENT_REQUEST), never after it filled", async () => {
    const broker = new PaperBroker(memoryBook(), () => ({ slippagePips: 0, commissionPerMillion: 0 }), eur);
    await broker.place(entry, { ts: T0, bid: 110_000, ask: 110_010 });
    expect(await broker.cancel(entry.clientOrderId)).toEqual({ status: "rejected", reason: "CLIENT_REQUEST", fills: [] });
    expect(await broker.onQuote({ ts: T0 + 1, bid: 109_800, ask: 109_810 })).toEqual([]);
    const second = { ...entry, clientOrderId: "EUR_USD-s-3" };
    await broker.place(second, { ts: T0, bid: 110_000, ask: 110_010 });
    expect(await broker.onQuote({ ts: T0 + 2, bid: 109_800, ask: 109_810 })).toHaveLength(1);
    expect(await broker.cancel(second.clientOrderId)).toMatchObject({ status: "filled" });
    expect(await broker.cancel("unknown")).toBeNull();
  });

  it("goes to OANDA as GTD with its time; other limits stay GTC, market orders FOK", () => {
    expect(orderRequest(entry, eur).order).toMatchObject({ type: "LIMIT", price: "1.09900", timeInForce: "GTD", gtdTime: new Date(T0 + HOUR).toISOString() });
    const { expiresAtMs: _gone, ...gtc } = entry;
    expect(orderRequest(gtc, eur).order).toMatchObject({ timeInForce: "GTC" });
    expect(orderRequest(gtc, eur).order.gtdTime).toBeUndefined();
    expect(orderRequest({ ...gtc, type: "market" }, eur).order).toMatchObject({ type: "MARKET", timeInForce: "FOK" });
  });
});

describe("limit-scaler through the test kit", () => {
  /** Hourly candles: a rise with shallow dips, then a fall. */
  function path(): KitCandle[] {
    const out: KitCandle[] = [];
    let price = 1.1;
    for (let i = 0; i < 400; i++) {
      const step = i < 300 ? (i % 10 < 7 ? 0.0008 : -0.0009) : -0.0015;
      const next = price + step;
      out.push({ time: T0 + i * HOUR, open: price, high: Math.max(price, next) + 0.0002, low: Math.min(price, next) - 0.0002, close: next });
      price = next;
    }
    return out;
  }

  it("rests limit entries that fill at their price or expire, scales in as the position runs, and exits when the trend turns", () => {
    const run = runStrategy("limit-scaler", { pair: "EUR_USD", timeframe: "1h", candles: path(), params: { trendPeriod: 20, atrPeriod: 5, entryAtr: 1, expiryCandles: 2, scaleAtr: 1, maxAdds: 2 } });
    const entries = run.orders.filter((o) => o.intent.type === "limit");
    expect(entries.length).toBeGreaterThan(2);
    for (const o of entries) {
      expect(o.intent.expiresAtMs! - o.intent.createdAt).toBeLessThanOrEqual(2 * HOUR + HOUR);
      if (o.filled) expect(o.filled.price).toBe(o.intent.price);
      expect([o.filled, o.expiredAt, o.cancelledAt].filter((x) => x !== null)).toHaveLength(1);
      // Withdrawn at a close when the trend had turned against it: never filled after that.
      if (o.cancelledAt !== null) expect(o.cancelledAt).toBeLessThan(o.intent.expiresAtMs!);
    }
    expect(entries.some((o) => o.expiredAt !== null)).toBe(true);

    expect(entries.some((o) => o.filled !== null)).toBe(true);
    // Scaling: market orders that add the configured units to an open position.
    const adds = run.orders.filter((o) => o.intent.type === "market" && !o.intent.reduceOnly);
    expect(adds.length).toBeGreaterThan(0);
    expect(adds.every((o) => o.intent.units === 10_000)).toBe(true);
    expect(run.signals.some((s) => s.type === "close" && s.reason === "the trend turned")).toBe(true);
  });

  it("withdraws an entry the trend no longer backs (ctx.cancel) and places the other side's in the same step", () => {
    const run = runStrategy("limit-scaler", { pair: "EUR_USD", timeframe: "1h", candles: path(), params: { trendPeriod: 5, atrPeriod: 5, entryAtr: 2, expiryCandles: 10, scaleAtr: 1, maxAdds: 2 } });
    const entries = run.orders.filter((o) => o.intent.type === "limit");
    const withdrawn = entries.filter((o) => o.cancelledAt !== null);
    expect(withdrawn.length).toBeGreaterThan(10);
    for (const o of withdrawn) {
      expect(o.filled).toBeNull();
      expect(o.expiredAt).toBeNull();
      expect(o.cancelledAt).toBeLessThan(o.intent.expiresAtMs!);
    }
    // Cancel and enter anew at one close: a withdrawn buy replaced by a sell placed at that instant.
    const replaced = withdrawn.filter((o) => entries.some((n) => n.intent.createdAt === o.cancelledAt && n.intent.side !== o.intent.side));
    expect(replaced.length).toBeGreaterThan(0);
  });
});
