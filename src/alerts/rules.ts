/**
 * Alert rules, evaluated every minute from the runtime's metrics. Pure: the
 * same figures always raise the same alerts, each with a stable id (rule +
 * subject) so that an alert that stays active is never delivered twice.
 */
import { isWeekendClosed } from "../domain/fx-time.ts";

export interface AlertInput {
  nowMs: number;
  routes: readonly { route: string; requests: number; clientErrors: number; serverErrors: number }[];
  pairs: readonly {
    pair: string;
    lastTickTs: number | null;
    /** When the pair's actor started (this life): a pair that never had a tick is given staleTickMinutes from then. */
    upSinceMs: number;
    rejectionsLastMinute: number;
    latencyMs: Readonly<Record<string, { p99: number | null }>>;
    /** Broker calls that failed in a row (0 when the last one worked). */
    brokerConsecutiveFailures?: number;
    /** The last comparison with the broker's position; null when none (paper). */
    positionCheck?: { ok: boolean; brokerUnits: number; runtimeUnits: number } | null;
    /** Strategies suspended on the pair by a failed step (until an admin resumes them). */
    suspendedStrategies?: readonly { id: string; code: string; message: string }[];
  }[];
  /** The OANDA pricing stream's state when FEED=oanda; null otherwise. */
  feedState?: string | null;
  /** Each backed-up actor's backups (ActorBackup.status); durations on the actor's own clock. */
  backups?: readonly {
    actor: string;
    /** Since the state was last known to be in R2; null when it never was. */
    ageMs: number | null;
    /** How long this life of the actor has held its state: an actor never backed up is judged from it. */
    upForMs: number;
    /** 0 when backups are off by configuration (BACKUP_INTERVAL_SECONDS=0). */
    intervalMs: number;
    lastError: string | null;
  }[];
  /** Last time the coordinator answered a heartbeat; null if it never did. */
  coordinatorHeartbeatMs: number | null;
  thresholds: AlertThresholds;
}

export interface AlertThresholds {
  errorRate: number;
  p99LatencyMs: number;
  failedOrdersPerMinute: number;
  staleTickMinutes: number;
  heartbeatMissingMinutes: number;
  /** Below this many requests in the window the error rate is not judged. */
  minRequests: number;
  /** Broker calls failing in a row before it counts as down. */
  brokerFailures: number;
  /** The recovery point objective: an actor's state older than this in R2 is a missed recovery point. */
  backupAgeMinutes: number;
}

export const DEFAULT_ALERT_THRESHOLDS: AlertThresholds = {
  errorRate: 0.01,
  p99LatencyMs: 100,
  failedOrdersPerMinute: 5,
  staleTickMinutes: 5,
  heartbeatMissingMinutes: 5,
  minRequests: 20,
  brokerFailures: 3,
  backupAgeMinutes: 5,
};

export interface Alert {
  /** rule:subject, stable while the condition lasts. */
  id: string;
  rule: "error_rate" | "p99_latency" | "failed_orders" | "stale_feed" | "coordinator_heartbeat" | "position_mismatch" | "broker_failing" | "feed_down" | "backup_missed" | "strategy_suspended";
  subject: string;
  message: string;
  value: number;
  threshold: number;
}

