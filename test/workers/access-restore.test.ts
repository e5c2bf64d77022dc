/**
 * A restore never undoes a security decision nor erases the record of one:
 * a key revoked after the snapshot stays revoked, a halt stays a halt,
 * replaced broker credentials stay replaced, and every audit entry written
 * after the snapshot (the revocation, another actor's restore) is still
 * there afterwards.
 */
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { Gatekeeper } from "../../actors/gatekeeper.ts";
import { call, postJson } from "./helpers.ts";

type Json = Record<string, any>;

async function backup(actor: string): Promise<string> {
  const res = await postJson("/api/admin/backups", { actors: [actor] });
  expect(res.status).toBe(200);
  return (await res.json<Json>()).results[0].snapshot;
}

async function restore(actor: string, snapshot: string): Promise<void> {
  const res = await postJson("/api/admin/backups/restore", { actor, snapshot });
  expect(res.status).toBe(200);
}

async function audit(): Promise<Json[]> {
  return (await (await call("/api/admin/audit?limit=1000")).json<Json>()).entries;
}

describe("restore keeps revocations and the audit log", () => {
  it("a key revoked after the gatekeeper's snapshot stays revoked, and its revocation stays recorded", async () => {
    const key = await (await postJson("/api/admin/keys", { role: "trader", label: "leaked" })).json<Json>();
    const other = await (await postJson("/api/admin/keys", { role: "viewer", label: "kept" })).json<Json>();
    const snapshot = await backup("gatekeeper");
    expect((await call(`/api/admin/keys/${key.id}`, { method: "DELETE" })).status).toBe(200);
    expect((await call("/api/pairs/EUR_USD/orders", {}, key.key)).status).toBe(401);

    await restore("gatekeeper", snapshot);

    expect((await call("/api/pairs/EUR_USD/orders", {}, key.key)).status).toBe(401);
    // The rest of the snapshot is restored as it was.
    expect((await call("/api/pairs/EUR_USD/orders", {}, other.key)).status).toBe(200);
    const listed = (await (await call("/api/admin/keys")).json<Json>()).keys as Json[];
    expect(listed.find((k) => k.id === key.id)?.revokedAt).toEqual(expect.any(Number));
    const entries = await audit();
    expect(entries.filter((e) => e.target === key.id).map((e) => e.action)).toEqual(["key.revoke", "key.create"]);
    // The restore itself is recorded (by the coordinator, whose log the restore does not touch).
    expect(entries.some((e) => e.action === "backup.restore" && e.target === "gatekeeper")).toBe(true);
  });

  it("restoring the coordinator keeps the record of another actor's restore, and its own later entries", async () => {
    const coordinatorSnapshot = await backup("coordinator");
    const pairSnapshot = await backup("pair:EUR_JPY");
    await restore("pair:EUR_JPY", pairSnapshot);
    const limits = { maxGrossExposure: 4321, maxNetExposurePerCurrency: 321, maxOpenPositions: 2, maxExposurePerPair: 21, dailyLossLimit: 1, maxDrawdown: 2 };
    const put = await call("/api/admin/limits", { method: "PUT", headers: { "content-type": "application/json" }, body: JSON.stringify(limits) });
    expect(put.status).toBe(200);
    const before = await audit();
    const pairRestore = before.find((e) => e.action === "backup.restore" && e.target === "pair:EUR_JPY");
    const limitChange = before.find((e) => e.action === "limits" && e.after?.maxGrossExposure === 4321);
    expect(pairRestore).toBeDefined();
    expect(limitChange).toBeDefined();

    await restore("coordinator", coordinatorSnapshot);

    const after = await audit();
    expect(after).toContainEqual(pairRestore);
    expect(after).toContainEqual(limitChange);
    // Every entry there was before is still there; the new one records this restore.
    for (const e of before) expect(after).toContainEqual(e);
    expect(after.filter((e) => e.action === "backup.restore" && e.target === "coordinator")).toHaveLength(1);
  });

  it("a log started afresh (a lost database) and the snapshot's are both kept, clashing ids and all", async () => {
    const gatekeeper = env.Gatekeeper.getByName("main");
    const old = await (await postJson("/api/admin/keys", { role: "viewer", label: "before the loss" })).json<Json>();
    const snapshot = await backup("gatekeeper");
    // The database loses its log: the next entry takes id 1 again, which the snapshot gave to another.
    await runInDurableObject(gatekeeper, (_: Gatekeeper, state: DurableObjectState) => {
      state.storage.sql.exec("DELETE FROM audit_log");
      state.storage.sql.exec("DELETE FROM sqlite_sequence WHERE name = 'audit_log'");
    });
    const fresh = await (await postJson("/api/admin/keys", { role: "viewer", label: "after the loss" })).json<Json>();
    expect((await gatekeeper.auditLog(10)).map((e) => e.id)).toEqual([1]);

    await restore("gatekeeper", snapshot);

    const entries = await gatekeeper.auditLog(1000);
    expect(entries.filter((e) => e.action === "key.create" && (e.target === old.id || e.target === fresh.id)).map((e) => e.target).sort()).toEqual([old.id, fresh.id].sort());
    expect(new Set(entries.map((e) => e.id)).size).toBe(entries.length);
  });

  it("restoring the coordinator keeps a halt made after the snapshot, and the credentials that replaced leaked ones", async () => {
    const creds = (accountId: string) =>
      call("/api/admin/broker/credentials", { method: "PUT", headers: { "content-type": "application/json" }, body: JSON.stringify({ accountId, token: `${accountId.replaceAll("-", "")}-token-0123456789` }) });
    expect((await postJson("/api/admin/kill-switch", { action: "resume" })).status).toBe(200);
    expect((await creds("101-004-1111111-001")).status).toBe(200);
    const snapshot = await backup("coordinator");
    expect((await postJson("/api/admin/kill-switch", { action: "halt", reason: "incident" })).status).toBe(200);
    expect((await creds("101-004-2222222-002")).status).toBe(200);

    await restore("coordinator", snapshot);

    const portfolio = await (await call("/api/admin/portfolio")).json<Json>();
    expect(portfolio.trading).toMatchObject({ state: "HALTED", reason: "incident" });
    // Asked of the coordinator itself: GET /api/admin/broker would also call OANDA with them.
    expect((await env.Coordinator.getByName("main").brokerCredentialsInfo()).accountId).toBe("***-***-*******-002");
  });
});
