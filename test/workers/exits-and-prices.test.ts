/**
 * Issue 14, items 1-3 and the clientOrderId conflict of item 7, against the real pair actor over
 * HTTP: no client can take an id the runtime reserves, an exit that finds its id taken still
 * closes, every price of an order is a price of the pair, a fill that cannot be booked never jams
 * the pair, and a tick that is no price of the pair never becomes its last price.
 */
import { runInDurableObject } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import type { Pair } from "../../actors/pair.ts";
import { closeIntent } from "../../src/domain/trading/signal-intent.ts";
import type { Position } from "../../src/domain/trading/position.ts";
import type { OrderIntent } from "../../src/domain/trading/types.ts";
import { call, postJson } from "./helpers.ts";
import { liftPortfolioLimits, priceUsdPairs, setClock, stub, tick } from "./pair-kit.ts";

/** A Wednesday in the future: market open, and alarms never fire by themselves. */
const T0 = Date.UTC(2030, 0, 9, 10, 0, 0);

type Json = Record<string, any>;

const execute = async (body: Json): Promise<{ status: number; body: Json }> => {
  const res = await postJson("/api/trade/execute", body);
  return { status: res.status, body: (await res.json()) as Json };
};

const openPositions = async (pair: string): Promise<Json[]> =>
  ((await (await call(`/api/pairs/${pair}/positions`)).json()) as Json).positions.filter((p: Json) => p.status === "OPEN");

/** The position record as the actor stores it (points), to compute the ids its exits will use. */
const storedPosition = (pair: string, id: string): Promise<Position> =>
  runInDurableObject(stub(pair), (_i: Pair, state: DurableObjectState) =>
    JSON.parse(state.storage.sql.exec<{ json: string }>("SELECT json FROM positions WHERE id = ?", id).one().json) as Position,
  );

/** Put an order row under `intent`'s id with `status`, as an order that got there first would be. */
const squat = (pair: string, intent: OrderIntent, status: "filled" | "rejected"): Promise<void> =>
  runInDurableObject(stub(pair), (_i: Pair, state: DurableObjectState) => {
    const squatter: OrderIntent = { ...intent, strategyId: "manual", units: 1, side: "buy", reduceOnly: false };
    delete squatter.purpose;
    state.storage.sql.exec(
      "INSERT INTO orders (client_order_id, strategy_id, intent_json, status, created_at, updated_at) VALUES (?, 'manual', ?, ?, ?, ?)",
      intent.clientOrderId, JSON.stringify(squatter), status, T0, T0,
    );
  });

beforeAll(async () => {
  await liftPortfolioLimits();
  await priceUsdPairs(T0);
});

