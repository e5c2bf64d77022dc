/**
 * Alert delivery: the alerts active now against the ones active before (a new
 * one is raised once, one that stays active is never delivered twice, one
 * that ended is dropped), broadcast of the new ones, and delivery to the
 * webhook (ALERT_WEBHOOK_URL) with retries. No storage and no Cloudflare: the
 * Coordinator passes where the active alerts are kept, how to broadcast, the
 * webhook and the time.
 */
import { webhookBody, type Alert } from "./rules.ts";

export interface ActiveAlert {
  alert: Alert;
  raisedAt: number;
  delivered: boolean;
}

/** Tries per alert and round; waits 200 ms, 400 ms, ... between them. */
export const WEBHOOK_ATTEMPTS = 3;
const WEBHOOK_TIMEOUT_MS = 2_000;

/** The alerts active now, by id: a known one keeps when it was raised and whether it was delivered. */
export function activeAlertsAfter(before: Readonly<Record<string, ActiveAlert>>, alerts: readonly Alert[], nowMs: number): Record<string, ActiveAlert> {
  const active: Record<string, ActiveAlert> = {};
  for (const alert of alerts) active[alert.id] = before[alert.id] ? { ...before[alert.id]!, alert } : { alert, raisedAt: nowMs, delivered: false };
  return active;
}

export interface WebhookOptions {
  fetch?: typeof fetch;
  sleep?: (ms: number) => Promise<void>;
}

/** POST the alert to `url`, retrying with backoff; true once it got a 2xx (or when no url is set). */
export async function deliverToWebhook(url: string | undefined, a: ActiveAlert, options: WebhookOptions = {}): Promise<boolean> {
  if (!url) return true;
  const post = options.fetch ?? fetch;
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  for (let attempt = 1; attempt <= WEBHOOK_ATTEMPTS; attempt++) {
    try {
      const res = await post(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(webhookBody(a.alert, a.raisedAt)), signal: AbortSignal.timeout(WEBHOOK_TIMEOUT_MS) });
      await res.arrayBuffer();
      if (res.ok) return true;
    } catch {
      // retried below
    }
    await sleep(200 * 2 ** (attempt - 1));
  }
  return false;
}

export interface AlertDeliveryDeps extends WebhookOptions {
  /** The active alerts as last kept, by id. */
  load(): Record<string, ActiveAlert>;
  keep(active: Record<string, ActiveAlert>): void;
  /** Broadcast a newly raised alert (best effort: a failure is the caller's to swallow). */
  broadcast(a: ActiveAlert): Promise<unknown>;
  webhookUrl: string | undefined;
  nowMs: number;
}

/**
 * Take the alerts active now: new ones are kept, broadcast and delivered to
 * the webhook (an alert that stays active is never delivered twice; one not
 * delivered yet is tried again next round); ones that ended are dropped.
 */
export async function applyAlerts(d: AlertDeliveryDeps, alerts: readonly Alert[]): Promise<ActiveAlert[]> {
  const before = d.load();
  const active = activeAlertsAfter(before, alerts, d.nowMs);
  d.keep(active);
  for (const a of Object.values(active)) {
    if (before[a.alert.id]) continue;
    await d.broadcast(a);
  }
  for (const a of Object.values(active)) if (!a.delivered) a.delivered = await deliverToWebhook(d.webhookUrl, a, d);
  d.keep(active);
  return Object.values(active);
}
