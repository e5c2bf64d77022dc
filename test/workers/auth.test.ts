import { beforeAll, describe, expect, it } from "vitest";
import { ROUTES } from "../../src/http/routes.ts";
import { call, openRoom, postJson } from "./helpers.ts";

const keys: Record<"viewer" | "trader" | "admin", string> = { viewer: "", trader: "", admin: "" };

beforeAll(async () => {
  for (const role of ["viewer", "trader", "admin"] as const) {
    const res = await postJson("/api/admin/keys", { role, label: `test ${role}` });
    expect(res.status).toBe(201);
    keys[role] = ((await res.json()) as { key: string }).key;
  }
});

const concrete = (path: string) => path.replace(":pair", "EUR_USD").replace(":id", "000000000000");
const send = (route: (typeof ROUTES)[number], key: string | null) =>
  call(concrete(route.path), { method: route.method.toUpperCase(), ...(route.method === "get" ? {} : { headers: { "content-type": "application/json" }, body: "{}" }) }, key);

describe("every route declares its role and enforces it", () => {
  it("refuses a missing or wrong key with 401 and an under-privileged key with 403", async () => {
    let checked = 0;
    for (const route of ROUTES) {
      if (route.access === "public" || route.access === "market") continue;
      const none = await send(route, null);
      expect([route.path, none.status]).toEqual([route.path, 401]);
      expect(await none.json()).toMatchObject({ error: { code: "unauthenticated" } });
      const wrong = await send(route, "fxk_0123456789ab_not-the-right-secret-at-all");
      expect([route.path, wrong.status]).toEqual([route.path, 401]);
      expect(await wrong.json()).toMatchObject({ error: { code: "invalid_key" } });
      const below = route.access === "viewer" ? [] : route.access === "trader" ? ["viewer"] : ["viewer", "trader"];
      for (const role of below) {
        const res = await send(route, keys[role as "viewer"]);
        expect([route.path, role, res.status]).toEqual([route.path, role, 403]);
      }
      const ok = await send(route, keys[route.access]);
      expect([route.path, [401, 403].includes(ok.status)]).toEqual([route.path, false]);
      checked++;
    }
    expect(checked).toBeGreaterThanOrEqual(12);
  });

  it("serves market data without a key, and public health always", async () => {
    for (const route of ROUTES.filter((r) => r.access === "market" || r.access === "public")) {
      expect([route.path, (await send(route, null)).status]).toEqual([route.path, 200]);
    }
  });

  it("a revoked key stops working and the change is in the audit log", async () => {
    const created = (await (await postJson("/api/admin/keys", { role: "viewer", label: "temp" })).json()) as { id: string; key: string };
    expect((await call("/api/pairs/EUR_USD/orders", {}, created.key)).status).toBe(200);
    expect((await call(`/api/admin/keys/${created.id}`, { method: "DELETE" })).status).toBe(200);
    expect((await call("/api/pairs/EUR_USD/orders", {}, created.key)).status).toBe(401);
    const audit = (await (await call("/api/admin/audit")).json()) as { entries: { action: string; target: string; actor: string }[] };
    expect(audit.entries.slice(0, 2).map((e) => [e.action, e.target, e.actor])).toEqual([
      ["key.revoke", created.id, "key:bootstrap"],
      ["key.create", created.id, "key:bootstrap"],
    ]);
    const list = (await (await call("/api/admin/keys")).json()) as { keys: Record<string, unknown>[] };
    // The secret part (which may itself contain "_"): never listed.
    const secret = created.key.slice(`fxk_${created.id}_`.length);
    expect(created.key).toBe(`fxk_${created.id}_${secret}`);
    expect(secret.length).toBeGreaterThan(20);
    expect(JSON.stringify(list)).not.toContain(secret);
  });

  it("rooms: trading events only reach keyed connections; the signal stream needs a viewer key", async () => {
    expect((await call("/api/signals/realtime", { headers: { Upgrade: "websocket" } }, null)).status).toBe(401);
    const anon = await openRoom("/parties/pair/USD_CHF?tf=1m&limit=0", null);
    const keyed = await openRoom("/parties/pair/USD_CHF?tf=1m&limit=0", keys.viewer);
    await anon.waitFor((f) => f.type === "snapshot");
    await keyed.waitFor((f) => f.type === "snapshot");
    const now = Date.now();
    await postJson("/api/pairs/USD_CHF/ticks", { ticks: [{ ts: now - 1000, bid: 0.9, ask: 0.9001 }] });
    await postJson("/api/trade/execute", { pair: "USD_CHF", side: "buy", units: 1000 });
    await keyed.waitFor((f) => f.type === "fill");
    await anon.waitFor((f) => f.type === "tick");
    expect(anon.frames.some((f) => ["order", "fill", "position", "signal", "risk"].includes(f.type))).toBe(false);
    // A client cannot claim a role through the header the Worker uses.
    const forged = await call("/parties/pair/USD_CHF?tf=1m", { headers: { Upgrade: "websocket", "x-fxrt-role": "admin" } }, null);
    expect(forged.status).toBe(101);
    anon.ws.close();
    keyed.ws.close();
    forged.webSocket?.accept();
    forged.webSocket?.close();
  });
});