describe("exits always go out", () => {
  it("refuses a client order id of the runtime's form, such as the id of a position's exit", async () => {
    await setClock("AUD_USD", T0);
    await tick("AUD_USD", T0 - 1_000, 0.655, 0.6551);
    const opened = await execute({ pair: "AUD_USD", side: "buy", units: 1_000, stopLoss: 0.65 });
    expect(opened.status).toBe(200);
    const position = await storedPosition("AUD_USD", opened.body.position.id);
    const exitId = closeIntent(position, "exit", 1, T0).clientOrderId;
    const squatting = await execute({ pair: "AUD_USD", side: "buy", units: 1, clientOrderId: exitId });
    expect(squatting.status).toBe(400);
    expect(squatting.body.error.code).toBe("invalid_order");
    expect(JSON.stringify(squatting.body.error.details)).toContain("reserved");
    // An id of the client's own form goes through.
    expect((await execute({ pair: "AUD_USD", side: "sell", units: 1_000, clientOrderId: "my-close-1" })).status).toBe(200);
  });

  it("refuses the other names the runtime reserves: a strategy called manual, a tick batch id of the runtime's form", async () => {
    const strategy = await call("/api/admin/pairs/AUD_USD/strategies", {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ strategies: [{ id: "manual", kind: "sma-cross", units: 1_000, params: {} }] }),
    });
    expect(strategy.status).toBe(400);
    expect(JSON.stringify(await strategy.json())).toContain("reserved for manual orders");
    const batch = await postJson("/api/pairs/AUD_USD/ticks", { batchId: "feed-1-0123456789abcdef", ticks: [{ ts: T0 - 500, bid: 0.655, ask: 0.6551 }] });
    expect(batch.status).toBe(400);
    expect(JSON.stringify(await batch.json())).toContain("reserved for the runtime");
  });

  it("closes a breached position even when the id of its exit is already taken", async () => {
    await setClock("EUR_JPY", T0);
    await tick("EUR_JPY", T0 - 1_000, 164, 164.02);
    const opened = await execute({ pair: "EUR_JPY", side: "buy", units: 2_000, stopLoss: 163.5 });
    const position = await storedPosition("EUR_JPY", opened.body.position.id);
    // Taken before the fix would have refused it: a filled order under attempt 1, a refused one under attempt 2.
    await squat("EUR_JPY", closeIntent(position, "exit", 1, T0), "filled");
    await squat("EUR_JPY", closeIntent(position, "exit", 2, T0), "rejected");
    await setClock("EUR_JPY", T0 + 2_000);
    await tick("EUR_JPY", T0 + 1_000, 163.49, 163.51);
    expect(await openPositions("EUR_JPY")).toEqual([]);
    const orders = ((await (await call("/api/pairs/EUR_JPY/orders")).json()) as Json).orders as Json[];
    const exit = orders.find((o) => o.clientOrderId === closeIntent(position, "exit", 3, T0).clientOrderId);
    expect(exit).toMatchObject({ status: "filled", side: "sell", units: 2_000, reduceOnly: true });
  });

  it("flattens a position whose flatten id is taken, and sends one close per position however often it is asked", async () => {
    await setClock("USD_CAD", T0);
    await tick("USD_CAD", T0 - 1_000, 1.37, 1.3702);
    const opened = await execute({ pair: "USD_CAD", side: "sell", units: 3_000 });
    const position = await storedPosition("USD_CAD", opened.body.position.id);
    await squat("USD_CAD", closeIntent(position, "flatten", 1, T0), "filled");
    expect(await stub("USD_CAD").flatten()).toBe(1);
    expect(await openPositions("USD_CAD")).toEqual([]);
    const closes = (((await (await call("/api/pairs/USD_CAD/orders")).json()) as Json).orders as Json[]).filter((o) => o.reduceOnly && o.status === "filled");
    expect(closes).toHaveLength(1);
    expect(closes[0]).toMatchObject({ side: "buy", units: 3_000 });
    // Nothing open: a second flatten sends nothing.
    expect(await stub("USD_CAD").flatten()).toBe(0);
  });
});