export function evaluateAlerts(input: AlertInput): Alert[] {
  const t = input.thresholds;
  const alerts: Alert[] = [];
  const requests = input.routes.reduce((s, r) => s + r.requests, 0);
  // Server errors only: refused bad input (4xx) is the API doing its job.
  const errors = input.routes.reduce((s, r) => s + r.serverErrors, 0);
  if (requests >= t.minRequests && errors / requests > t.errorRate) {
    alerts.push({ id: "error_rate:api", rule: "error_rate", subject: "api", message: `error rate ${pct(errors / requests)} over ${pct(t.errorRate)}`, value: errors / requests, threshold: t.errorRate });
  }
  for (const p of input.pairs) {
    for (const [path, s] of Object.entries(p.latencyMs)) {
      if (s.p99 !== null && s.p99 > t.p99LatencyMs) {
        alerts.push({ id: `p99_latency:${p.pair}:${path}`, rule: "p99_latency", subject: `${p.pair} ${path}`, message: `${p.pair} ${path} p99 ${s.p99} ms over ${t.p99LatencyMs} ms`, value: s.p99, threshold: t.p99LatencyMs });
      }
    }
    if (p.rejectionsLastMinute > t.failedOrdersPerMinute) {
      alerts.push({ id: `failed_orders:${p.pair}`, rule: "failed_orders", subject: p.pair, message: `${p.pair}: ${p.rejectionsLastMinute} refused orders in the last minute`, value: p.rejectionsLastMinute, threshold: t.failedOrdersPerMinute });
    }
    // A pair that never had a tick is judged from its start: a runtime just started is not a stale feed.
    const silentMin = p.lastTickTs === null ? (input.nowMs - p.upSinceMs) / 60_000 : (input.nowMs - p.lastTickTs) / 60_000;
    if (!isWeekendClosed(input.nowMs) && silentMin > t.staleTickMinutes) {
      alerts.push({
        id: `stale_feed:${p.pair}`, rule: "stale_feed", subject: p.pair,
        message: p.lastTickTs === null ? `${p.pair}: no tick yet during market hours` : `${p.pair}: no tick for ${Math.floor(silentMin)} min during market hours`,
        value: Math.floor(silentMin), threshold: t.staleTickMinutes,
      });
    }
  }
  for (const p of input.pairs) {
    const check = p.positionCheck;
    if (check && !check.ok) {
      alerts.push({
        id: `position_mismatch:${p.pair}`, rule: "position_mismatch", subject: p.pair,
        message: `${p.pair}: the broker holds ${check.brokerUnits} units, the runtime ${check.runtimeUnits}; trading halted`,
        value: check.brokerUnits - check.runtimeUnits, threshold: 0,
      });
    }
    const failures = p.brokerConsecutiveFailures ?? 0;
    if (failures >= t.brokerFailures) {
      alerts.push({ id: `broker_failing:${p.pair}`, rule: "broker_failing", subject: p.pair, message: `${p.pair}: ${failures} broker calls failed in a row`, value: failures, threshold: t.brokerFailures });
    }
    for (const s of p.suspendedStrategies ?? []) {
      alerts.push({
        id: `strategy_suspended:${p.pair}:${s.id}`, rule: "strategy_suspended", subject: `${p.pair} ${s.id}`,
        message: `${p.pair}: strategy ${s.id} suspended (${s.code}): ${s.message.slice(0, 200)}`, value: 1, threshold: 0,
      });
    }
  }
  if (input.feedState && input.feedState !== "streaming" && !isWeekendClosed(input.nowMs)) {
    alerts.push({ id: "feed_down:oanda", rule: "feed_down", subject: "oanda", message: `the OANDA price stream is ${input.feedState}`, value: 0, threshold: 0 });
  }
  for (const b of input.backups ?? []) {
    // Backups turned off is the operator's choice, not a missed recovery point.
    if (b.intervalMs === 0) continue;
    // Never backed up: judged from the actor's start, so a runtime just started raises none.
    const ageMin = (b.ageMs ?? b.upForMs) / 60_000;
    if (ageMin <= t.backupAgeMinutes) continue;
    const why = b.lastError === null ? "" : ` (last error: ${b.lastError.slice(0, 200)})`;
    alerts.push({
      id: `backup_missed:${b.actor}`, rule: "backup_missed", subject: b.actor,
      message: b.ageMs === null
        ? `${b.actor}: never backed up, up ${Math.floor(ageMin)} min${why}`
        : `${b.actor}: last backup ${Math.floor(ageMin)} min ago, past the ${t.backupAgeMinutes}-minute recovery point${why}`,
      value: Math.floor(ageMin), threshold: t.backupAgeMinutes,
    });
  }
  const beatMin = input.coordinatorHeartbeatMs === null ? Number.POSITIVE_INFINITY : (input.nowMs - input.coordinatorHeartbeatMs) / 60_000;
  if (beatMin > t.heartbeatMissingMinutes) {
    alerts.push({ id: "coordinator_heartbeat:coordinator", rule: "coordinator_heartbeat", subject: "coordinator", message: "the coordinator's heartbeat is missing", value: Number.isFinite(beatMin) ? Math.floor(beatMin) : -1, threshold: t.heartbeatMissingMinutes });
  }
  return alerts;
}

function pct(x: number): string {
  return `${(x * 100).toFixed(2)} %`;
}

/** A Slack-compatible webhook body (`text`), with the alert as structured fields too. */
export function webhookBody(alert: Alert, raisedAt: number): { text: string; alert: Alert; raisedAt: string } {
  return { text: `:rotating_light: [fxrt] ${alert.message}`, alert, raisedAt: new Date(raisedAt).toISOString() };
}
