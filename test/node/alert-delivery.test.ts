/**
 * Alert delivery (src/alerts/delivery.ts), the coordinator's alert room, with
 * the storage, the broadcast, the webhook and the waits passed in.
 */
import { describe, expect, it } from "vitest";
import { applyAlerts, deliverToWebhook, WEBHOOK_ATTEMPTS, type ActiveAlert, type AlertDeliveryDeps } from "../../src/alerts/delivery.ts";
import type { Alert } from "../../src/alerts/rules.ts";

const T0 = Date.UTC(2030, 0, 2, 10, 0, 0);
const alert = (id: string): Alert => ({ id, rule: "stale_feed", subject: id, message: `feed ${id} stale`, value: 6, threshold: 5 });

function desk(answers: number[]) {
  let kept: Record<string, ActiveAlert> = {};
  const broadcasts: string[] = [];
  const posts: { url: string; body: unknown }[] = [];
  const waits: number[] = [];
  const deps = (nowMs: number): AlertDeliveryDeps => ({
    load: () => structuredClone(kept),
    keep: (active) => {
      kept = structuredClone(active);
    },
    broadcast: async (a) => broadcasts.push(a.alert.id),
    webhookUrl: "https://hooks.example/alerts",
    nowMs,
    fetch: (async (url: string, init: RequestInit) => {
      posts.push({ url, body: JSON.parse(String(init.body)) });
      return new Response("", { status: answers.shift() ?? 200 });
    }) as typeof fetch,
    sleep: async (ms) => {
      waits.push(ms);
    },
  });
  return { deps, broadcasts, posts, waits, kept: () => kept };
}

describe("alert delivery", () => {
  it("a new alert is kept, broadcast and delivered once; one that stays active is neither again; one that ended is dropped", async () => {
    const d = desk([]);
    expect(await applyAlerts(d.deps(T0), [alert("a")])).toEqual([{ alert: alert("a"), raisedAt: T0, delivered: true }]);
    expect(await applyAlerts(d.deps(T0 + 60_000), [alert("a"), alert("b")])).toEqual([
      { alert: alert("a"), raisedAt: T0, delivered: true },
      { alert: alert("b"), raisedAt: T0 + 60_000, delivered: true },
    ]);
    expect(d.broadcasts).toEqual(["a", "b"]);
    expect(d.posts.map((p) => (p.body as { alert: Alert }).alert.id)).toEqual(["a", "b"]);
    expect(d.posts[0]!.body).toMatchObject({ text: ":rotating_light: [fxrt] feed a stale", raisedAt: new Date(T0).toISOString() });
    expect(await applyAlerts(d.deps(T0 + 120_000), [alert("b")])).toHaveLength(1);
    expect(Object.keys(d.kept())).toEqual(["b"]);
  });

  it("a webhook that keeps failing is tried 3 times with 200, 400, 800 ms between, and again next round until it takes it", async () => {
    const d = desk([500, 502, 503, 200]);
    expect(await applyAlerts(d.deps(T0), [alert("a")])).toEqual([{ alert: alert("a"), raisedAt: T0, delivered: false }]);
    expect(d.posts).toHaveLength(WEBHOOK_ATTEMPTS);
    expect(d.waits).toEqual([200, 400, 800]);
    expect(await applyAlerts(d.deps(T0 + 60_000), [alert("a")])).toEqual([{ alert: alert("a"), raisedAt: T0, delivered: true }]);
    expect(d.posts).toHaveLength(WEBHOOK_ATTEMPTS + 1);
    // Broadcast once, when it was raised.
    expect(d.broadcasts).toEqual(["a"]);
  });

  it("without a webhook an alert counts as delivered", async () => {
    expect(await deliverToWebhook(undefined, { alert: alert("a"), raisedAt: T0, delivered: false })).toBe(true);
  });
});
