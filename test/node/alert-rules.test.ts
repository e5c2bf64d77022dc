import { describe, expect, it } from "vitest";
import { DEFAULT_ALERT_THRESHOLDS, evaluateAlerts, webhookBody, type AlertInput } from "../../src/alerts/rules.ts";

const WED = Date.UTC(2026, 10, 25, 14, 0);
const SAT = Date.UTC(2026, 10, 28, 14, 0);
const quiet: AlertInput = {
  nowMs: WED,
  routes: [{ route: "GET /api/health", requests: 100, clientErrors: 10, serverErrors: 0 }],
  pairs: [{ pair: "EUR_USD", lastTickTs: WED - 1_000, upSinceMs: WED - 3_600_000, rejectionsLastMinute: 0, latencyMs: { tickToDecision: { p99: 3 } } }],
  coordinatorHeartbeatMs: WED - 60_000,
  thresholds: DEFAULT_ALERT_THRESHOLDS,
};

describe("alert rules", () => {
  it("raise nothing on a healthy runtime (client errors are not server errors)", () => {
    expect(evaluateAlerts(quiet)).toEqual([]);
  });

  it("raise each rule with a stable id", () => {
    const alerts = evaluateAlerts({
      ...quiet,
      routes: [{ route: "POST /api/trade/execute", requests: 100, clientErrors: 0, serverErrors: 2 }],
      pairs: [{ pair: "EUR_USD", lastTickTs: WED - 6 * 60_000, upSinceMs: WED - 3_600_000, rejectionsLastMinute: 6, latencyMs: { orderRoundTrip: { p99: 150 } } }],
      coordinatorHeartbeatMs: WED - 6 * 60_000,
    });
    expect(alerts.map((a) => a.id)).toEqual([
      "error_rate:api",
      "p99_latency:EUR_USD:orderRoundTrip",
      "failed_orders:EUR_USD",
      "stale_feed:EUR_USD",
      "coordinator_heartbeat:coordinator",
    ]);
    expect(webhookBody(alerts[0]!, WED).text).toMatch(/error rate 2.00 % over 1.00 %/);
  });

  it("broker rules: a position mismatch, a broker failing 3 calls in a row, an OANDA stream that is not streaming", () => {
    const pair = quiet.pairs[0]!;
    expect(evaluateAlerts({ ...quiet, pairs: [{ ...pair, brokerConsecutiveFailures: 2, positionCheck: { ok: true, brokerUnits: 5, runtimeUnits: 5 } }], feedState: "streaming" })).toEqual([]);
    const alerts = evaluateAlerts({
      ...quiet,
      pairs: [{ ...pair, brokerConsecutiveFailures: 3, positionCheck: { ok: false, brokerUnits: 7_000, runtimeUnits: 2_000 } }],
      feedState: "reconnecting",
    });
    expect(alerts.map((a) => a.id)).toEqual(["position_mismatch:EUR_USD", "broker_failing:EUR_USD", "feed_down:oanda"]);
    expect(alerts[0]).toMatchObject({ message: "EUR_USD: the broker holds 7000 units, the runtime 2000; trading halted", value: 5_000 });
    // The stream is allowed to rest over the weekend; a mismatch is not.
    expect(evaluateAlerts({ ...quiet, nowMs: SAT, coordinatorHeartbeatMs: SAT, pairs: [{ ...pair, lastTickTs: SAT, positionCheck: { ok: false, brokerUnits: 1, runtimeUnits: 0 } }], feedState: "reconnecting" }).map((a) => a.rule)).toEqual(["position_mismatch"]);
  });

  it("a suspended strategy is an alert per pair and strategy, while it stays suspended", () => {
    const pair = quiet.pairs[0]!;
    expect(evaluateAlerts({ ...quiet, pairs: [{ ...pair, suspendedStrategies: [] }] })).toEqual([]);
    const alerts = evaluateAlerts({ ...quiet, pairs: [{ ...pair, suspendedStrategies: [{ id: "mine", code: "threw", message: "TypeError: x is undefined" }] }] });
    expect(alerts).toEqual([
      { id: "strategy_suspended:EUR_USD:mine", rule: "strategy_suspended", subject: "EUR_USD mine", message: "EUR_USD: strategy mine suspended (threw): TypeError: x is undefined", value: 1, threshold: 0 },
    ]);
  });

  it("a silent feed over the weekend is not an alert; too few requests are not an error rate", () => {
    const weekend = evaluateAlerts({ ...quiet, nowMs: SAT, coordinatorHeartbeatMs: SAT, pairs: [{ ...quiet.pairs[0]!, lastTickTs: SAT - 3_600_000 }] });
    expect(weekend).toEqual([]);
    const few = evaluateAlerts({ ...quiet, routes: [{ route: "x", requests: 5, clientErrors: 0, serverErrors: 5 }] });
    expect(few).toEqual([]);
  });

  it("a pair without any tick yet is stale only once it has been up longer than the limit", () => {
    const fresh = { ...quiet.pairs[0]!, lastTickTs: null };
    expect(evaluateAlerts({ ...quiet, pairs: [{ ...fresh, upSinceMs: WED - 60_000 }] })).toEqual([]);
    const late = evaluateAlerts({ ...quiet, pairs: [{ ...fresh, upSinceMs: WED - 6 * 60_000 }] });
    expect(late).toMatchObject([{ id: "stale_feed:EUR_USD", message: "EUR_USD: no tick yet during market hours", value: 6 }]);
  });

  it("a missed recovery point: an actor whose state in R2 is older than 5 minutes, named, with the last error", () => {
    const backup = { actor: "pair:EUR_USD", ageMs: 240_000, upForMs: 3_600_000, intervalMs: 240_000, lastError: null };
    const coordinator = { ...backup, actor: "coordinator", ageMs: 5 * 60_000 };
    // 4 minutes, and exactly 5, are within the recovery point.
    expect(evaluateAlerts({ ...quiet, backups: [backup, coordinator] })).toEqual([]);
    const late = evaluateAlerts({ ...quiet, backups: [{ ...backup, ageMs: 6 * 60_000 + 30_000, lastError: "Error: R2 put failed" }, coordinator] });
    expect(late).toEqual([
      {
        id: "backup_missed:pair:EUR_USD", rule: "backup_missed", subject: "pair:EUR_USD",
        message: "pair:EUR_USD: last backup 6 min ago, past the 5-minute recovery point (last error: Error: R2 put failed)",
        value: 6, threshold: 5,
      },
    ]);
    // The weekend changes nothing: state changes then too (retention, restores, keys).
    expect(evaluateAlerts({ ...quiet, nowMs: SAT, coordinatorHeartbeatMs: SAT, pairs: [{ ...quiet.pairs[0]!, lastTickTs: SAT }], backups: [{ ...backup, ageMs: 6 * 60_000 }] }).map((a) => a.id)).toEqual(["backup_missed:pair:EUR_USD"]);
  });

  it("an actor never backed up is late only once it has been up longer than 5 minutes; backups turned off raise nothing", () => {
    const never = { actor: "gatekeeper", ageMs: null, upForMs: 60_000, intervalMs: 240_000, lastError: null };
    expect(evaluateAlerts({ ...quiet, backups: [never] })).toEqual([]);
    expect(evaluateAlerts({ ...quiet, backups: [{ ...never, upForMs: 7 * 60_000 }] })).toMatchObject([{ id: "backup_missed:gatekeeper", message: "gatekeeper: never backed up, up 7 min", value: 7 }]);
    expect(evaluateAlerts({ ...quiet, backups: [{ ...never, upForMs: 7 * 60_000, intervalMs: 0 }] })).toEqual([]);
  });
});
