/**
 * Bad input is refused with a 4xx and a machine-readable body, and changes
 * nothing: arrays where objects are expected, bodies that are not UTF-8, and
 * a key in the URL of an HTTP route.
 */
import { describe, expect, it } from "vitest";
import { ADMIN_KEY, call } from "./helpers.ts";

type Json = Record<string, any>;

const send = (method: string, path: string, body: BodyInit) =>
  call(path, { method, headers: { "content-type": "application/json" }, body });

async function expectRefused(res: Response, code: string, path?: string): Promise<void> {
  expect(res.status).toBe(400);
  const body = await res.json<Json>();
  expect(body.error.code).toBe(code);
  if (path !== undefined) expect(body.error.details).toContainEqual({ path, message: "expected an object, received an array" });
}

describe("an array where an object is expected", () => {
  it("PUT /api/admin/limits with [] is refused and keeps the tightened limits", async () => {
    const tight = { maxGrossExposure: 1234, maxNetExposurePerCurrency: 567, maxOpenPositions: 3, maxExposurePerPair: 890, dailyLossLimit: 12, maxDrawdown: 34 };
    expect((await send("PUT", "/api/admin/limits", JSON.stringify(tight))).status).toBe(200);
    await expectRefused(await send("PUT", "/api/admin/limits", "[]"), "invalid_limits", "");
    await expectRefused(await send("PUT", "/api/admin/limits", "[1,2]"), "invalid_limits");
    expect(await (await call("/api/admin/limits")).json()).toEqual(tight);
  });

  it("PUT a pair's risk with {limits: []} or {fillModel: []} is refused and keeps its limits", async () => {
    const path = "/api/admin/pairs/AUD_USD/risk";
    const tight = { maxPositionUnits: 777, maxSpreadPips: 1, maxOrdersPerMinute: 2, stopLossRequired: "always", stalePriceMs: 5_000, weekendGuard: true };
    expect((await send("PUT", path, JSON.stringify({ limits: tight, fillModel: { slippagePips: 1 } }))).status).toBe(200);
    await expectRefused(await send("PUT", path, JSON.stringify({ limits: [] })), "invalid_risk", "limits");
    await expectRefused(await send("PUT", path, JSON.stringify({ fillModel: [] })), "invalid_risk", "fillModel");
    await expectRefused(await send("PUT", path, "[]"), "invalid_risk", "");
    const now = await (await call(path)).json<Json>();
    expect(now.limits).toEqual(tight);
    expect(now.fillModel.slippagePips).toBe(1);
  });

  it("POST /api/admin/backups with [] is refused and starts no backup", async () => {
    const before = await (await call("/api/admin/backups?actor=gatekeeper")).json<Json>();
    await expectRefused(await send("POST", "/api/admin/backups", "[]"), "invalid_backup_request", "");
    const after = await (await call("/api/admin/backups?actor=gatekeeper")).json<Json>();
    expect(after.snapshots).toEqual(before.snapshots);
    expect(after.lastBackupAt).toBe(before.lastBackupAt);
  });

  it("the other object bodies refuse arrays too, at any depth", async () => {
    await expectRefused(await send("POST", "/api/admin/keys", "[]"), "invalid_key_request");
    await expectRefused(await send("POST", "/api/admin/backups/restore", "[]"), "invalid_restore_request");
    await expectRefused(await send("PUT", "/api/admin/pairs/AUD_USD/strategies", JSON.stringify({
      strategies: [{ id: "x", kind: "ema-cross", units: 1000, params: [] }],
    })), "invalid_strategies", "strategies.0.params");
    const keys = await (await call("/api/admin/keys")).json<Json>();
    expect(keys.keys).toEqual([]);
  });
});

describe("a body that is not UTF-8", () => {
  it("is refused, not stored with replacement characters", async () => {
    const head = new TextEncoder().encode('{"role":"viewer","label":"bad ');
    const tail = new TextEncoder().encode('"}');
    const body = new Uint8Array([...head, 0xff, 0xfe, ...tail]);
    const res = await send("POST", "/api/admin/keys", body);
    expect(res.status).toBe(400);
    expect((await res.json<Json>()).error.code).toBe("invalid_utf8");
    const keys = await (await call("/api/admin/keys")).json<Json>();
    expect(keys.keys).toEqual([]);
  });
});

describe("?key= on an HTTP route", () => {
  it("is no key, even with Upgrade: websocket", async () => {
    const res = await call(`/api/admin/keys?key=${ADMIN_KEY}`, { headers: { Upgrade: "websocket" } }, null);
    expect(res.status).toBe(401);
    expect((await res.json<Json>()).error.code).toBe("unauthenticated");
    const create = await call(`/api/admin/keys?key=${ADMIN_KEY}`, {
      method: "POST", headers: { Upgrade: "websocket", "content-type": "application/json" }, body: JSON.stringify({ role: "admin", label: "via url" }),
    }, null);
    expect(create.status).toBe(401);
  });
});
