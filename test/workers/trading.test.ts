import { abortAllDurableObjects, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import * as v from "valibot";
import type { Pair } from "../../actors/pair.ts";
import type { OrderStore } from "../../actors/order-store.ts";
import { MANUAL_STRATEGY_ID } from "../../src/domain/trading/risk.ts";
import { ServerMessage } from "../../schemas/room.ts";
import { call, openRoom, postJson } from "./helpers.ts";
import { liftPortfolioLimits, MINUTE, setClock, stub, tick } from "./pair-kit.ts";

/** Wednesday 10:00 UTC in the future: market open, and actor alarms never fire by themselves. */
const T0 = Date.UTC(2030, 0, 2, 10, 0, 0);

type Json = Record<string, any>;

// These tests jump prices around (150 -> 160 on USD_JPY) to exercise per-pair rules; portfolio
// limits (test/workers/coordinator.test.ts) are lifted so the daily-loss rule stays out of the way.
beforeAll(async () => {
  await liftPortfolioLimits();
});

describe("manual orders: POST /api/trade/execute", () => {
  it("fills a market buy at the ask, opens a position, and is idempotent by client order id", async () => {
    await setClock("EUR_USD", T0);
    await tick("EUR_USD", T0 - 1_000, 1.1, 1.10012);
    const room = await openRoom("/parties/pair/EUR_USD?tf=1m&limit=0");
    await room.waitFor((f) => f.type === "snapshot");

    const body = { pair: "EUR_USD", side: "buy", units: 10_000, type: "market", stopLoss: 1.098, clientOrderId: "manual-1" };
    const res = await postJson("/api/trade/execute", body);
    expect(res.status).toBe(200);
    const out = (await res.json()) as Json;
    expect(out.order).toMatchObject({ clientOrderId: "manual-1", status: "filled", side: "buy", units: 10_000, stopLoss: 1.098 });
    expect(out.fills).toEqual([expect.objectContaining({ price: 1.10012, units: 10_000, side: "buy" })]);
    expect(out.position).toMatchObject({ status: "OPEN", side: "buy", units: 10_000, entryPrice: 1.10012, stopLoss: 1.098, version: 1 });
    expect(out.position.unrealisedPnlQuote).toBe(-1.2); // 1.2 pips of spread on 10,000 units

    const again = (await (await postJson("/api/trade/execute", body)).json()) as Json;
    expect(again).toEqual(out);
    const orders = (await (await call("/api/pairs/EUR_USD/orders")).json()) as Json;
    expect(orders.orders).toHaveLength(1);

    await room.waitFor((f) => f.type === "position");
    const types = room.frames.map((f) => f.type);
    expect(types).toEqual(expect.arrayContaining(["order", "fill", "position"]));
    expect(room.frames.every((f) => v.safeParse(ServerMessage, f).success)).toBe(true);
    room.ws.close();
  });

  it("closes on the stop loss with exact P&L in quote and account currency", async () => {
    await setClock("USD_JPY", T0);
    await tick("USD_JPY", T0 - 1_000, 150.0, 150.01);
    const open = (await (await postJson("/api/trade/execute", { pair: "USD_JPY", side: "buy", units: 100_000, stopLoss: 149.5 })).json()) as Json;
    expect(open.position).toMatchObject({ entryPrice: 150.01, units: 100_000 });
    await setClock("USD_JPY", T0 + 2_000);
    await tick("USD_JPY", T0 + 1_000, 149.49, 149.5); // bid through the stop
    const positions = (await (await call("/api/pairs/USD_JPY/positions")).json()) as Json;
    const closed = positions.positions.find((p: Json) => p.id === open.position.id);
    // Sold at the bid 149.490: (149.490 - 150.010) * 100,000 = -52,000 JPY = -347.85 USD at 149.490.
    expect(closed).toMatchObject({ status: "CLOSED", units: 0, realisedPnlQuote: -52_000, realisedPnlAccount: -347.85 });
  });

  it("refuses risk-increasing orders with typed rejections and changes nothing", async () => {
    await setClock("GBP_USD", T0);
    const stale = await postJson("/api/trade/execute", { pair: "GBP_USD", side: "buy", units: 1000 });
    expect(stale.status).toBe(422);
    expect(await stale.json()).toMatchObject({ error: { code: "risk_rejected", details: { type: "stale_price", limit: 60_000, actual: null } } });

    await tick("GBP_USD", T0 - 500, 1.27, 1.2701);
    const big = await postJson("/api/trade/execute", { pair: "GBP_USD", side: "sell", units: 500_000 });
    expect(await big.json()).toMatchObject({ error: { details: { type: "max_position_size", limit: 100_000, actual: 500_000 } } });

    const saturday = Date.UTC(2030, 0, 5, 12);
    await setClock("GBP_USD", saturday);
    await tick("GBP_USD", saturday - 500, 1.27, 1.2701);
    const closed = await postJson("/api/trade/execute", { pair: "GBP_USD", side: "buy", units: 1000 });
    expect(await closed.json()).toMatchObject({ error: { details: { type: "market_closed" } } });

    const bad = await postJson("/api/trade/execute", { pair: "GBP_USD", side: "buy", units: 1000, type: "limit" });
    expect(bad.status).toBe(400);
    expect((await (await call("/api/pairs/GBP_USD/orders")).json()) as Json).toMatchObject({ orders: [] });
  });
});

describe("the order-rate limit", () => {
  it("counts the last 60 s of orders, kept in memory and read again after a restart", async () => {
    const pair = "USD_CHF";
    const put = (path: string, body: unknown) => call(path, { method: "PUT", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
    await put(`/api/admin/pairs/${pair}/risk`, { limits: { maxOrdersPerMinute: 2, stopLossRequired: "never" } });
    const order = async (id: string) => {
      const res = await postJson("/api/trade/execute", { pair, side: "buy", units: 1_000, clientOrderId: id });
      return res.status === 200 ? "filled" : ((await res.json()) as Json).error.details.type;
    };
    await setClock(pair, T0);
    await tick(pair, T0 - 500, 0.9, 0.9001);
    expect(await order("rate-1")).toBe("filled");
    await setClock(pair, T0 + 10_000);
    expect(await order("rate-2")).toBe("filled");
    expect(await order("rate-3")).toBe("max_orders_per_minute");

    // A new life of the actor reads the window from SQLite.
    await abortAllDurableObjects();
    await setClock(pair, T0 + 20_000);
    expect(await order("rate-4")).toBe("max_orders_per_minute");

    // The first order leaves the window exactly 60 s after it was made.
    await setClock(pair, T0 + 60_000);
    await tick(pair, T0 + 59_000, 0.9, 0.9001);
    expect(await order("rate-5")).toBe("filled");
    expect(await order("rate-6")).toBe("max_orders_per_minute");
    const orders = ((await (await call(`/api/pairs/${pair}/orders`)).json()) as Json).orders;
    expect(orders.map((o: Json) => o.clientOrderId).sort()).toEqual(["rate-1", "rate-2", "rate-5"]);
  });
});

describe("strategy signals to orders", () => {
  it("a signal leads to exactly one order and one position", async () => {
    const pair = "USD_CAD";
    await setClock(pair, T0);
    await call(`/api/admin/pairs/${pair}/risk`, {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ limits: { stopLossRequired: "never" } }),
    });
    await call(`/api/admin/pairs/${pair}/strategies`, {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ strategies: [{ id: "ref", kind: "sma-cross", units: 20_000, params: { timeframe: "1m", fast: 2, slow: 3 } }] }),
    });
    // The last tick lands 59 s before the clock: fresh enough for the stale-price guard (60 s).
    const start = T0 - 7 * MINUTE;
    const bids = [1.371, 1.37, 1.369, 1.368, 1.37, 1.3705, 1.37];
    const ticks = bids.map((bid, i) => ({ ts: start + i * MINUTE + 1_000, bid, ask: Math.round((bid + 0.0002) * 1e5) / 1e5 }));
    await postJson(`/api/pairs/${pair}/ticks`, { ticks });
    const orders = ((await (await call(`/api/pairs/${pair}/orders`)).json()) as Json).orders;
    expect(orders).toHaveLength(1);
    expect(orders[0]).toMatchObject({ strategyId: "ref", side: "buy", units: 20_000, status: "filled" });
    const positions = ((await (await call(`/api/pairs/${pair}/positions`)).json()) as Json).positions;
    expect(positions).toHaveLength(1);
    expect(positions[0]).toMatchObject({ strategyId: "ref", status: "OPEN", units: 20_000, side: "buy" });
  });
});

