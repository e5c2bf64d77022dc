/**
 * Restart reconciliation against the local v20 stand-in (this machine cannot
 * reach OANDA): the runtime is really stopped and started again on the same
 * state folder while OANDA fills its resting order, an order OANDA cancels
 * on its own reaches the pair, and one filled in parts stays working until done. Prices reach the pair as tick POSTs (FEED=off)
 * so the test decides when the pair hears of them.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startRuntime, type Runtime, type RuntimeOptions } from "../../scripts/runtime.ts";
import { adminApi, type Json } from "../support/admin-api.ts";
import { OandaStandIn } from "../support/oanda-standin.ts";


const KEY = "oanda-restart-admin-key";
let standin: OandaStandIn;
let runtime: Runtime;
let options: RuntimeOptions;

const api = adminApi(() => runtime.url, KEY);

/** The same price at OANDA and in the pair. */
async function quote(bid: number, ask: number): Promise<void> {
  standin.setQuote("EUR_USD", bid, ask);
  const res = await api("POST", "/api/pairs/EUR_USD/ticks", { ticks: [{ ts: Date.now(), bid, ask }] });
  expect(res.json).toMatchObject({ accepted: 1 });
}

const orderOf = async (id: string) => ((await api("GET", "/api/pairs/EUR_USD/orders?limit=100")).json.orders as Json[]).find((o) => o.clientOrderId === id);
const positions = async () => (await api("GET", "/api/pairs/EUR_USD/positions?limit=10")).json.positions as Json[];
/** The pair's open manual position (each test starts from what the ones before left). */
const openPosition = async () => (await positions()).find((p) => p.status === "OPEN");
/** The pair polls OANDA's transactions on a quote, at most once a second. */
const nextPoll = () => new Promise((r) => setTimeout(r, 1_100));

/** A limit order that rests at OANDA; its client order id. */
async function restingLimit(side: "buy" | "sell", units: number, price: number): Promise<string> {
  const limit = await api("POST", "/api/trade/execute", { pair: "EUR_USD", side, units, type: "limit", price });
  expect(limit.status).toBe(200);
  expect(limit.json.order.status).toBe("working");
  return limit.json.order.clientOrderId as string;
}

beforeAll(async () => {
  standin = new OandaStandIn(200);
  const url = await standin.start();
  standin.setQuote("EUR_USD", 1.085, 1.0852);
  options = {
    port: 0,
    stateDir: await mkdtemp(path.join(tmpdir(), "fxrt-oanda-restart-")),
    vars: {
      ADMIN_API_KEY: KEY,
      PAIRS: "EUR_USD",
      FEED: "off",
      BROKER: "oanda",
      OANDA_API_URL: url,
      OANDA_STREAM_URL: url,
      OANDA_ACCOUNT_ID: standin.accountId,
      OANDA_TOKEN: standin.token,
      BACKUP_INTERVAL_SECONDS: "0",
    },
  };
  runtime = await startRuntime(options);
  expect((await api("PUT", "/api/admin/limits", { maxGrossExposure: 1e9, maxNetExposurePerCurrency: 1e9, maxExposurePerPair: 1e9, maxOpenPositions: 100 })).status).toBe(200);
  // A restart takes seconds: the last price must still count as fresh for the order after it.
  expect((await api("PUT", "/api/admin/pairs/EUR_USD/risk", { limits: { stalePriceMs: 600_000 } })).status).toBe(200);
}, 120_000);

afterAll(async () => {
  await runtime?.stop();
  await standin?.stop();
  if (options?.stateDir) await rm(options.stateDir, { recursive: true, force: true });
});

