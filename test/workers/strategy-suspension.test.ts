/**
 * A strategy whose step fails is suspended on its pair: no order from that
 * step, an audit entry, an alert in the metrics' terms, and the pair goes on
 * with its room and its other strategies; an admin resumes it. The failing
 * strategies are test/strategies/faulty.ts (in the index only for tests).
 */
import { describe, expect, it } from "vitest";
import { call, openRoom, postJson } from "./helpers.ts";

const MINUTE = 60_000;

function putStrategies(pair: string, strategies: unknown) {
  return call(`/api/admin/pairs/${pair}/strategies`, { method: "PUT", headers: { "content-type": "application/json" }, body: JSON.stringify({ strategies }) });
}

/** One tick per minute at these bid prices, 1 pip spread, starting at `start`. */
function minuteTicks(start: number, bids: number[]) {
  return bids.map((bid, i) => ({ ts: start + i * MINUTE + 1_000, bid, ask: Math.round((bid + 0.0001) * 1e5) / 1e5 }));
}

interface StrategiesAnswer {
  strategies: { id: string }[];
  suspended: { id: string; code: string; message: string; timeframe: string; candleT: number; atMs: number }[];
}

describe("a failing strategy is suspended; the pair carries on", () => {
  it.each([
    ["throw", "threw", /faulty: failing at candle 2/],
    ["garbage", "invalid_action", /units/],
    ["twice", "invalid_action", /one action per step/],
    ["state", "invalid_state", /does not survive JSON/],
    ["loop", "over_budget", /ran past its budget of 1000000 operations/],
    ["swallow", "over_budget", /ran past its budget of 10000 operations/],
  ] as const)("%s: suspended with code %s, no order, the other strategy still signals, resumed by an admin", async (mode, code, message) => {
    const pair = { throw: "USD_CHF", garbage: "USD_CAD", twice: "EUR_JPY", state: "GBP_JPY", loop: "AUD_USD", swallow: "GBP_USD" }[mode];
    const scale = pair.endsWith("JPY") ? 100 : 1;
    const put = await putStrategies(pair, [
      // "swallow" catches the budget's error and buys: still suspended, and no order. Its budget is set lower.
      { id: "bad", kind: "faulty", params: { mode, after: 2 }, ...(mode === "swallow" ? { stepBudgetOps: 10_000 } : {}) },
      { id: "good", kind: "sma-cross", params: { timeframe: "1m", fast: 2, slow: 3 } },
    ]);
    expect(put.status).toBe(200);
    expect(((await put.json()) as StrategiesAnswer).suspended).toEqual([]);
    const room = await openRoom(`/parties/pair/${pair}?tf=1m&limit=0`);
    await room.waitFor((f) => f.type === "snapshot");

    // Falling, then rising: sma-cross crosses up; faulty fails at its 2nd candle.
    const start = Math.floor(Date.now() / MINUTE) * MINUTE - 20 * MINUTE;
    const bids = [1.271, 1.27, 1.269, 1.268, 1.27, 1.2705, 1.271, 1.272].map((b) => Math.round(b * scale * 1e5) / 1e5);
    const res = await postJson(`/api/pairs/${pair}/ticks`, { ticks: minuteTicks(start, bids) });
    expect(await res.json()).toMatchObject({ accepted: bids.length });
    // The room still hears the ticks.
    await room.waitFor((f) => f.type === "tick" || f.type === "ticks");
    room.ws.close();

    const list = (await (await call(`/api/admin/pairs/${pair}/strategies`)).json()) as StrategiesAnswer;
    expect(list.strategies.map((s) => s.id)).toEqual(["bad", "good"]);
    expect(list.suspended).toHaveLength(1);
    expect(list.suspended[0]).toMatchObject({ id: "bad", code, timeframe: "1m", candleT: start + MINUTE });
    expect(list.suspended[0]?.message).toMatch(message);

    const signals = ((await (await call(`/api/pairs/${pair}/signals`)).json()) as { signals: { strategyId: string; type: string }[] }).signals;
    expect(signals.filter((s) => s.strategyId === "bad")).toEqual([]);
    expect(signals.filter((s) => s.strategyId === "good").map((s) => s.type)).toEqual(["buy"]);
    const orders = ((await (await call(`/api/pairs/${pair}/orders`)).json()) as { orders: { strategyId: string }[] }).orders;
    expect(orders.every((o) => o.strategyId === "good")).toBe(true);

    const metrics = (await (await call("/api/metrics")).json()) as { pairs: { pair: string; suspendedStrategies: { id: string; code: string }[] }[] };
    expect(metrics.pairs.find((p) => p.pair === pair)?.suspendedStrategies).toEqual([{ id: "bad", code, message: expect.any(String) }]);

    const audit = (await (await call("/api/admin/audit?limit=200")).json()) as { entries: { action: string; actor: string; after: { id: string; suspended: { code: string } | null } }[] };
    const suspendedEntry = audit.entries.find((e) => e.action === "strategy_suspended" && e.after.id === "bad" && e.after.suspended?.code === code);
    expect(suspendedEntry).toMatchObject({ actor: "system" });

    // Resumed by an admin: it steps again from the next candle (and, being what it is, fails again).
    const resumed = await call(`/api/admin/pairs/${pair}/strategies/bad/resume`, { method: "POST" });
    expect(resumed.status).toBe(200);
    expect(await resumed.json()).toMatchObject({ id: "bad", resumed: true, suspended: [] });
    expect(await (await call(`/api/admin/pairs/${pair}/strategies/bad/resume`, { method: "POST" })).json()).toMatchObject({ resumed: false });
    const after = (await (await call("/api/admin/audit?limit=200")).json()) as { entries: { action: string; after: { id: string } }[] };
    expect(after.entries.some((e) => e.action === "strategy_resumed" && e.after.id === "bad")).toBe(true);
    await postJson(`/api/pairs/${pair}/ticks`, { ticks: minuteTicks(start + bids.length * MINUTE, [1.273, 1.274].map((b) => Math.round(b * scale * 1e5) / 1e5)) });
    const again = (await (await call(`/api/admin/pairs/${pair}/strategies`)).json()) as StrategiesAnswer;
    // The candle left open by the first batch (its last minute) closes with the next tick: its step fails.
    expect(again.suspended).toMatchObject([{ id: "bad", code, candleT: start + (bids.length - 1) * MINUTE }]);
  });

  it("GET /api/strategies lists every strategy with its parameters", async () => {
    const body = (await (await call("/api/strategies")).json()) as { strategies: { name: string; description: string; params: { name: string; default?: unknown }[] }[] };
    expect(body.strategies.map((s) => s.name)).toEqual(expect.arrayContaining(["ema-cross", "faulty", "rsi-reversion", "sma-cross", "trend-pullback"]));
    expect(body.strategies.find((s) => s.name === "sma-cross")?.params.map((p) => [p.name, p.default])).toEqual([["timeframe", "1h"], ["fast", 20], ["slow", 50], ["price", "bid"]]);
  });

  it("resuming a strategy the pair does not have is a 404", async () => {
    const res = await call("/api/admin/pairs/EUR_USD/strategies/nope/resume", { method: "POST" });
    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({ error: { code: "unknown_strategy" } });
  });
});
