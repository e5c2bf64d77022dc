/**
 * What a live strategy sees of the account (ctx.account): the coordinator's
 * equity, the configured balance (ACCOUNT_BALANCE, 100,000 by default) and
 * every pair's reported P&L, as the pair last heard it (at its start and at
 * each minute's wake). The probe strategy (test/strategies/probe.ts) holds
 * long and writes ctx.account into each signal's metadata.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { call, postJson } from "./helpers.ts";

const MINUTE = 60_000;
const PAIR = "EUR_USD";

interface SignalsAnswer {
  signals: { strategyId: string; type: string; metadata: { currency: string; equity: number | null } }[];
}

async function probeSignals() {
  const body = (await (await call(`/api/pairs/${PAIR}/signals?limit=100`)).json()) as SignalsAnswer;
  return body.signals.filter((s) => s.strategyId === "probe");
}

describe("ctx.account live", () => {
  it("is the coordinator's equity: the balance before any P&L, then with the pair's reported P&L after a wake", async () => {
    const put = await call(`/api/admin/pairs/${PAIR}/strategies`, {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ strategies: [{ id: "probe", kind: "probe", units: 10_000, params: { timeframe: "1m" } }] }),
    });
    expect(put.status).toBe(200);
    // Ticks of the last half hour: quotes that old may be traded on here.
    const risk = await call(`/api/admin/pairs/${PAIR}/risk`, { method: "PUT", headers: { "content-type": "application/json" }, body: JSON.stringify({ limits: { stalePriceMs: 3_600_000, stopLossRequired: "never", weekendGuard: false } }) });
    expect(risk.status).toBe(200);
    const start = Math.floor(Date.now() / MINUTE) * MINUTE - 30 * MINUTE;
    const tick = (i: number, bid: number) => ({ ts: start + i * MINUTE + 1_000, bid, ask: Math.round((bid + 0.0001) * 1e5) / 1e5 });
    // Two closes: the first step buys (with no P&L anywhere: the balance), the order fills at once (paper).
    expect(await (await postJson(`/api/pairs/${PAIR}/ticks`, { ticks: [tick(0, 1.1), tick(1, 1.101), tick(2, 1.102)] })).json()).toMatchObject({ accepted: 3 });
    const first = await probeSignals();
    expect(first.length).toBeGreaterThanOrEqual(1);
    expect(first.every((s) => s.metadata.currency === "USD" && s.metadata.equity === 100_000)).toBe(true);

    // The fill was reported to the coordinator; the pair hears its equity again at the minute's wake.
    const orders = ((await (await call(`/api/pairs/${PAIR}/orders`)).json()) as { orders: { status: string }[] }).orders;
    expect(orders.map((o) => o.status)).toEqual(["filled"]);
    // The report is sent after the fill without being waited for: give it a moment.
    let account = await env.Coordinator.getByName("main").account();
    for (let i = 0; i < 100 && account.equity === 100_000; i++) {
      await new Promise((r) => setTimeout(r, 20));
      account = await env.Coordinator.getByName("main").account();
    }
    expect(account.currency).toBe("USD");
    // Long 10,000 at the ask, valued at the bid: the spread (1 pip = 1 USD) is the P&L so far, give or take the move.
    expect(account.equity).not.toBe(100_000);
    await env.Pair.getByName(PAIR).wake();
    await postJson(`/api/pairs/${PAIR}/ticks`, { ticks: [tick(3, 1.103), tick(4, 1.104)] });
    const later = await probeSignals();
    expect(later.length).toBeGreaterThan(first.length);
    expect(later[0]?.metadata.equity).toBe(account.equity);
  });
});
