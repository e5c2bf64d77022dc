import { abortAllDurableObjects, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import type { Coordinator } from "../../actors/coordinator.ts";
import type { Pair } from "../../actors/pair.ts";
import { bucketEnd, fxDayStart } from "../../src/domain/fx-time.ts";
import { NEW_DAY_REASON } from "../../src/domain/portfolio/trading-state.ts";
import { call, postJson } from "./helpers.ts";

/** Wednesday 10:00 UTC in the future: market open; actor alarms never fire by themselves. */
const T0 = Date.UTC(2030, 0, 2, 10, 0, 0);
type Json = Record<string, any>;

const stub = (pair: string): DurableObjectStub<Pair> => env.Pair.getByName(pair);
const PAIRS = ["USD_JPY", "USD_CHF", "USD_CAD"];
const PRICES: Record<string, [number, number]> = { USD_JPY: [150, 150.01], USD_CHF: [0.9, 0.9001], USD_CAD: [1.37, 1.3701] };

async function atClock(pair: string, nowMs: number) {
  await runInDurableObject(stub(pair), (i: Pair) => {
    i.hooks.clock = () => nowMs;
  });
}

async function putLimits(limits: Json) {
  const res = await call("/api/admin/limits", { method: "PUT", headers: { "content-type": "application/json" }, body: JSON.stringify(limits) });
  expect(res.status).toBe(200);
  return res.json();
}

const killSwitch = async (action: string, reason?: string) => (await postJson("/api/admin/kill-switch", { action, ...(reason ? { reason } : {}) })).json() as Promise<Json>;

beforeAll(async () => {
  for (const pair of PAIRS) {
    await atClock(pair, T0);
    const [bid, ask] = PRICES[pair]!;
    await postJson(`/api/pairs/${pair}/ticks`, { ticks: [{ ts: T0 - 500, bid, ask }] });
  }
});

describe("portfolio approvals are reservations", () => {
  it("orders racing from several pairs never together exceed the gross exposure limit", async () => {
    // USD-based pairs: each 10,000-unit order is exactly 10,000 USD of exposure.
    await putLimits({ maxGrossExposure: 55_000, maxNetExposurePerCurrency: 1e9, maxExposurePerPair: 1e9, maxOpenPositions: 100 });
    const orders = PAIRS.flatMap((pair) => [0, 1, 2, 3].map((i) => ({ pair, side: "buy", units: 10_000, clientOrderId: `race-${pair}-${i}` })));
    const answers = await Promise.all(orders.map(async (o) => (await postJson("/api/trade/execute", o)).json() as Promise<Json>));
    const filled = answers.filter((a) => a.order?.status === "filled");
    const refused = answers.filter((a) => a.error);
    expect(filled).toHaveLength(5);
    expect(refused).toHaveLength(7);
    expect(refused.map((a) => a.error.details)).toEqual(Array(7).fill(expect.objectContaining({ type: "max_gross_exposure", limit: 55_000 })));
    const portfolio = (await (await call("/api/admin/portfolio")).json()) as Json;
    expect(portfolio.exposure.gross).toBe(50_000);
    expect(portfolio.reservations).toBe(0);
    expect(portfolio.exposure.perCurrency.USD).toBe(50_000);
  });

  it("refuses with the net exposure per currency and the open positions count", async () => {
    await putLimits({ maxGrossExposure: 1e9, maxNetExposurePerCurrency: 55_000, maxExposurePerPair: 1e9, maxOpenPositions: 100 });
    const res = await postJson("/api/trade/execute", { pair: "USD_CHF", side: "buy", units: 10_000, clientOrderId: "net-1" });
    expect(res.status).toBe(422);
    expect(await res.json()).toMatchObject({ error: { details: { type: "max_net_exposure", currency: "USD", limit: 55_000, actual: 60_000 } } });
  });
});

describe("every portfolio limit", () => {
  it("refuses past the per-pair exposure and the open positions count", async () => {
    // The race above left 0-40,000 USD on USD_JPY (which orders won is up to timing).
    const held = (((await (await call("/api/admin/portfolio")).json()) as Json).exposure.perPair.USD_JPY ?? 0) as number;
    await putLimits({ maxGrossExposure: 1e9, maxNetExposurePerCurrency: 1e9, maxExposurePerPair: held + 5_000, maxOpenPositions: 100 });
    const pair = await postJson("/api/trade/execute", { pair: "USD_JPY", side: "buy", units: 10_000 });
    expect(await pair.json()).toMatchObject({ error: { details: { type: "max_exposure_per_pair", limit: held + 5_000, actual: held + 10_000 } } });
    const open = ((await (await call("/api/admin/portfolio")).json()) as Json).openPositions as number;
    await putLimits({ maxGrossExposure: 1e9, maxNetExposurePerCurrency: 1e9, maxExposurePerPair: 1e9, maxOpenPositions: open });
    // A new strategy's position on a pair would be one more than allowed (manual ones only add to theirs).
    const res = await call("/api/admin/pairs/USD_CAD/strategies", { method: "PUT", headers: { "content-type": "application/json" }, body: "{\"strategies\":[]}" });
    expect(res.status).toBe(200);
    await runInDurableObject(stub("USD_CAD"), async (i: Pair) => {
      const r = await i.trader.execute({ clientOrderId: "open-limit-1", pair: "USD_CAD", strategyId: "other", side: "buy", units: 1000, type: "market", stopLoss: 136_000, reduceOnly: false, createdAt: T0 });
      expect(r).toMatchObject({ ok: false, rejection: { type: "max_open_positions", limit: open, actual: open + 1 } });
    });
  });

  it("a drawdown beyond the limit HALTS trading and records why", async () => {
    expect(((await (await call("/api/admin/portfolio")).json()) as Json).trading.state).toBe("ACTIVE");
    // The racing orders above already paid spreads: equity is below its peak by more than 1 USD.
    await putLimits({ maxGrossExposure: 1e9, maxNetExposurePerCurrency: 1e9, maxExposurePerPair: 1e9, maxOpenPositions: 100, maxDrawdown: 1, dailyLossLimit: 1e9 });
    // Any fill makes the pair report; a reduce-only one needs no approval.
    expect((await postJson("/api/trade/execute", { pair: "USD_JPY", side: "sell", units: 1_000 })).status).toBe(200);
    const trading = ((await (await call("/api/admin/portfolio")).json()) as Json).trading;
    expect(trading.state).toBe("HALTED");
    expect(trading.reason).toMatch(/drawdown \d+\.\d+ over the limit 1$/);
    const refused = await postJson("/api/trade/execute", { pair: "USD_JPY", side: "buy", units: 1_000 });
    expect(await refused.json()).toMatchObject({ error: { details: { type: "trading_halted" } } });
    await putLimits({ maxGrossExposure: 1e9, maxNetExposurePerCurrency: 1e9, maxExposurePerPair: 1e9, maxOpenPositions: 100 });
    await killSwitch("resume");
  });
});

describe("kill switch and trading state", () => {
  it("halts every pair, persists across restarts, is idempotent, resumes, and flattens", async () => {
    await putLimits({ maxGrossExposure: 1e9, maxNetExposurePerCurrency: 1e9, maxExposurePerPair: 1e9, maxOpenPositions: 100 });
    const first = await killSwitch("halt", "operator test");
    expect(first.status).toMatchObject({ state: "HALTED", reason: "operator test" });
    const again = await killSwitch("halt", "again");
    expect(again.status).toEqual(first.status);

    await abortAllDurableObjects();
    for (const pair of PAIRS) await atClock(pair, T0 + 1_000);
    const refused = await postJson("/api/trade/execute", { pair: "USD_CAD", side: "sell", units: 1_000 });
    expect(refused.status).toBe(422);
    expect(await refused.json()).toMatchObject({ error: { details: { type: "trading_halted", reason: "operator test" } } });
    expect(((await (await call("/api/admin/portfolio")).json()) as Json).trading.state).toBe("HALTED");

    expect((await killSwitch("resume")).status.state).toBe("ACTIVE");
    const ok = await postJson("/api/trade/execute", { pair: "USD_CAD", side: "buy", units: 1_000 });
    expect(ok.status).toBe(200);

    const flat = await killSwitch("flatten", "end of test");
    expect(flat.status.state).toBe("HALTED");
    expect(Object.values(flat.pairs).every((v) => String(v).startsWith("flattening"))).toBe(true);
    const open = ((await (await call("/api/admin/positions")).json()) as Json).positions;
    expect(open).toEqual([]);
    const audit = ((await (await call("/api/admin/audit")).json()) as Json).entries.filter((e: Json) => e.action === "trading_state" && e.target === "portfolio");
    // Newest first: the halt, the resume and the flatten of this test.
    expect(audit.slice(0, 3).map((e: Json) => e.after.state)).toEqual(["HALTED", "ACTIVE", "HALTED"]);
    // Pairs record what reached them, and every order state change, with who did it.
    const all = ((await (await call("/api/admin/audit?limit=1000")).json()) as Json).entries;
    expect(all.some((e: Json) => e.action === "trading_state" && e.target === "USD_CAD" && e.actor === "coordinator")).toBe(true);
    expect(all.some((e: Json) => e.action === "order.status" && e.after.status === "filled")).toBe(true);
    expect(all.some((e: Json) => e.action === "order.create")).toBe(true);
    await killSwitch("resume");
  });

  it("fails closed: without the coordinator, risk-increasing orders are refused and reduce-only ones proceed", async () => {
    await runInDurableObject(stub("USD_JPY"), (i: Pair) => {
      i.hooks.coordinatorDown = true;
    });
    const open = await postJson("/api/trade/execute", { pair: "USD_JPY", side: "buy", units: 1_000 });
    expect(await open.json()).toMatchObject({ error: { details: { type: "coordinator_unreachable" } } });
    await runInDurableObject(stub("USD_JPY"), (i: Pair) => {
      i.hooks.coordinatorDown = false;
    });
    expect((await postJson("/api/trade/execute", { pair: "USD_JPY", side: "buy", units: 2_000 })).status).toBe(200);
    await runInDurableObject(stub("USD_JPY"), (i: Pair) => {
      i.hooks.coordinatorDown = true;
    });
    const reduce = await postJson("/api/trade/execute", { pair: "USD_JPY", side: "sell", units: 1_000 });
    expect(reduce.status).toBe(200);
    await runInDurableObject(stub("USD_JPY"), (i: Pair) => {
      i.hooks.coordinatorDown = false;
    });
  });

  it("a daily loss beyond the limit moves the portfolio to REDUCING and records why", async () => {
    await putLimits({ maxGrossExposure: 1e9, maxNetExposurePerCurrency: 1e9, maxExposurePerPair: 1e9, maxOpenPositions: 100, dailyLossLimit: 50 });
    await atClock("USD_CHF", T0 + 2_000);
    await postJson("/api/pairs/USD_CHF/ticks", { ticks: [{ ts: T0 + 1_500, bid: 0.9, ask: 0.9001 }] });
    expect((await postJson("/api/trade/execute", { pair: "USD_CHF", side: "buy", units: 100_000 })).status).toBe(200);
    // 60 pips down on 100,000 USD_CHF: about -667 USD once the next fill is reported.
    await atClock("USD_CHF", T0 + 3_000);
    await postJson("/api/pairs/USD_CHF/ticks", { ticks: [{ ts: T0 + 2_500, bid: 0.894, ask: 0.8941 }] });
    expect((await postJson("/api/trade/execute", { pair: "USD_CHF", side: "sell", units: 1_000 })).status).toBe(200);
    const state = ((await (await call("/api/admin/portfolio")).json()) as Json).trading;
    expect(state.state).toBe("REDUCING");
    expect(state.reason).toMatch(/daily loss .* over the limit 50/);
    const more = await postJson("/api/trade/execute", { pair: "USD_CHF", side: "buy", units: 1_000 });
    expect(await more.json()).toMatchObject({ error: { details: { type: "reduce_only" } } });
    expect((await postJson("/api/trade/execute", { pair: "USD_CHF", side: "sell", units: 1_000 })).status).toBe(200);

    // The daily limit is the day's: the coordinator's heartbeat after the next 17:00 New York resumes trading.
    const coordinator = env.Coordinator.getByName("main");
    const roll = bucketEnd("1D", fxDayStart(state.since as number));
    await runInDurableObject(coordinator, (i: Coordinator) => {
      i.hooks.clock = () => roll - 1;
    });
    await runDurableObjectAlarm(coordinator);
    expect((((await (await call("/api/admin/portfolio")).json()) as Json).trading as Json).state).toBe("REDUCING");
    await runInDurableObject(coordinator, (i: Coordinator) => {
      i.hooks.clock = () => roll + 30_000;
    });
    await runDurableObjectAlarm(coordinator);
    const after = ((await (await call("/api/admin/portfolio")).json()) as Json).trading as Json;
    expect(after).toMatchObject({ state: "ACTIVE", reason: NEW_DAY_REASON });
    // Every pair was told: a risk-adding order goes out again.
    expect((await postJson("/api/trade/execute", { pair: "USD_CHF", side: "buy", units: 1_000 })).status).toBe(200);
    await runInDurableObject(coordinator, (i: Coordinator) => {
      i.hooks.clock = () => Date.now();
    });
  });
});

// Last in the file: it leaves an order unsent in a pair's outbox.
describe("reservations", () => {
  it("live in memory: a restarted coordinator reserves again what the pairs hold unsettled, before its first approval", async () => {
    await killSwitch("resume");
    await atClock("USD_JPY", T0 + 20 * 60_000);
    await postJson("/api/pairs/USD_JPY/ticks", { ticks: [{ ts: T0 + 20 * 60_000 - 100, bid: 150, ask: 150.01 }] });
    const gross = ((await (await call("/api/admin/portfolio")).json()) as Json).exposure.gross as number;
    // Room for 15,000 USD more: the held order's 10,000, then not another 10,000.
    await putLimits({ maxGrossExposure: gross + 15_000, maxNetExposurePerCurrency: 1e9, maxExposurePerPair: 1e9, maxOpenPositions: 100, dailyLossLimit: 1e9, maxDrawdown: 1e9 });
    // An approved order recorded in USD_JPY's outbox whose sending stops there (the pair dies at this
    // point in the crash-point runs; here it lives on, holding the order unsettled).
    const held = await runInDurableObject(stub("USD_JPY"), async (i: Pair) => {
      i.hooks.faultPoint = "after_outbox";
      const out = await i.execute({ pair: "USD_JPY", side: "buy", units: 10_000, type: "market", clientOrderId: "restart-1" }).catch((err: unknown) => String(err));
      i.hooks.faultPoint = null;
      return out;
    });
    expect(held).toMatch(/fault injected after the outbox write/);
    const before = (await (await call("/api/admin/portfolio")).json()) as Json;
    expect(before.reservations).toBeGreaterThanOrEqual(1);

    // The coordinator alone dies (a timer in it, once this call has answered): its reservations with it.
    await runInDurableObject(env.Coordinator.getByName("main"), (_i, state: DurableObjectState) => {
      setTimeout(() => {
        try {
          state.abort("restart test");
        } catch {
          // abort() also throws at its caller, this timer
        }
      }, 0);
    });
    await new Promise((resolve) => setTimeout(resolve, 5));
    const restarted = env.Coordinator.getByName("main");
    const after = (await (await call("/api/admin/portfolio")).json()) as Json;
    expect(after.reservations).toBe(before.reservations);
    // The rebuilt reservation counts: with its 10,000 USD held, another 10,000 does not fit (5,000 does).
    const ask = (id: string, units: number) => restarted.approve({ clientOrderId: id, pair: "USD_CHF", deltaUnits: units, mid: 0.9, opensPosition: true });
    expect(await ask("restart-too-big", 10_000)).toMatchObject({ approved: false, rejection: { type: "max_gross_exposure" } });
    expect(await ask("restart-fits", 5_000)).toEqual({ approved: true });
    await restarted.release("restart-fits");
    // The held order asking again is the same reservation, not a second one.
    expect(await restarted.approve({ clientOrderId: "restart-1", pair: "USD_JPY", deltaUnits: 10_000, mid: 150, opensPosition: true })).toEqual({ approved: true });
    expect(((await (await call("/api/admin/portfolio")).json()) as Json).reservations).toBe(before.reservations);
    await restarted.release("restart-1");
    expect(((await (await call("/api/admin/portfolio")).json()) as Json).reservations).toBe(before.reservations - 1);
  });
});
