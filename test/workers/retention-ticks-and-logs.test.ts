/**
 * Time-based retention of ticks, audit logs, risk rejections and signals
 * (TICK_RETENTION_DAYS = LOG_RETENTION_DAYS = 90 in wrangler.jsonc), run by
 * the cron's Pair.wake at most hourly, in bounded batches; and the audit logs
 * of the Coordinator and the Gatekeeper.
 */
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { Coordinator } from "../../actors/coordinator.ts";
import type { Gatekeeper } from "../../actors/gatekeeper.ts";
import type { Pair } from "../../actors/pair.ts";
import { RETENTION_BATCH_ROWS, RETENTION_INTERVAL_MS, RETENTION_MAX_BATCHES } from "../../actors/retention.ts";
import { setClock, stub } from "./pair-kit.ts";

const DAY = 86_400_000;
/** Wednesday 10:00 UTC in the future: the pair's alarms never fire by themselves. */
const NOW = Date.UTC(2030, 5, 5, 10, 0, 0);
const OLD = NOW - 91 * DAY;
const YOUNG = NOW - 89 * DAY;

function count(sql: SqlStorage, table: string): number {
  return sql.exec<{ n: number }>(`SELECT COUNT(*) AS n FROM ${table}`).one().n;
}

describe("pair retention: ticks, audit log, risk rejections, signals", () => {
  it("deletes rows older than 90 days, keeps younger ones and pending signals, then rests for an hour", async () => {
    const pair = "EUR_JPY";
    await setClock(pair, NOW);
    await runInDurableObject(stub(pair), (_i: Pair, state) => {
      const sql = state.storage.sql;
      for (const ts of [OLD - 5, OLD - 1, OLD, YOUNG, YOUNG + 1]) sql.exec("INSERT INTO ticks (ts, bid, ask) VALUES (?, 16000000, 16000020)", ts);
      for (const at of [OLD - 2, OLD, YOUNG]) {
        sql.exec("INSERT INTO audit_log (at, actor, action, target) VALUES (?, 'test', 'risk_limits', 'EUR_JPY')", at);
      }
      for (const [i, time] of [OLD, YOUNG].entries()) {
        sql.exec("INSERT INTO risk_rejections (client_order_id, strategy_id, rejection_json, time) VALUES (?, 's', '{}', ?)", `r${i}`, time);
        sql.exec(
          "INSERT INTO trading_signals (id, strategy_id, timeframe, type, confidence, reason, metadata, time, candle_t) VALUES (?, 's', '1m', 'buy', 1, 'x', '{}', ?, ?)",
          `sig${i}`, time, time,
        );
      }
      // Waiting for its decision: pending signals are never retention's to delete, however old.
      sql.exec("INSERT INTO pending_signals (signal_id, signal_json, created_at) VALUES ('sig-pending', '{}', ?)", OLD - DAY);
    });

    const report = await stub(pair).wake();
    expect(report).toMatchObject({
      ran: true,
      complete: true,
      deleted: { ticks: 3, auditLog: 2, riskRejections: 1, signals: 1, positions: 0, orders: 0, fills: 0 },
    });
    const left = await runInDurableObject(stub(pair), (_i: Pair, state) => {
      const sql = state.storage.sql;
      return {
        ticks: sql.exec<{ ts: number }>("SELECT ts FROM ticks ORDER BY ts").toArray().map((r) => r.ts),
        audit: sql.exec<{ at: number }>("SELECT at FROM audit_log").toArray().map((r) => r.at),
        rejections: sql.exec<{ id: string }>("SELECT client_order_id AS id FROM risk_rejections").toArray().map((r) => r.id),
        signals: sql.exec<{ id: string }>("SELECT id FROM trading_signals").toArray().map((r) => r.id),
        pending: count(sql, "pending_signals"),
      };
    });
    expect(left).toEqual({ ticks: [YOUNG, YOUNG + 1], audit: [YOUNG], rejections: ["r1"], signals: ["sig1"], pending: 1 });

    // The per-minute cron within the hour: nothing runs.
    await setClock(pair, NOW + RETENTION_INTERVAL_MS - 1);
    expect(await stub(pair).wake()).toMatchObject({ ran: false });
    // An hour later it runs again and finds nothing more to delete.
    await setClock(pair, NOW + RETENTION_INTERVAL_MS);
    expect(await stub(pair).wake()).toMatchObject({
      ran: true,
      complete: true,
      deleted: { ticks: 0, auditLog: 0, riskRejections: 0, signals: 0 },
    });
  });

  it("deletes in bounded batches: a run stopped by the bound is continued by the next minute's cron", async () => {
    const pair = "GBP_JPY";
    const perRun = RETENTION_BATCH_ROWS * RETENTION_MAX_BATCHES;
    const old = perRun + 700;
    await setClock(pair, NOW);
    await runInDurableObject(stub(pair), (_i: Pair, state) => {
      state.storage.sql.exec(
        `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
         INSERT INTO ticks (ts, bid, ask) SELECT ? + i, 18000000, 18000030 FROM n`,
        old, OLD - old - 1,
      );
      state.storage.sql.exec("INSERT INTO ticks (ts, bid, ask) VALUES (?, 18000000, 18000030)", YOUNG);
    });

    expect(await stub(pair).wake()).toMatchObject({ ran: true, complete: false, deleted: { ticks: perRun } });
    await setClock(pair, NOW + 60_000);
    expect(await stub(pair).wake()).toMatchObject({ ran: true, complete: true, deleted: { ticks: 700 } });
    await setClock(pair, NOW + 120_000);
    expect(await stub(pair).wake()).toMatchObject({ ran: false });
    const ticks = await runInDurableObject(stub(pair), (_i: Pair, state) => state.storage.sql.exec<{ ts: number }>("SELECT ts FROM ticks").toArray());
    expect(ticks).toEqual([{ ts: YOUNG }]);
  });
});

describe("audit-log retention of the Coordinator and the Gatekeeper", () => {
  for (const [name, ns] of [
    ["Coordinator", () => env.Coordinator.getByName("main")],
    ["Gatekeeper", () => env.Gatekeeper.getByName("main")],
  ] as const) {
    it(`${name}: audit rows older than 90 days go, younger stay, at most hourly`, async () => {
      const s = ns() as DurableObjectStub<Coordinator | Gatekeeper>;
      await runInDurableObject(s, (_i: Coordinator | Gatekeeper, state) => {
        for (const at of [OLD - DAY, OLD, YOUNG]) {
          state.storage.sql.exec("INSERT INTO audit_log (at, actor, action, target) VALUES (?, 'retention-test', 'limits', 'portfolio')", at);
        }
      });
      expect(await s.runRetention(NOW)).toEqual({ deleted: 2, complete: true });
      expect(await s.runRetention(NOW + RETENTION_INTERVAL_MS - 1)).toBeNull();
      expect(await s.runRetention(NOW + RETENTION_INTERVAL_MS)).toEqual({ deleted: 0, complete: true });
      const left = await runInDurableObject(s, (_i: Coordinator | Gatekeeper, state) =>
        state.storage.sql.exec<{ at: number }>("SELECT at FROM audit_log WHERE actor = 'retention-test'").toArray(),
      );
      expect(left).toEqual([{ at: YOUNG }]);
    });
  }
});