describe("every price of an order is a price of the pair", () => {
  it("refuses non-finite, sub-point, far and wrong-side prices with a typed reason, and the pair trades on", async () => {
    await setClock("GBP_JPY", T0);
    await tick("GBP_JPY", T0 - 1_000, 192, 192.02);
    // 1e309 is Infinity once parsed: refused by the schema.
    const infinite = await call("/api/trade/execute", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: '{"pair":"GBP_JPY","side":"sell","units":1000,"type":"limit","price":1e309}',
    });
    expect(infinite.status).toBe(400);
    // Below one point: no price of the pair at all, refused as bad input (400) before anything is recorded.
    for (const [extra, path] of [[{ type: "limit", price: 0.0001 }, "price"], [{ stopLoss: 0.0004 }, "stopLoss"], [{ trailingStopPips: 0.01 }, "trailingStopPips"]] as const) {
      const refused = await execute({ pair: "GBP_JPY", side: "buy", units: 1_000, ...extra });
      expect(refused.status, JSON.stringify(extra)).toBe(400);
      expect(refused.body.error.details, JSON.stringify(extra)).toEqual([expect.objectContaining({ path })]);
    }
    const cases: [Json, string, string][] = [
      [{ type: "limit", price: 19.2 }, "price", "out_of_band"],
      [{ takeProfit: 300 }, "takeProfit", "out_of_band"],
      [{ stopLoss: 192.5 }, "stopLoss", "wrong_side"],
      [{ takeProfit: 191.5 }, "takeProfit", "wrong_side"],
      [{ type: "stop", price: 191.9 }, "price", "wrong_side"],
      [{ type: "limit", price: 191, stopLoss: 191.1 }, "stopLoss", "wrong_side"],
    ];
    for (const [extra, field, problem] of cases) {
      const refused = await execute({ pair: "GBP_JPY", side: "buy", units: 1_000, ...extra });
      expect(refused.status, JSON.stringify(extra)).toBe(422);
      expect(refused.body.error.details, JSON.stringify(extra)).toEqual({ type: "invalid_price", field, problem });
    }
    // A reduce-only order (a sell against a long) is checked too: a limit nobody can reach would rest forever.
    expect((await execute({ pair: "GBP_JPY", side: "buy", units: 1_000 })).status).toBe(200);
    const farReduce = await execute({ pair: "GBP_JPY", side: "sell", units: 1_000, type: "limit", price: 1920 });
    expect(farReduce.body.error.details).toEqual({ type: "invalid_price", field: "price", problem: "out_of_band" });
    const close = await execute({ pair: "GBP_JPY", side: "sell", units: 1_000 });
    expect(close.status).toBe(200);
    expect(close.body.order.status).toBe("filled");
    // Nothing of the refused orders was stored.
    const orders = ((await (await call("/api/pairs/GBP_JPY/orders")).json()) as Json).orders as Json[];
    expect(orders).toHaveLength(2);
  });

  it("books a fill whose protection cannot be applied without it, and the pair takes the next order", async () => {
    await setClock("GBP_USD", T0);
    await tick("GBP_USD", T0 - 1_000, 1.27, 1.2702);
    // An order stored before prices were checked (it survived a restart): take profit at Infinity,
    // which JSON stores as null. Its fill used to fail every drain and every later order with a 500.
    await runInDurableObject(stub("GBP_USD"), (_i: Pair, state: DurableObjectState) => {
      const intent = { clientOrderId: "old-bad-tp", pair: "GBP_USD", strategyId: "manual", side: "sell", units: 1_000, type: "market", takeProfit: Infinity, reduceOnly: false, createdAt: T0 - 500 };
      state.storage.sql.exec("INSERT INTO orders (client_order_id, strategy_id, intent_json, status, created_at, updated_at) VALUES ('old-bad-tp', 'manual', ?, 'pending', ?, ?)", JSON.stringify(intent), T0 - 500, T0 - 500);
      state.storage.sql.exec("INSERT INTO outbox (client_order_id, created_at) VALUES ('old-bad-tp', ?)", T0 - 500);
    });
    const next = await execute({ pair: "GBP_USD", side: "sell", units: 2_000 });
    expect(next.status).toBe(200);
    expect(next.body.order.status).toBe("filled");
    const open = await openPositions("GBP_USD");
    expect(open).toHaveLength(1);
    // Both fills are in the one short position, which has no take profit.
    expect(open[0]).toMatchObject({ side: "sell", units: 3_000 });
    expect(open[0]!.takeProfit).toBeUndefined();
    const orders = ((await (await call("/api/pairs/GBP_USD/orders")).json()) as Json).orders as Json[];
    expect(orders.find((o) => o.clientOrderId === "old-bad-tp")?.status).toBe("filled");
  });

  it("answers a reused clientOrderId with another order with 409 and both orders, the same order with the original", async () => {
    await setClock("USD_CHF", T0);
    await tick("USD_CHF", T0 - 1_000, 0.885, 0.8852);
    const body = { pair: "USD_CHF", side: "buy", units: 1_000, clientOrderId: "dup-1" };
    const first = await execute(body);
    expect(first.status).toBe(200);
    expect(await execute(body)).toEqual(first);
    const other = await execute({ ...body, units: 5_000 });
    expect(other.status).toBe(409);
    expect(other.body.error.code).toBe("client_order_id_conflict");
    expect(other.body.error.details.existing).toMatchObject({ clientOrderId: "dup-1", units: 1_000, status: "filled" });
    expect(other.body.error.details.requested).toMatchObject({ clientOrderId: "dup-1", units: 5_000 });
    expect(await openPositions("USD_CHF")).toEqual([expect.objectContaining({ units: 1_000 })]);
  });
});

describe("ticks are prices of the pair", () => {
  it("refuses a tick far from the pair's plausible range or from its last price, and keeps the last price", async () => {
    await setClock("EUR_USD", T0);
    await tick("EUR_USD", T0 - 5_000, 1.1, 1.1002);
    const res = await postJson("/api/pairs/EUR_USD/ticks", {
      ticks: [
        { ts: T0 - 4_000, bid: 0.000005, ask: 0.000006 },
        { ts: T0 - 3_000, bid: 0.95, ask: 0.9502 },
        { ts: T0 - 2_000, bid: 1.101, ask: 1.1012 },
      ],
    });
    const out = (await res.json()) as Json;
    expect(out.accepted).toBe(1);
    expect(out.rejected.map((r: Json) => r.reason.type)).toEqual(["out_of_band", "out_of_band"]);
    // EUR_USD's plausible range is 1.1 / 4 .. 1.1 x 4; 2 s after the last accepted tick (mid 1.1001)
    // the move band is 10% + 10% a minute: 0.98643 .. 1.21377.
    expect(out.rejected[0].reason).toMatchObject({ type: "out_of_band", mid: 0.00001 });
    expect(out.rejected[1].reason).toEqual({ type: "out_of_band", mid: 0.9501, low: 0.98643, high: 1.21377 });
    const quote = (await (await call("/api/pairs/EUR_USD")).json()) as Json;
    expect(quote.lastTick).toMatchObject({ bid: 1.101, ask: 1.1012 });
    // The feed insists: a minute later the band has widened to 20%, and a real move of 15% is taken.
    await setClock("EUR_USD", T0 + 61_000);
    const moved = (await (await postJson("/api/pairs/EUR_USD/ticks", { ticks: [{ ts: T0 + 60_000, bid: 0.95, ask: 0.9502 }] })).json()) as Json;
    expect(moved.accepted).toBe(1);
  });
});