describe("restart reconciliation with OANDA (local v20 stand-in)", () => {
  it("a resting order that OANDA fills while the runtime is down is applied once, before the first new order after the restart", async () => {
    await quote(1.085, 1.0852);
    const id = await restingLimit("buy", 3_000, 1.08);

    await runtime.stop();
    standin.setQuote("EUR_USD", 1.0795, 1.0797); // crosses the limit: OANDA fills it, nobody is listening
    expect(standin.positionUnits("EUR_USD")).toBe(3_000);
    runtime = await startRuntime(options);

    // The first request to the new runtime is a new order: it must find the fill first.
    const next = await api("POST", "/api/trade/execute", { pair: "EUR_USD", side: "buy", units: 1_000 });
    expect(next.status).toBe(200);
    expect(next.json.order.status).toBe("filled");
    expect(next.json.position).toMatchObject({ side: "buy", units: 4_000 });
    expect(await orderOf(id)).toMatchObject({ status: "filled" });
    expect((await positions()).filter((p) => p.status === "OPEN").map((p) => p.units)).toEqual([4_000]);
    expect(standin.positionUnits("EUR_USD")).toBe(4_000);
    // Nothing was sent twice: one order at OANDA per client order id.
    expect(standin.orderByClientId(id)).toMatchObject({ state: "FILLED" });
    const broker = (await api("GET", "/api/admin/broker")).json.pairs.find((p: Json) => p.pair === "EUR_USD");
    // Compared once the fill was applied and before the new order went out.
    expect(broker.positionCheck).toMatchObject({ ok: true, brokerUnits: 3_000, runtimeUnits: 3_000 });
  }, 120_000);

  it("an order filled in part while the runtime is down: the part is applied at the restart, the order stays working, the rest fills later", async () => {
    const before = (await openPosition())?.units as number;
    await quote(1.0795, 1.0797);
    const id = await restingLimit("buy", 5_000, 1.07);

    await runtime.stop();
    standin.faults.partialFill = 0.4;
    standin.setQuote("EUR_USD", 1.0695, 1.0697); // 2,000 of 5,000 filled, nobody listening
    runtime = await startRuntime(options);
    await quote(1.0795, 1.0797); // the first request after the restart
    expect(await orderOf(id)).toMatchObject({ status: "working" });
    expect(await openPosition()).toMatchObject({ units: before + 2_000 });

    await nextPoll();
    await quote(1.0695, 1.0697); // the rest
    expect(await orderOf(id)).toMatchObject({ status: "filled" });
    expect(await openPosition()).toMatchObject({ units: before + 5_000 });
    expect(standin.positionUnits("EUR_USD")).toBe(before + 5_000);
  }, 120_000);

  it("a working order OANDA cancels on its own ends in the pair as rejected with OANDA's reason", async () => {
    await quote(1.0795, 1.0797);
    const id = await restingLimit("sell", 1_000, 1.2);
    standin.cancelOrder(id, "INSUFFICIENT_MARGIN");
    await nextPoll();
    await quote(1.0796, 1.0798);
    expect(await orderOf(id)).toMatchObject({ status: "rejected", rejectReason: "cancelled by the broker: INSUFFICIENT_MARGIN" });
    expect((await api("GET", "/api/admin/portfolio")).json.reservations).toBe(0);
  }, 30_000);

  it("a resting order OANDA fills in two parts stays working after the first, holding what filled, and is filled after the second", async () => {
    const before = (await openPosition())?.units as number;
    await quote(1.0795, 1.0797);
    const id = await restingLimit("buy", 5_000, 1.07);
    standin.faults.partialFill = 0.4;
    await nextPoll();
    await quote(1.0695, 1.0697); // crosses: 2,000 of 5,000 filled
    expect(await orderOf(id)).toMatchObject({ status: "working" });
    expect(await openPosition()).toMatchObject({ side: "buy", units: before + 2_000 });
    expect((await api("GET", "/api/admin/portfolio")).json.reservations).toBe(1);
    await quote(1.0795, 1.0797);
    await nextPoll();
    await quote(1.0695, 1.0697); // the rest
    expect(await orderOf(id)).toMatchObject({ status: "filled" });
    expect(await openPosition()).toMatchObject({ side: "buy", units: before + 5_000 });
    expect(standin.positionUnits("EUR_USD")).toBe(before + 5_000);
    expect((await api("GET", "/api/admin/portfolio")).json.reservations).toBe(0);
  }, 30_000);
});
