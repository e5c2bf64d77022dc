/**
 * The runtime wired to OANDA (BROKER=oanda, FEED=oanda), against the local
 * v20 stand-in (test/support/oanda-standin.ts: this machine cannot reach
 * OANDA): prices stream into the pair actors, orders go out under their
 * client order ids with the runtime keeping the exits, a dropped stream
 * reconnects, prices OANDA will not fill at never reach a pair, bad
 * credentials show as a failing broker, and a position the runtime does not
 * know about halts trading with an alert.
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { startRuntime, type Runtime } from "../../scripts/runtime.ts";
import { adminApi, type Json } from "../support/admin-api.ts";
import { OandaStandIn } from "../support/oanda-standin.ts";


const KEY = "oanda-runtime-admin-key";
let standin: OandaStandIn;
let runtime: Runtime;
let stateDir: string;

const api = adminApi(() => runtime.url, KEY);

/** Poll until `check` passes (it throws until then), at most `timeoutMs`. */
async function eventually<T>(check: () => Promise<T>, timeoutMs = 5_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await check();
    } catch (err) {
      if (Date.now() > until) throw err;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

beforeAll(async () => {
  standin = new OandaStandIn(200);
  const url = await standin.start();
  standin.setQuote("EUR_USD", 1.085, 1.0852);
  standin.setQuote("USD_JPY", 150, 150.02);
  stateDir = await mkdtemp(path.join(tmpdir(), "fxrt-oanda-"));
  runtime = await startRuntime({
    port: 0,
    stateDir,
    vars: {
      ADMIN_API_KEY: KEY,
      PAIRS: "EUR_USD,USD_JPY",
      FEED: "oanda",
      BROKER: "oanda",
      OANDA_API_URL: url,
      OANDA_STREAM_URL: url,
      OANDA_ACCOUNT_ID: standin.accountId,
      OANDA_TOKEN: standin.token,
      CREDENTIALS_KEY: randomBytes(32).toString("base64"),
      BACKUP_INTERVAL_SECONDS: "0",
    },
  });
  await runtime.triggerScheduled();
  expect((await api("PUT", "/api/admin/limits", { maxGrossExposure: 1e9, maxNetExposurePerCurrency: 1e9, maxExposurePerPair: 1e9, maxOpenPositions: 100 })).status).toBe(200);
}, 120_000);

// An outage a failed test left on would fail every test after it for the wrong reason.
afterEach(() => {
  standin.faults.fail5xx = 0;
});

afterAll(async () => {
  await runtime?.stop();
  await standin?.stop();
  if (stateDir) await rm(stateDir, { recursive: true, force: true });
});

describe("runtime on OANDA (local v20 stand-in)", () => {
  it("streams OANDA's prices into the pair actors; the feed's state is in the metrics", async () => {
    standin.setQuote("EUR_USD", 1.0861, 1.0863);
    await eventually(async () => expect((await api("GET", "/api/pairs/EUR_USD")).json.lastTick).toMatchObject({ bid: 1.0861, ask: 1.0863 }));
    standin.setQuote("USD_JPY", 150.11, 150.13);
    await eventually(async () => expect((await api("GET", "/api/pairs/USD_JPY")).json.lastTick).toMatchObject({ bid: 150.11, ask: 150.13 }));
    const metrics = (await api("GET", "/api/metrics")).json;
    expect(metrics.feed.stream).toMatchObject({ state: "streaming" });
    expect(metrics.feed.forwarded).toBeGreaterThanOrEqual(2);
    expect(metrics.feed.dropped).toBe(0);
  });

  it("sends orders under their client order ids, leaves the stops to the runtime, and closes reduce-only", async () => {
    const buy = await api("POST", "/api/trade/execute", { pair: "EUR_USD", side: "buy", units: 2_000, stopLoss: 1.08 });
    expect(buy.status).toBe(200);
    expect(buy.json.order.status).toBe("filled");
    expect(buy.json.fills[0]).toMatchObject({ units: 2_000, price: 1.0863 });
    expect(buy.json.position).toMatchObject({ side: "buy", units: 2_000, stopLoss: 1.08 });
    const sent = standin.orderByClientId(buy.json.order.clientOrderId)!;
    expect(sent.body).toMatchObject({ type: "MARKET", units: "2000", positionFill: "DEFAULT", clientExtensions: { id: buy.json.order.clientOrderId } });
    // The runtime manages the stop (break-even, trailing, the same code as replay): none at OANDA.
    expect(sent.body.stopLossOnFill).toBeUndefined();
    expect(standin.positionUnits("EUR_USD")).toBe(2_000);

    const sell = await api("POST", "/api/trade/execute", { pair: "EUR_USD", side: "sell", units: 2_000 });
    expect(sell.json.position).toBeNull();
    expect(standin.orderByClientId(sell.json.order.clientOrderId)!.body).toMatchObject({ units: "-2000", positionFill: "REDUCE_ONLY" });
    expect(standin.positionUnits("EUR_USD")).toBe(0);

    const broker = (await api("GET", "/api/admin/broker")).json;
    expect(broker).toMatchObject({ broker: "oanda", feed: "oanda", credentials: { source: "config", accountId: "***-***-*******-001" } });
    expect(broker.pairs.find((p: Json) => p.pair === "EUR_USD").broker).toMatchObject({ kind: "oanda", state: "ok", consecutiveFailures: 0 });
    expect(JSON.stringify(broker)).not.toContain(standin.token);
  });

  it("reconnects a dropped price stream", async () => {
    const before = (await api("GET", "/api/metrics")).json.feed.stream.connects;
    standin.dropStreams();
    await eventually(async () => expect((await api("GET", "/api/metrics")).json.feed.stream).toMatchObject({ state: "streaming", connects: before + 1 }));
    standin.setQuote("EUR_USD", 1.0871, 1.0873);
    await eventually(async () => expect((await api("GET", "/api/pairs/EUR_USD")).json.lastTick).toMatchObject({ bid: 1.0871 }));
  });

  it("a price OANDA marks not tradeable, or with no bid, never reaches the pair: it is closed until a tradeable price", async () => {
    standin.setQuote("EUR_USD", 1.0891, 1.0893, false);
    standin.setQuote("EUR_USD", null, 1.0895);
    await eventually(async () => expect((await api("GET", "/api/metrics")).json.feed.stream).toMatchObject({ state: "streaming", closed: ["EUR_USD"] }));
    // The pair hears of it and refuses orders meanwhile: OANDA would cancel them (MARKET_HALTED).
    await eventually(async () => expect((await api("GET", "/api/pairs/EUR_USD")).json.tradeable).toBe(false));
    const halted = await api("POST", "/api/trade/execute", { pair: "EUR_USD", side: "buy", units: 1_000 });
    expect(halted.status).toBe(422);
    expect(halted.json.error.details).toEqual({ type: "market_halted" });
    // Exits and strategies would act on it, and OANDA would cancel the order (MARKET_HALTED).
    await new Promise((r) => setTimeout(r, 200));
    expect((await api("GET", "/api/pairs/EUR_USD")).json.lastTick).not.toMatchObject({ bid: 1.0891 });
    standin.setQuote("EUR_USD", 1.0897, 1.0899);
    await eventually(async () => expect((await api("GET", "/api/pairs/EUR_USD")).json.lastTick).toMatchObject({ bid: 1.0897, ask: 1.0899 }));
    expect((await api("GET", "/api/metrics")).json.feed.stream.closed).toEqual([]);
    await eventually(async () => expect((await api("GET", "/api/pairs/EUR_USD")).json.tradeable).toBe(true));
  });

  it("stored credentials are used from the next call: a wrong token shows as a failing broker, the right one heals it", async () => {
    const wrong = await api("PUT", "/api/admin/broker/credentials", { accountId: standin.accountId, token: "not-the-token-0123456789" });
    expect(wrong.status).toBe(200);
    expect(wrong.json).toMatchObject({ source: "stored", accountId: "***-***-*******-001" });
    const refused = await api("POST", "/api/trade/execute", { pair: "USD_JPY", side: "buy", units: 1_000 });
    expect(refused.status).toBe(502);
    expect(refused.json.error).toMatchObject({ code: "broker_unavailable", details: { clientOrderId: expect.stringMatching(/^USD_JPY-manual-/) } });
    expect(refused.json.error.details.error).toContain("401");
    const failing = (await api("GET", "/api/admin/broker")).json.pairs.find((p: Json) => p.pair === "USD_JPY").broker;
    expect(failing).toMatchObject({ state: "failing", consecutiveFailures: 1 });
    expect(failing.lastError).toContain("401");
    expect(standin.positionUnits("USD_JPY")).toBe(0);

    expect((await api("PUT", "/api/admin/broker/credentials", { accountId: standin.accountId, token: standin.token })).status).toBe(200);
    // The refused order waited in the outbox: it goes out once, before the next one.
    const next = await api("POST", "/api/trade/execute", { pair: "USD_JPY", side: "buy", units: 1_000 });
    expect(next.status).toBe(200);
    expect(standin.positionUnits("USD_JPY")).toBe(2_000);
    expect(next.json.position).toMatchObject({ units: 2_000 });
    expect((await api("GET", "/api/admin/broker")).json.pairs.find((p: Json) => p.pair === "USD_JPY").broker).toMatchObject({ state: "ok", consecutiveFailures: 0 });
  });

  it("an OANDA outage: the order waits in the outbox, later ones fail at once without reaching OANDA, ticks keep flowing, then the waiting order goes out once", async () => {
    standin.faults.fail5xx = 1_000;
    // The failure holds the broker back for 1 s (BrokerLink) from a moment after this.
    const heldAtLeastUntil = Date.now() + 1_000;
    const first = await api("POST", "/api/trade/execute", { pair: "EUR_USD", side: "buy", units: 1_000 });
    expect(first.status).toBe(502);
    expect(first.json.error.details.clientOrderId).toMatch(/^EUR_USD-manual-/);
    const seen = standin.answerMs.length;
    const second = await api("POST", "/api/trade/execute", { pair: "EUR_USD", side: "buy", units: 1_000 });
    expect(second.status).toBe(502);
    expect(second.json.error).toMatchObject({ message: "the broker could not be reached: nothing was sent", details: { clientOrderId: null } });
    expect(standin.answerMs.length).toBe(seen);
    // Market data does not wait for the broker.
    standin.setQuote("EUR_USD", 1.0881, 1.0883);
    await eventually(async () => expect((await api("GET", "/api/pairs/EUR_USD")).json.lastTick).toMatchObject({ bid: 1.0881 }), 1_000);
    // Nothing reached OANDA while the broker was held back. On a slow machine the tick can arrive after
    // the hold (1 s), when the waiting order is rightly tried again (and fails: OANDA still answers 5xx).
    if (Date.now() < heldAtLeastUntil) expect(standin.answerMs.length).toBe(seen);

    standin.faults.fail5xx = 0;
    const broker = (await api("GET", "/api/admin/broker")).json.pairs.find((p: Json) => p.pair === "EUR_USD").broker;
    expect(broker.state).toBe("failing");
    await new Promise((r) => setTimeout(r, Math.max(0, broker.retryAt - Date.now()) + 50));
    const third = await api("POST", "/api/trade/execute", { pair: "EUR_USD", side: "buy", units: 1_000 });
    expect(third.status).toBe(200);
    expect(standin.orderByClientId(first.json.error.details.clientOrderId)).toBeDefined();
    expect(standin.positionUnits("EUR_USD")).toBe(2_000);
    expect(third.json.position).toMatchObject({ units: 2_000 });
  });

  it("a position the runtime does not know about halts trading and raises an alert", async () => {
    standin.externalTrade("USD_JPY", 5_000);
    await runtime.triggerScheduled();
    const portfolio = await eventually(async () => {
      const p = (await api("GET", "/api/admin/portfolio")).json;
      expect(p.trading.state).toBe("HALTED");
      return p;
    });
    expect(portfolio.trading.reason).toBe("reconciliation: broker holds 7000 USD_JPY units, runtime 2000");
    const check = (await api("GET", "/api/admin/broker")).json.pairs.find((p: Json) => p.pair === "USD_JPY").positionCheck;
    expect(check).toMatchObject({ ok: false, brokerUnits: 7_000, runtimeUnits: 2_000 });
    await eventually(async () => {
      const alerts = (await api("GET", "/api/admin/portfolio")).json.alerts as Json[];
      expect(alerts.map((a) => a.alert.id)).toContain("position_mismatch:USD_JPY");
    });
    const refused = await api("POST", "/api/trade/execute", { pair: "EUR_USD", side: "buy", units: 1_000 });
    expect(refused.status).toBe(422);
    expect(refused.json.error.details.type).toBe("trading_halted");
    const prom = await (await fetch(`${runtime.url}/api/metrics?format=prometheus`, { headers: { "x-api-key": KEY } })).text();
    expect(prom).toContain('fxrt_position_mismatch{pair="USD_JPY"} 1');
    // The operator sees the account as OANDA reports it, the stray units included.
    const account = (await api("GET", "/api/admin/broker")).json.account;
    expect(account).toMatchObject({ currency: "USD", balance: 100_000, instrumentMismatches: [] });
    expect(account.positions).toEqual([
      { instrument: "EUR_USD", netUnits: 2_000, served: true },
      { instrument: "USD_JPY", netUnits: 7_000, served: true },
    ]);
    expect(prom).toContain("fxrt_feed_streaming 1");
  });
});
