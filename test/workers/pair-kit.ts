/**
 * Pair-actor helpers shared by the trading tests: a pair's stub, its test clock, one tick, open
 * portfolio limits; and the crash-point runs (crash-points*.test.ts).
 */
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { expect } from "vitest";
import type { Pair } from "../../actors/pair.ts";
import type { FaultPoint } from "../../actors/pair-trader.ts";
import type { Fill } from "../../src/domain/trading/types.ts";
import type { ExecuteBody } from "../../schemas/trading-events.ts";
import { MANUAL_STRATEGY_ID as MANUAL } from "../../src/domain/trading/risk.ts";
import { call, postJson } from "./helpers.ts";

export const MINUTE = 60_000;

export const stub = (pair: string): DurableObjectStub<Pair> => env.Pair.getByName(pair);

/** Drive the pair's clock (its risk checks and stamps) without sleeping. */
export async function setClock(pair: string, nowMs: number): Promise<void> {
  await runInDurableObject(stub(pair), (i: Pair) => {
    i.hooks.clock = () => nowMs;
  });
}

export async function tick(pair: string, ts: number, bid: number, ask: number): Promise<void> {
  const res = await postJson(`/api/pairs/${pair}/ticks`, { ticks: [{ ts, bid, ask }] });
  expect(await res.json()).toMatchObject({ accepted: 1 });
}

/** A quote on each USD pair at `nowMs`: the coordinator values the crosses' currencies through them. */
export async function priceUsdPairs(nowMs: number): Promise<void> {
  for (const [pair, bid, ask] of [["EUR_USD", 1.1, 1.1002], ["USD_JPY", 150, 150.02], ["GBP_USD", 1.27, 1.2702]] as const) {
    await setClock(pair, nowMs);
    await tick(pair, nowMs - 10_000, bid, ask);
  }
}

/** Portfolio limits out of the way, for tests about per-pair behaviour (prices jump between runs). */
export async function liftPortfolioLimits(): Promise<void> {
  const res = await call("/api/admin/limits", {
    method: "PUT",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ maxGrossExposure: 1e11, maxNetExposurePerCurrency: 1e11, maxOpenPositions: 10_000, maxExposurePerPair: 1e11, dailyLossLimit: 1e11, maxDrawdown: 1e11 }),
  });
  expect(res.status).toBe(200);
}

// ---- crash points ------------------------------------------------------------------

/**
 * Where a crash-point run kills the pair actor, in the order of an order's life: approved but not
 * recorded, recorded in the outbox, answered by the broker, fill applied, and a resting (limit)
 * order's fill taken from the broker but not applied. after_signal is the strategy path: trading.test.ts.
 */
export const ORDER_FAULTS = ["after_approval", "after_outbox", "after_broker", "after_apply", "after_resting_fill"] as const satisfies readonly FaultPoint[];

/** Draws in [0, 1) from a 32-bit seed: xorshift32 after an integer hash, so neighbouring seeds are far apart. */
export function seededRandom(seed: number): () => number {
  let x = Math.imul(seed ^ 0x5bd1e995, 0x9e3779b1) >>> 0 || 1;
  const next = () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 2 ** 32;
  };
  for (let k = 0; k < 8; k++) next();
  return next;
}

/** Wednesday 10:00 UTC in the future: market open for the ~17 hours a thousand runs (one minute each) take. */
const CRASH_T0 = Date.UTC(2031, 0, 1, 10, 0, 0);
const CRASH_PAIRS = ["EUR_JPY", "GBP_JPY", "USD_CHF", "AUD_USD", "EUR_USD", "USD_JPY"];
/** Set on an actor's instance before it is aborted; a restarted actor is a new instance without it. */
const DOOMED = Symbol("crash-points: this life of the actor is about to be aborted");

/**
 * Crash-point runs `first` .. `first + count - 1` (see crash-points.test.ts for why they come in
 * slices). Run `n` draws its crash point, side and sizes from seed `n` alone, so any run replays
 * as `crashPointRuns(n, 1)`. Each run: a quote and a manual order on one pair, the order dies at
 * the drawn crash point, the pair actor is aborted, and the first request to the restarted actor
 * is a new order; then the old order is sent again under its client id.
 */
