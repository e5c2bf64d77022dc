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
});