describe("a broker that is failing", () => {
  it("refuses a strategy order as broker_unavailable (never sent later, when its signal is stale); the pair keeps taking ticks", async () => {
    const pair = "AUD_USD";
    await setClock(pair, T0);
    const json = (body: unknown) => ({ method: "PUT", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
    await call(`/api/admin/pairs/${pair}/risk`, json({ limits: { stopLossRequired: "never" } }));
    await call(`/api/admin/pairs/${pair}/strategies`, json({ strategies: [{ id: "ref", kind: "sma-cross", units: 20_000, params: { timeframe: "1m", fast: 2, slow: 3 } }] }));
    // As after a failed call: the link leaves the broker alone for a while (BrokerLink.available()).
    await runInDurableObject(stub(pair), (i: Pair) => {
      (i as unknown as { broker: { status: { retryAt: number | null; state: string } } }).broker.status.retryAt = Number.MAX_SAFE_INTEGER;
    });
    const start = T0 - 7 * MINUTE;
    const bids = [0.661, 0.66, 0.659, 0.658, 0.66, 0.6605, 0.66];
    const ticks = bids.map((bid, i) => ({ ts: start + i * MINUTE + 1_000, bid, ask: Math.round((bid + 0.0002) * 1e5) / 1e5 }));
    const res = await postJson(`/api/pairs/${pair}/ticks`, { ticks });
    expect(await res.json()).toMatchObject({ accepted: 7 });
    const signals = ((await (await call(`/api/pairs/${pair}/signals`)).json()) as Json).signals;
    expect(signals.length).toBeGreaterThan(0);
    expect(((await (await call(`/api/pairs/${pair}/orders`)).json()) as Json).orders).toEqual([]);
    const rejections = ((await (await call(`/api/pairs/${pair}/rejections`)).json()) as Json).rejections;
    expect(rejections).toHaveLength(1);
    expect(rejections[0]).toMatchObject({ strategyId: "ref", rejection: { type: "broker_unavailable" } });

    // The broker back: the refused signal is not acted on later.
    await runInDurableObject(stub(pair), (i: Pair) => {
      (i as unknown as { broker: { status: { retryAt: number | null } } }).broker.status.retryAt = null;
    });
    await tick(pair, T0 - 1_000, 0.6601, 0.6603);
    expect(((await (await call(`/api/pairs/${pair}/orders`)).json()) as Json).orders).toEqual([]);
  });
});

describe("break-even and add-position levels", () => {
  it("moves the stop to break-even and adds a level as price runs in favour", async () => {
    // USD_CAD has no manual position yet; its strategy is switched off so only these orders exist.
    await call("/api/admin/pairs/USD_CAD/strategies", { method: "PUT", headers: { "content-type": "application/json" }, body: JSON.stringify({ strategies: [] }) });
    const p2 = "USD_CAD";
    await setClock(p2, T0 + 10 * MINUTE);
    await tick(p2, T0 + 10 * MINUTE - 500, 0.9, 0.9001);
    const res = (await (await postJson("/api/trade/execute", {
      pair: p2, side: "buy", units: 10_000, stopLoss: 0.895,
      breakEven: { triggerPips: 10, offsetPips: 1 },
      addLevels: { maxLevels: 2, offsetPips: 10, sizeMultiplier: 0.5 },
    })).json()) as Json;
    expect(res.position).toMatchObject({ units: 10_000, entryPrice: 0.9001, stopLoss: 0.895, breakEvenStatus: "PENDING" });

    // Bid 0.9012 is 11 pips above the entry (a long is valued at the bid): break-even arms and moves the
    // stop to entry + 1 pip = 0.9002. Ask 0.9013 is past entry + 10 pips: the first add (5,000) is due.
    await tick(p2, T0 + 10 * MINUTE, 0.9012, 0.9013);
    const orders = ((await (await call(`/api/pairs/${p2}/orders`)).json()) as Json).orders.filter((o: Json) => o.strategyId === "manual");
    // Both carry the same (test) clock time: compare as a set.
    expect(orders.map((o: Json) => [o.side, o.units, o.status]).sort()).toEqual([["buy", 10_000, "filled"], ["buy", 5_000, "filled"]]);
    const position = ((await (await call(`/api/pairs/${p2}/positions`)).json()) as Json).positions.find((p: Json) => p.status === "OPEN" && p.strategyId === "manual");
    expect(position).toMatchObject({ units: 15_000, breakEvenStatus: "MOVED", stopLoss: 0.9002 });
    // Same quote again: the add level is not sent twice.
    await tick(p2, T0 + 10 * MINUTE + 1, 0.9012, 0.9013);
    expect(((await (await call(`/api/pairs/${p2}/orders`)).json()) as Json).orders.filter((o: Json) => o.strategyId === "manual")).toHaveLength(2);
  });
});

describe("more order paths", () => {
  it("a limit order rests at the broker and fills at its price when the market reaches it", async () => {
    const pair = "GBP_USD";
    const t = Date.UTC(2030, 0, 7, 10); // Monday, after this file's weekend ticks
    await setClock(pair, t);
    await tick(pair, t - 500, 1.27, 1.2702);
    const placed = (await (await postJson("/api/trade/execute", { pair, side: "buy", units: 1000, type: "limit", price: 1.2695, clientOrderId: "lim-1" })).json()) as Json;
    expect(placed).toMatchObject({ order: { status: "working", type: "limit", price: 1.2695 }, fills: [], position: null });
    await tick(pair, t, 1.2692, 1.2694);
    const after = (await (await postJson("/api/trade/execute", { pair, side: "buy", units: 1000, type: "limit", price: 1.2695, clientOrderId: "lim-1" })).json()) as Json;
    expect(after).toMatchObject({ order: { status: "filled" }, fills: [{ price: 1.2695, units: 1000 }], position: { units: 1000, entryPrice: 1.2695 } });
  });

  it("a signal stored just before the actor dies is decided once after the restart", async () => {
    const pair = "EUR_JPY";
    const t = Date.UTC(2030, 0, 2, 12);
    await setClock(pair, t);
    const put = (path: string, body: unknown) => call(path, { method: "PUT", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
    await put(`/api/admin/pairs/${pair}/risk`, { limits: { stopLossRequired: "never" } });
    await put(`/api/admin/pairs/${pair}/strategies`, { strategies: [{ id: "ref", kind: "sma-cross", units: 10_000, params: { timeframe: "1m", fast: 2, slow: 3 } }] });
    await runInDurableObject(stub(pair), (i: Pair) => {
      i.hooks.faultPoint = "after_signal";
    });
    const start = t - 7 * MINUTE;
    const bids = [165.1, 165.0, 164.9, 164.8, 165.0, 165.05, 165.0];
    await postJson(`/api/pairs/${pair}/ticks`, { ticks: bids.map((bid, i) => ({ ts: start + i * MINUTE + 1_000, bid, ask: Math.round((bid + 0.02) * 1000) / 1000 })) });
    const signals = ((await (await call(`/api/pairs/${pair}/signals`)).json()) as Json).signals;
    expect(signals.map((s: Json) => s.type)).toEqual(["buy"]);
    const strategyOrders = async () => ((await (await call(`/api/pairs/${pair}/orders`)).json()) as Json).orders.filter((o: Json) => o.strategyId === "ref");
    expect(await strategyOrders()).toEqual([]);

    await abortAllDurableObjects();
    await setClock(pair, t + 1_000);
    await runDurableObjectAlarm(stub(pair));
    await expect.poll(async () => (await strategyOrders()).map((o: Json) => [o.side, o.units, o.status]), { timeout: 3_000, interval: 20 }).toEqual([["buy", 10_000, "filled"]]);
    await runDurableObjectAlarm(stub(pair));
    expect(await strategyOrders()).toHaveLength(1);
  });
});

describe("the outbox", () => {
  it("never sends a risk-adding order that waited over a minute (looked up, not placed), but always sends a late exit", async () => {
    const pair = "GBP_USD";
    const createdAt = Date.UTC(2030, 0, 9, 10); // the Wednesday after the weekend test above
    await setClock(pair, createdAt);
    await tick(pair, createdAt - 1_000, 1.27, 1.2702);
    // The pair's manual position (an earlier test's limit order may already have opened one).
    const open = (await (await postJson("/api/trade/execute", { pair, side: "buy", units: 2_000 })).json()) as Json;
    expect(open.position).toMatchObject({ status: "OPEN" });
    const { side, units } = open.position as { side: "buy" | "sell"; units: number };
    // Two orders recorded with their outbox entries and never sent (as across a broker outage or a
    // restart): one adding risk, one closing the position.
    await runInDurableObject(stub(pair), (i: Pair, state: DurableObjectState) => {
      const store = (i as unknown as { orders: OrderStore }).orders;
      const base = { pair, strategyId: MANUAL_STRATEGY_ID, type: "market" as const, createdAt };
      state.storage.transactionSync(() => {
        store.insertOrderWithOutbox({ ...base, clientOrderId: "stale-buy", side, units: 1_000, reduceOnly: false }, null, createdAt);
        store.insertOrderWithOutbox({ ...base, clientOrderId: "late-close", side: side === "buy" ? "sell" : "buy", units, reduceOnly: true, purpose: "exit" }, null, createdAt);
      });
    });
    // 61 s later a quote drains the outbox.
    await setClock(pair, createdAt + 61_000);
    await tick(pair, createdAt + 60_500, 1.2705, 1.2707);
    const orders = ((await (await call(`/api/pairs/${pair}/orders`)).json()) as Json).orders as Json[];
    expect(orders.find((o) => o.clientOrderId === "stale-buy")).toMatchObject({ status: "rejected", rejectReason: "expired_in_outbox" });
    expect(orders.find((o) => o.clientOrderId === "late-close")).toMatchObject({ status: "filled" });
    const placed = await runInDurableObject(stub(pair), (_i: Pair, state: DurableObjectState) =>
      state.storage.sql.exec<{ id: string }>("SELECT client_order_id AS id FROM paper_orders WHERE client_order_id IN ('stale-buy', 'late-close')").toArray().map((r) => r.id),
    );
    expect(placed).toEqual(["late-close"]);
    const positions = ((await (await call(`/api/pairs/${pair}/positions`)).json()) as Json).positions as Json[];
    expect(positions.find((p) => p.id === open.position.id)).toMatchObject({ status: "CLOSED", units: 0 });
  });
});
