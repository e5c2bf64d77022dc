/**
 * Revoking a key ends what it opened: the pair room's trader socket (ticks
 * in, orders and fills out), the signal stream and the admin alert stream
 * close with 4401 "key revoked". The cron's minute check closes them too when
 * the revocation's notice never reached the room, and a Gatekeeper restore
 * that drops a key closes its sockets.
 */
import { env } from "cloudflare:workers";
import { createExecutionContext, createScheduledController, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import worker from "../../src/worker.ts";
import { call, openRoom, postJson } from "./helpers.ts";

type Json = Record<string, any>;

async function newKey(role: "viewer" | "trader" | "admin", label: string): Promise<{ id: string; key: string }> {
  const res = await postJson("/api/admin/keys", { role, label });
  expect(res.status).toBe(201);
  return res.json();
}

/** Resolves with the close event's code and reason. */
function closed(ws: WebSocket): Promise<{ code: number; reason: string }> {
  return new Promise((resolve) => ws.addEventListener("close", (e) => resolve({ code: e.code, reason: e.reason })));
}

/** Settles within `ms`, or says it did not. */
function within<T>(p: Promise<T>, ms: number): Promise<T | "still open"> {
  return Promise.race([p, new Promise<"still open">((r) => setTimeout(() => r("still open"), ms))]);
}

async function runCron(): Promise<void> {
  const ctx = createExecutionContext();
  await worker.scheduled(createScheduledController({ scheduledTime: Date.now(), cron: "* * * * *" }), env, ctx);
  await waitOnExecutionContext(ctx);
}

const revoke = (id: string) => call(`/api/admin/keys/${id}`, { method: "DELETE" });

describe("revoking a key closes its sockets", () => {
  it("the trader's room socket, the signal stream and the alert stream close at once; other sockets stay", async () => {
    const trader = await newKey("trader", "trader socket");
    const admin = await newKey("admin", "alert watcher");
    const bystander = await newKey("viewer", "bystander");
    const room = await openRoom("/parties/pair/GBP_JPY?tf=1m&limit=0", trader.key);
    const signals = await openRoom("/api/signals/realtime", trader.key);
    const alerts = await openRoom("/api/admin/alerts/realtime", admin.key);
    const other = await openRoom("/parties/pair/GBP_JPY?tf=1m&limit=0", bystander.key);
    await room.waitFor((f) => f.type === "snapshot");
    await other.waitFor((f) => f.type === "snapshot");
    const roomClosed = closed(room.ws);
    const signalsClosed = closed(signals.ws);
    const alertsClosed = closed(alerts.ws);
    const otherClosed = closed(other.ws);

    expect((await revoke(trader.id)).status).toBe(200);
    expect((await revoke(admin.id)).status).toBe(200);

    const revokedClose = { code: 4401, reason: "key revoked" };
    expect(await within(roomClosed, 2_000)).toEqual(revokedClose);
    expect(await within(signalsClosed, 2_000)).toEqual(revokedClose);
    expect(await within(alertsClosed, 2_000)).toEqual(revokedClose);
    // The bystander's socket still gets the market.
    const now = Date.now();
    await postJson("/api/pairs/GBP_JPY/ticks", { ticks: [{ ts: now - 500, bid: 190.5, ask: 190.52 }] });
    await other.waitFor((f) => f.type === "tick");
    expect(await within(otherClosed, 100)).toBe("still open");
    other.ws.close();
  });

  it("a revocation whose notice was lost is caught by the cron's minute check", async () => {
    const trader = await newKey("trader", "missed notice");
    const room = await openRoom("/parties/pair/GBP_JPY?tf=1m&limit=0", trader.key);
    await room.waitFor((f) => f.type === "snapshot");
    const roomClosed = closed(room.ws);
    // Straight at the Gatekeeper: the rooms hear nothing of it.
    await env.Gatekeeper.getByName("main").revokeKey(trader.id, "test");
    expect(await within(roomClosed, 300)).toBe("still open");

    await runCron();

    expect(await within(roomClosed, 2_000)).toEqual({ code: 4401, reason: "key revoked" });
  });

  it("a gatekeeper restore to a snapshot without the key closes its sockets", async () => {
    const snapshot = (await (await postJson("/api/admin/backups", { actors: ["gatekeeper"] })).json<Json>()).results[0].snapshot;
    const later = await newKey("admin", "created after the snapshot");
    const alerts = await openRoom("/api/admin/alerts/realtime", later.key);
    const alertsClosed = closed(alerts.ws);

    expect((await postJson("/api/admin/backups/restore", { actor: "gatekeeper", snapshot })).status).toBe(200);

    expect(await within(alertsClosed, 2_000)).toEqual({ code: 4401, reason: "key revoked" });
    expect((await call("/api/admin/keys", {}, later.key)).status).toBe(401);
  });

  it("a client cannot name the key of its socket", async () => {
    const viewer = await newKey("viewer", "honest");
    const victim = await newKey("viewer", "victim");
    const res = await call(`/parties/pair/GBP_JPY?tf=1m&limit=0&key=${viewer.key}`, { headers: { Upgrade: "websocket", "x-fxrt-key-id": victim.id } }, null);
    const ws = res.webSocket!;
    ws.accept();
    const wsClosed = closed(ws);
    // Revoking the key the client named leaves its socket open; revoking its own closes it.
    expect((await revoke(victim.id)).status).toBe(200);
    expect(await within(wsClosed, 300)).toBe("still open");
    expect((await revoke(viewer.id)).status).toBe(200);
    expect(await within(wsClosed, 2_000)).toEqual({ code: 4401, reason: "key revoked" });
  });
});
