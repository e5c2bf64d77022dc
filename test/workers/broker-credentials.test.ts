/**
 * Broker credentials at rest: PUT /api/admin/broker/credentials keeps them in
 * the coordinator sealed with AES-GCM under CREDENTIALS_KEY; the token is in
 * no row, no backup, no answer and no audit entry, and opens only with the key.
 */
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { Coordinator } from "../../actors/coordinator.ts";
import { open } from "../../src/security/credential-box.ts";
import { call, postJson } from "./helpers.ts";

const TOKEN = "0123456789abcdef0123456789abcdef-fedcba9876543210fedcba9876543210";
const ACCOUNT = "101-004-7654321-002";

const put = (body: unknown) => call("/api/admin/broker/credentials", { method: "PUT", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });

describe("broker credentials", () => {
  it("are stored sealed: no row, backup, answer or audit entry holds the token, and they open with the key only", async () => {
    const res = await put({ accountId: ACCOUNT, token: TOKEN });
    expect(res.status).toBe(200);
    const answer = await res.text();
    expect(JSON.parse(answer)).toMatchObject({ source: "stored", accountId: "***-***-*******-002" });
    expect(answer).not.toContain(TOKEN);

    const rows = await runInDurableObject(env.Coordinator.getByName("main"), (_: Coordinator, state: DurableObjectState) =>
      state.storage.sql.exec<{ key: string; value: string }>("SELECT key, value FROM coordinator_state").toArray(),
    );
    const dump = JSON.stringify(rows);
    expect(dump).not.toContain(TOKEN);
    expect(dump).not.toContain(ACCOUNT);
    const stored = JSON.parse(rows.find((r) => r.key === "broker_credentials")!.value) as { sealed: string };
    expect(stored.sealed).toMatch(/^v1\.[\w-]+\.[\w-]+$/);
    const key = (env as unknown as { CREDENTIALS_KEY: string }).CREDENTIALS_KEY;
    expect(JSON.parse(await open(stored.sealed, key, "fxrt:broker-credentials:oanda"))).toEqual({ accountId: ACCOUNT, token: TOKEN });
    // Another key, or the sealed text moved to another purpose, does not open.
    await expect(open(stored.sealed, btoa(String.fromCharCode(...new Uint8Array(32).fill(7))), "fxrt:broker-credentials:oanda")).rejects.toThrow(/does not open/);
    await expect(open(stored.sealed, key, "another purpose")).rejects.toThrow(/does not open/);

    // The coordinator's backup carries the sealed form only.
    const backup = await postJson("/api/admin/backups", { actors: ["coordinator"] });
    const [snap] = ((await backup.json()) as { results: { snapshot: string }[] }).results;
    const manifest = await (await env.BACKUPS.get(snap!.snapshot))!.json<{ tables: { chunks: { hash: string }[] }[] }>();
    for (const chunk of manifest.tables.flatMap((t) => t.chunks)) {
      const object = await env.BACKUPS.get(`coordinator/main/chunks/${chunk.hash}`);
      const text = await new Response(object!.body.pipeThrough(new DecompressionStream("gzip"))).text();
      expect(text).not.toContain(TOKEN);
    }

    const audit = await (await call("/api/admin/audit?limit=20")).text();
    expect(audit).toContain("broker.credentials");
    expect(audit).not.toContain(TOKEN);

    const broker = await (await call("/api/admin/broker")).json<Record<string, unknown>>();
    expect(broker).toMatchObject({ broker: "paper", credentials: { source: "stored", accountId: "***-***-*******-002" } });
    expect(JSON.stringify(broker)).not.toContain(TOKEN);
  });

  it("refuses malformed credentials without storing anything", async () => {
    const before = await (await call("/api/admin/broker")).json<{ credentials: unknown }>();
    for (const body of [{ accountId: "nope", token: TOKEN }, { accountId: ACCOUNT, token: "short" }, { accountId: ACCOUNT, token: `${TOKEN} x` }, { accountId: ACCOUNT }, { accountId: ACCOUNT, token: TOKEN, extra: 1 }]) {
      const res = await put(body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(await res.json()).toMatchObject({ error: { code: "invalid_credentials" } });
    }
    expect((await (await call("/api/admin/broker")).json<{ credentials: unknown }>()).credentials).toEqual(before.credentials);
    expect((await put({ accountId: ACCOUNT, token: TOKEN }).then((r) => r.status))).toBe(200);
    // Viewers and traders may not.
    expect((await call("/api/admin/broker/credentials", { method: "PUT", body: "{}" }, null)).status).toBe(401);
  });
});
