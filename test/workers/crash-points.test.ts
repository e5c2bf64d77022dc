/**
 * Crash points over the order lifecycle: the pair actor dies after the outbox
 * write, after the broker's answer, or after the fill is applied (before its
 * broadcast and report), over seeded runs. After each restart a new
 * order comes at once: the actor must settle the old one with the broker
 * first, apply every fill once, and hold the position the fills add up to.
 */
import { abortAllDurableObjects, runInDurableObject } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import type { Pair } from "../../actors/pair.ts";
import { call, postJson } from "./helpers.ts";
import { liftPortfolioLimits, MINUTE, setClock, stub, tick } from "./pair-kit.ts";

/** Wednesday 10:00 UTC in the future: market open. */
const T0 = Date.UTC(2031, 0, 1, 10, 0, 0);

type Json = Record<string, any>;

beforeAll(async () => {
  await liftPortfolioLimits();
  await postJson("/api/admin/kill-switch", { action: "resume" });
});

describe("crash points", () => {
  /**
   * Issue 8 asks for 1,000. In vitest-pool-workers every abortAllDurableObjects makes the next
   * restart slower (a bare abort and one call: 5 ms after 50 aborts, 44 ms after 250; this test's
   * runs, touching several actors: 30 ms at run 0, 0.5 s at run 100), so 1,000 here would take
   * most of an hour. 100 runs keep the suite short; more needs a harness that restarts cheaply.
   */
  const RUNS = 100;

  it(`dying at any step of an order's life (${RUNS} seeded runs): one order, reconciled before any new one, position = sum of fills`, { timeout: 600_000 }, async () => {
    // Seeded choice of crash point, side and size per run.
    let seed = 12345;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const pairs = ["EUR_JPY", "GBP_JPY", "USD_CHF", "AUD_USD", "EUR_USD", "USD_JPY"];
    const faults = ["after_outbox", "after_broker", "after_apply"] as const;
    const seen = new Map<string, number>();
    const fillOrder = (pair: string) =>
      runInDurableObject(stub(pair), (_: Pair, state: DurableObjectState) =>
        state.storage.sql.exec<{ client_order_id: string }>("SELECT client_order_id FROM fills ORDER BY seq").toArray().map((r) => r.client_order_id),
      );
    for (let run = 0; run < RUNS; run++) {
      const pair = pairs[run % pairs.length]!;
      const jpy = pair.endsWith("JPY");
      const fault = faults[Math.floor(rnd() * faults.length)]!;
      seen.set(fault, (seen.get(fault) ?? 0) + 1);
      const side = rnd() < 0.5 ? "buy" : "sell";
      const units = 1000 + Math.floor(rnd() * 50) * 100;
      const nextUnits = 1000 + Math.floor(rnd() * 50) * 100;
      const now = T0 + run * MINUTE;
      // The USD pairs' prices value the crosses' currencies for the coordinator (earlier tests
      // in this file may have given them newer ones, which then stay).
      if (run === 0) {
        for (const [p, bid] of [["EUR_USD", 1.1], ["USD_JPY", 150], ["GBP_USD", 1.27]] as const) {
          await setClock(p, now);
          await postJson(`/api/pairs/${p}/ticks`, { ticks: [{ ts: now - 200, bid, ask: bid + (p === "USD_JPY" ? 0.02 : 0.0002) }] });
        }
      }
      await setClock(pair, now);
      await tick(pair, now - 100, jpy ? 160 : 1.1, jpy ? 160.02 : 1.1002);
      const before = ((await (await call(`/api/pairs/${pair}/positions`)).json()) as Json).positions.find((p: Json) => p.status === "OPEN" && p.strategyId === "manual");
      const signedBefore = before ? (before.side === "buy" ? before.units : -before.units) : 0;
      const id = `crash-${run}`;

      const died = await runInDurableObject(stub(pair), async (i: Pair) => {
        i.trader.faultPoint = fault;
        try {
          return JSON.stringify(await i.execute({ pair, side, units, type: "market", clientOrderId: id }));
        } catch {
          return true;
        }
      });
      expect(died, `run ${run} ${fault} ${pair}`).toBe(true);
      await abortAllDurableObjects();
      await setClock(pair, now + 1_000);
      // A new order at once, before any alarm: the restarted actor settles the old one first.
      // Towards flat, so the position stays inside the pair's limit over a thousand runs.
      const crashed = signedBefore + (side === "buy" ? units : -units);
      const nextSide = crashed > 0 ? "sell" : "buy";
      const next = (await (await postJson("/api/trade/execute", { pair, side: nextSide, units: nextUnits, clientOrderId: `${id}-next` })).json()) as Json;
      expect(next.order?.status, JSON.stringify(next)).toBe("filled");
      const fills = await fillOrder(pair);
      expect(fills.filter((f) => f === id)).toHaveLength(1);
      expect(fills.indexOf(id)).toBeLessThan(fills.indexOf(`${id}-next`));
      // The same order again is the same order.
      const again = (await (await postJson("/api/trade/execute", { pair, side, units, clientOrderId: id })).json()) as Json;
      expect(again.fills).toHaveLength(1);
      const orders = ((await (await call(`/api/pairs/${pair}/orders?limit=1000`)).json()) as Json).orders.filter((o: Json) => o.clientOrderId === id);
      expect(orders.map((o: Json) => o.status)).toEqual(["filled"]);
      const signedAfter = crashed + (nextSide === "buy" ? nextUnits : -nextUnits);
      const open = ((await (await call(`/api/pairs/${pair}/positions?limit=1000`)).json()) as Json).positions.filter((p: Json) => p.status === "OPEN" && p.strategyId === "manual");
      const net = open.reduce((sum: number, p: Json) => sum + (p.side === "buy" ? p.units : -p.units), 0);
      expect(net).toBe(signedAfter);
    }
    expect([...seen.keys()].sort()).toEqual([...faults].sort());
  });
});

