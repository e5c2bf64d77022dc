/**
 * CLOSED_POSITION_RETENTION_DAYS (365 in wrangler.jsonc): positions closed
 * that long ago go with their orders and fills; open positions keep theirs,
 * the outbox is never touched, and the realised P&L the pair reports to the
 * coordinator does not change when old rows go.
 */
import { runInDurableObject } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import type { Pair } from "../../actors/pair.ts";
import { postJson } from "./helpers.ts";
import { liftPortfolioLimits, setClock, stub, tick } from "./pair-kit.ts";

const DAY = 86_400_000;
/** Wednesday 10:00 UTC in the future: market open, and actor alarms never fire by themselves. */
const T0 = Date.UTC(2030, 0, 2, 10, 0, 0);

type Json = Record<string, any>;

beforeAll(async () => {
  await liftPortfolioLimits();
});

async function trade(pair: string, nowMs: number, side: "buy" | "sell", units: number, clientOrderId: string): Promise<Json> {
  await setClock(pair, nowMs);
  const res = await postJson("/api/trade/execute", { pair, side, units, type: "market", clientOrderId });
  expect(res.status).toBe(200);
  return (await res.json()) as Json;
}

function tradingRows(pair: string) {
  return runInDurableObject(stub(pair), (instance: Pair, state) => {
    const sql = state.storage.sql;
    const ids = (q: string) => sql.exec<{ id: string }>(q).toArray().map((r) => r.id).sort();
    return {
      positions: sql.exec<{ id: string; status: string }>("SELECT id, status FROM positions ORDER BY id").toArray(),
      orders: ids("SELECT client_order_id AS id FROM orders"),
      fills: ids("SELECT client_order_id AS id FROM fills"),
      paperOrders: ids("SELECT client_order_id AS id FROM paper_orders"),
      outbox: ids("SELECT client_order_id AS id FROM outbox"),
      // What the pair reports to the coordinator as realised (account cents, net of commission).
      realisedCents: (instance as unknown as { orders: { forgetTotals(): void; realisedAccountCents(): number } }).orders.realisedAccountCents(),
    };
  });
}

describe("closed-position retention", () => {
  it("deletes positions closed over 365 days ago with their orders and fills; keeps open positions, theirs, and the outbox", async () => {
    const pair = "EUR_USD";
    await setClock(pair, T0);
    await tick(pair, T0 - 1_000, 1.1, 1.1001);
    await trade(pair, T0, "buy", 10_000, "old-open");
    await setClock(pair, T0 + 61_000);
    await tick(pair, T0 + 60_000, 1.11, 1.1101);
    await trade(pair, T0 + 61_000, "sell", 10_000, "old-close");

    const T1 = T0 + 203 * DAY; // 29 weeks later: a Wednesday too
    await setClock(pair, T1);
    await tick(pair, T1 - 1_000, 1.2, 1.2001);
    const open = await trade(pair, T1, "buy", 5_000, "young-open");
    expect(open.position).toMatchObject({ status: "OPEN", units: 5_000 });
    // An order a previous life left unacknowledged, created long ago: the outbox is never retention's.
    await runInDurableObject(stub(pair), (_i: Pair, state) => {
      const intent = { clientOrderId: "stuck", pair, strategyId: "manual", side: "buy", units: 1_000, type: "market", reduceOnly: false, createdAt: T0 };
      state.storage.sql.exec(
        "INSERT INTO orders (client_order_id, strategy_id, intent_json, status, created_at, updated_at) VALUES ('stuck', 'manual', ?, 'pending', ?, ?)",
        JSON.stringify(intent), T0, T0,
      );
      state.storage.sql.exec("INSERT INTO outbox (client_order_id, created_at) VALUES ('stuck', ?)", T0);
    });
    const before = await tradingRows(pair);
    expect(before.orders).toEqual(["old-close", "old-open", "stuck", "young-open"]);

    // 364 days after the close: nothing of it goes yet.
    await setClock(pair, T0 + 61_000 + 364 * DAY);
    expect(await stub(pair).wake()).toMatchObject({ ran: true, deleted: { positions: 0, orders: 0, fills: 0 } });

    // 366 days after the close.
    await setClock(pair, T0 + 61_000 + 366 * DAY);
    expect(await stub(pair).wake()).toMatchObject({ ran: true, complete: true, deleted: { positions: 1, orders: 2, fills: 2 } });
    const after = await tradingRows(pair);
    expect(after.positions).toEqual([{ id: open.position.id, status: "OPEN" }]);
    expect(after.orders).toEqual(["stuck", "young-open"]);
    expect(after.fills).toEqual(["young-open"]);
    expect(after.paperOrders).toEqual(["young-open"]);
    expect(after.outbox).toEqual(["stuck"]);
    // The deleted position's realised P&L still counts: 10,000 x (1.11000 - 1.10010) = 99.00 USD.
    expect(after.realisedCents).toBe(before.realisedCents);
    expect(after.realisedCents).toBe(9_900);
    const recomputed = await runInDurableObject(stub(pair), (instance: Pair) => {
      const orders = (instance as unknown as { orders: { forgetTotals(): void; realisedAccountCents(): number } }).orders;
      orders.forgetTotals();
      return orders.realisedAccountCents();
    });
    expect(recomputed).toBe(9_900);
  });

  it("keeps every order and fill of a position still open, however old", async () => {
    const pair = "AUD_USD";
    await setClock(pair, T0);
    await tick(pair, T0 - 1_000, 0.65, 0.6501);
    await trade(pair, T0, "buy", 10_000, "first");
    await trade(pair, T0 + 1_000, "buy", 5_000, "added");
    await setClock(pair, T0 + 400 * DAY);
    expect(await stub(pair).wake()).toMatchObject({ ran: true, complete: true, deleted: { positions: 0, orders: 0, fills: 0 } });
    const rows = await tradingRows(pair);
    expect(rows.positions).toEqual([{ id: expect.any(String), status: "OPEN" }]);
    expect(rows.orders).toEqual(["added", "first"]);
    expect(rows.fills).toEqual(["added", "first"]);
  });
});