export async function crashPointRuns(first: number, count: number): Promise<void> {
  await liftPortfolioLimits();
  expect((await postJson("/api/admin/kill-switch", { action: "resume" })).status).toBe(200);
  // Every fill logs an info line, and a crash inside a quote's trading step an error line (the
  // actors share this isolate's console): keep both out of the test output.
  const log = console.log;
  const logError = console.error;
  console.log = (...args: unknown[]) => {
    const line = args[0];
    if (typeof line === "string" && line.startsWith('{"event":"trade.') && line.includes('"level":"info"')) return;
    log(...args);
  };
  console.error = (...args: unknown[]) => {
    const line = args[0];
    if (typeof line === "string" && line.startsWith('{"event":"trade.step_failed"') && line.includes("fault injected")) return;
    logError(...args);
  };
  try {
    const seen = new Map<FaultPoint, number>();
    /** Per pair: the position the orders so far add up to, and the fills they made. */
    const expected = new Map<string, { net: number; fills: number }>();
    for (let run = first; run < first + count; run++) {
      const rnd = seededRandom(run);
      const pair = CRASH_PAIRS[run % CRASH_PAIRS.length]!;
      const jpy = pair.endsWith("JPY");
      const fault = ORDER_FAULTS[Math.floor(rnd() * ORDER_FAULTS.length)]!;
      seen.set(fault, (seen.get(fault) ?? 0) + 1);
      const side = rnd() < 0.5 ? "buy" : "sell";
      const units = 1000 + Math.floor(rnd() * 50) * 100;
      const nextUnits = 1000 + Math.floor(rnd() * 50) * 100;
      const now = CRASH_T0 + run * MINUTE;
      const id = `crash-${run}`;
      const where = `run ${run}: ${fault} on ${pair}, ${side} ${units}`;
      // The order under test, sent again after the restart exactly as first sent (a changed body under the same id is a 409 conflict).
      const away = (jpy ? 0.1 : 0.001) * (side === "buy" ? -1 : 1);
      const order: ExecuteBody =
        fault === "after_resting_fill"
          ? { pair, side, units, type: "limit", price: (jpy ? 160 : 1.1) + away, clientOrderId: id }
          : { pair, side, units, type: "market", clientOrderId: id };
      if (run === first) {
        // The USD pairs' prices value the crosses' currencies for the coordinator.
        for (const [p, bid] of [["EUR_USD", 1.1], ["USD_JPY", 150], ["GBP_USD", 1.27]] as const) {
          await setClock(p, now);
          await tick(p, now - 200, bid, bid + (p === "USD_JPY" ? 0.02 : 0.0002));
        }
      }
      const before = expected.get(pair) ?? { net: 0, fills: 0 };

      // A quote, then the order, which dies at the crash point; then the actor is aborted. The abort
      // waits for this request to answer (a timer in the actor): aborting inside a request also fails
      // that request, which workerd reports as an uncaught exception on stderr for every run.
      const died = await runInDurableObject(stub(pair), async (i: Pair, state: DurableObjectState) => {
        i.hooks.clock = () => now;
        const quoted = await i.ingest([{ ts: now - 100, bid: jpy ? 160 : 1.1, ask: jpy ? 160.02 : 1.1002 }]);
        if (quoted.accepted !== 1) return `tick refused: ${JSON.stringify(quoted)}`;
        let outcome = "died";
        if (fault === "after_resting_fill") {
          // A limit order rests, then a quote crosses it: the paper broker fills it and the actor dies
          // before the fill is applied (the broker will not report that fill again).
          const rested = await i.execute(order);
          if (!rested.ok || !("order" in rested) || rested.order.status !== "working") return `not resting: ${JSON.stringify(rested)}`;
          i.hooks.faultPoint = fault;
          const crossed = (jpy ? 160 : 1.1) + 1.5 * away;
          await i.ingest([{ ts: now - 50, bid: crossed, ask: crossed + (jpy ? 0.02 : 0.0002) }]);
          const taken = state.storage.sql.exec<{ status: string }>("SELECT status FROM paper_orders WHERE client_order_id = ?", id).one().status;
          const applied = i.recentOrders(1000).find((o) => o.clientOrderId === id)?.status;
          if (taken !== "filled" || applied !== "working") outcome = `not stopped: broker ${taken}, runtime ${applied}`;
        } else {
          i.hooks.faultPoint = fault;
          try {
            outcome = `not stopped: ${JSON.stringify(await i.execute(order))}`;
          } catch {
            // the crash point
          }
        }
        (i as unknown as Record<symbol, boolean>)[DOOMED] = true;
        setTimeout(() => {
          try {
            state.abort("crash-point test");
          } catch {
            // abort() also throws at its caller: this timer, in the dying actor
          }
        }, 0);
        return outcome;
      });
      expect(died, where).toBe("died");
      await new Promise((resolve) => setTimeout(resolve, 1));

      // The next order goes towards flat, so the position stays inside the pair's limit over the runs.
      const crashed = before.net + (side === "buy" ? units : -units);
      const nextSide = crashed > 0 ? "sell" : "buy";
      const after = { net: crashed + (nextSide === "buy" ? nextUnits : -nextUnits), fills: before.fills + 2 };

      // The first request to the restarted actor: a new instance (all in-memory state gone, the
      // test clock too, rebuilt from SQLite), and at once a new order, which must settle the old one
      // with the broker first (re-sent from the outbox, or looked up as a working order). Orders go
      // to the actor's execute, as POST /api/trade/execute does. An order that died right after its
      // approval was never recorded: its client sends it again (below), after the new one.
      const restarted = await runInDurableObject(stub(pair), async (i: Pair) => {
        const fresh = !(DOOMED in i) && i.hooks.faultPoint === null;
        if (!fresh) return { fresh, next: "not sent" };
        i.hooks.clock = () => now + 1_000;
        const next = await i.execute({ pair, side: nextSide, units: nextUnits, type: "market", clientOrderId: `${id}-next` });
        return { fresh, next: next.ok ? next.order.status : JSON.stringify(next) };
      });
      expect(restarted, where).toEqual({ fresh: true, next: "filled" });

      const state = await runInDurableObject(stub(pair), async (i: Pair, s: DurableObjectState) => {
        // The same order again is the same order.
        const again = await i.execute(order);
        const fills = s.storage.sql.exec<{ fill_json: string }>("SELECT fill_json FROM fills ORDER BY seq").toArray().map((r) => JSON.parse(r.fill_json) as Fill);
        return {
          again: again.ok ? again.fills.length : JSON.stringify(again),
          fills: fills.map((f) => f.clientOrderId),
          filledUnits: fills.reduce((sum, f) => sum + (f.side === "buy" ? f.units : -f.units), 0),
          outbox: s.storage.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM outbox").one().n,
          orders: i.recentOrders(1000).filter((o) => o.clientOrderId === id).map((o) => o.status),
          net: i.recentPositions(1000).filter((p) => p.status === "OPEN" && p.strategyId === MANUAL).reduce((sum, p) => sum + (p.side === "buy" ? p.units : -p.units), 0),
        };
      });
      expect(state.again, where).toBe(1);
      // One order per client id, filled once, before the order after the restart; nothing left unsent.
      expect(state.orders, where).toEqual(["filled"]);
      expect(state.fills.filter((f) => f === id), where).toHaveLength(1);
      expect(state.fills.filter((f) => f === `${id}-next`), where).toHaveLength(1);
      if (fault === "after_approval") expect(state.fills.indexOf(id), where).toBeGreaterThan(state.fills.indexOf(`${id}-next`));
      else expect(state.fills.indexOf(id), where).toBeLessThan(state.fills.indexOf(`${id}-next`));
      expect(state.fills, where).toHaveLength(after.fills);
      expect(state.outbox, where).toBe(0);
      // The position is what the orders and the fills add up to.
      expect(state.net, where).toBe(after.net);
      expect(state.filledUnits, where).toBe(after.net);
      expected.set(pair, after);
    }
    expect([...seen.keys()].sort()).toEqual([...ORDER_FAULTS].sort());
  } finally {
    console.log = log;
    console.error = logError;
  }
}