describe("one bad order never jams the pair", () => {
  it("an order in the outbox that fails every time it is sent keeps neither the stops nor new orders from going out", async () => {
    await setClock("USD_JPY", T0);
    await tick("USD_JPY", T0 - 1_000, 150, 150.02);
    const opened = await execute({ pair: "USD_JPY", side: "buy", units: 1_000, stopLoss: 149.5 });
    expect(opened.status).toBe(200);
    // An order the fill model cannot price (1.5 units), as a defect or an order stored by an older
    // version would be. Its exception read as the broker failing: every drain of the outbox, which
    // runs before the stops, failed, and the broker was left alone as "failing" for every other order.
    await runInDurableObject(stub("USD_JPY"), (_i: Pair, state: DurableObjectState) => {
      const intent = { clientOrderId: "bad-units", pair: "USD_JPY", strategyId: "manual", side: "buy", units: 1.5, type: "market", reduceOnly: false, createdAt: T0 - 100 };
      state.storage.sql.exec("INSERT INTO orders (client_order_id, strategy_id, intent_json, status, created_at, updated_at) VALUES ('bad-units', 'manual', ?, 'pending', ?, ?)", JSON.stringify(intent), T0 - 100, T0 - 100);
      state.storage.sql.exec("INSERT INTO outbox (client_order_id, created_at) VALUES ('bad-units', ?)", T0 - 100);
    });
    await setClock("USD_JPY", T0 + 2_000);
    await tick("USD_JPY", T0 + 1_000, 149.49, 149.51);
    expect(await openPositions("USD_JPY")).toEqual([]);
    const next = await execute({ pair: "USD_JPY", side: "sell", units: 2_000 });
    expect(next.status).toBe(200);
    expect(next.body.order.status).toBe("filled");
    // The broker refused the bad order, as a broker refuses a malformed one; nothing waits.
    const orders = ((await (await call("/api/pairs/USD_JPY/orders")).json()) as Json).orders as Json[];
    expect(orders.find((o) => o.clientOrderId === "bad-units")).toMatchObject({ status: "rejected", rejectReason: expect.stringContaining("unfillable") });
    const outbox = await runInDurableObject(stub("USD_JPY"), (_i: Pair, state: DurableObjectState) => state.storage.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM outbox").one().n);
    expect(outbox).toBe(0);
  });
});

describe("a market the broker halts", () => {
  it("refuses orders while the pair is not tradeable, and a flatten refused meanwhile goes out on the first quote after", async () => {
    await setClock("GBP_USD", T0 + 10_000);
    await tick("GBP_USD", T0 + 9_000, 1.27, 1.2702);
    const opened = await execute({ pair: "GBP_USD", side: "buy", units: 4_000 });
    expect(opened.status).toBe(200);
    const before = (await openPositions("GBP_USD")).length;
    await stub("GBP_USD").setTradeable(false);
    const refused = await execute({ pair: "GBP_USD", side: "buy", units: 1_000 });
    expect(refused.status).toBe(422);
    expect(refused.body.error.details).toEqual({ type: "market_halted" });
    // The kill switch's flatten while halted: refused, so the positions stay open, and the flatten stands.
    const flatten = (await (await postJson("/api/admin/kill-switch", { action: "flatten", reason: "halted market" })).json()) as Json;
    expect(flatten.pairs.GBP_USD).toBe(`flattening ${before} positions`);
    expect(await openPositions("GBP_USD")).toHaveLength(before);
    // OANDA says tradeable again; the next quote closes them.
    await stub("GBP_USD").setTradeable(true);
    await setClock("GBP_USD", T0 + 12_000);
    await tick("GBP_USD", T0 + 11_000, 1.2701, 1.2703);
    expect(await openPositions("GBP_USD")).toEqual([]);
    expect((await postJson("/api/admin/kill-switch", { action: "resume" })).status).toBe(200);
    expect((await execute({ pair: "GBP_USD", side: "buy", units: 1_000 })).status).toBe(200);
  });
});
