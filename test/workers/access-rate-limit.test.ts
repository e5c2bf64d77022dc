/**
 * A key's rate-limit budget is spent only by requests that prove they hold
 * it: junk keys (malformed, or a real key's id with a wrong secret) spend a
 * budget of their IP, so they can never lock a real key out.
 *
 * The Worker runs here with the small limiters of vitest.config.ts (20 a
 * minute) in place of its own (1,000): the same code, a lockout in 20 calls.
 */
import { env } from "cloudflare:workers";
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import worker from "../../src/worker.ts";
import { ADMIN_KEY, postJson } from "./helpers.ts";

const LIMIT = 20;
const small = env as unknown as { SMALL_IP_RATE_LIMIT: RateLimit; SMALL_KEY_RATE_LIMIT: RateLimit };
const limitedEnv = new Proxy(env, {
  get: (target, prop) =>
    prop === "IP_RATE_LIMIT" ? small.SMALL_IP_RATE_LIMIT : prop === "KEY_RATE_LIMIT" ? small.SMALL_KEY_RATE_LIMIT : Reflect.get(target, prop),
});

/** GET an admin route through the Worker with the small limiters, with `key`, from `ip`; its status and error code. */
async function get(key: string, ip: string): Promise<{ status: number; code: string | undefined; scope: string | undefined }> {
  const ctx = createExecutionContext();
  const res = await worker.fetch(
    new Request("http://runtime.test/api/admin/keys", { headers: { "x-api-key": key, "cf-connecting-ip": ip } }) as Request<unknown, IncomingRequestCfProperties>,
    limitedEnv,
    ctx,
  );
  await waitOnExecutionContext(ctx);
  const body = await res.json<{ error?: { code: string; details?: { scope?: string } } }>();
  return { status: res.status, code: body.error?.code, scope: body.error?.details?.scope };
}

async function flood(key: string, ip: string, count: number) {
  const out = [];
  for (let i = 0; i < count; i++) out.push(await get(key, ip));
  return out;
}

describe("rate limits by verified identity", () => {
  it("junk keys do not lock out the bootstrap admin key", async () => {
    const junk = await flood("not-a-key-at-all", "198.51.100.1", LIMIT + 1);
    expect(junk.slice(0, LIMIT).every((r) => r.status === 401)).toBe(true);
    expect(junk.at(-1)).toMatchObject({ status: 429, code: "rate_limited" });
    expect((await get(ADMIN_KEY, "198.51.100.2")).status).toBe(200);
  });

  it("a real key's id with a junk secret does not lock out that key", async () => {
    const created = await (await postJson("/api/admin/keys", { role: "admin", label: "victim" })).json<{ id: string; key: string }>();
    const forged = `fxk_${created.id}_${"x".repeat(30)}`;
    const junk = await flood(forged, "198.51.100.3", LIMIT + 1);
    expect(junk[0]!.status).toBe(401);
    expect(junk.at(-1)).toMatchObject({ status: 429, code: "rate_limited" });
    expect((await get(created.key, "198.51.100.4")).status).toBe(200);
  });

  it("junk keys from one IP spend that IP's budgets, not another IP's", async () => {
    await flood("junk-from-a", "198.51.100.5", LIMIT);
    expect((await get("junk-from-a", "198.51.100.5")).status).toBe(429);
    expect((await get("junk-from-b", "198.51.100.6")).status).toBe(401);
  });

  it("a verified key keeps a budget of its own, across IPs", async () => {
    const created = await (await postJson("/api/admin/keys", { role: "admin", label: "busy" })).json<{ id: string; key: string }>();
    for (let i = 0; i < LIMIT; i++) expect((await get(created.key, `198.51.100.${100 + i}`)).status).toBe(200);
    expect(await get(created.key, "198.51.100.200")).toMatchObject({ status: 429, code: "rate_limited", scope: "key" });
    // Its holder's budget is its own: the bootstrap key is still served.
    expect((await get(ADMIN_KEY, "198.51.100.201")).status).toBe(200);
  });
});
