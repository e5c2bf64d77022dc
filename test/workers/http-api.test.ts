import { describe, expect, it } from "vitest";
import * as v from "valibot";
import { ErrorBody } from "../../schemas/common.ts";
import { TICK_BATCH_MAX } from "../../schemas/tick.ts";
import { call, postJson } from "./helpers.ts";

async function expectError(res: Response, status: number, code: string) {
  expect(res.status).toBe(status);
  const body = await res.json();
  expect(v.safeParse(ErrorBody, body).success).toBe(true);
  expect((body as ErrorBody).error.code).toBe(code);
  return body as ErrorBody;
}

describe("HTTP API", () => {
  it("GET /api/health and /api/pairs", async () => {
    const health = await call("/api/health");
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({ status: "ok", pairs: 8 });
    const pairs = (await (await call("/api/pairs")).json()) as { pairs: { pair: string; displayPrecision: number }[] };
    expect(pairs.pairs.map((p) => p.pair)).toContain("USD_JPY");
    expect(pairs.pairs.find((p) => p.pair === "USD_JPY")?.displayPrecision).toBe(3);
  });

  it("unknown pairs and routes get 404 with the shared error shape", async () => {
    const body = await expectError(await call("/api/pairs/ABC_DEF/candles"), 404, "unknown_pair");
    expect((body.error.details as { pairs: string[] }).pairs).toContain("EUR_USD");
    await expectError(await postJson("/api/pairs/ABC_DEF/ticks", { ticks: [] }), 404, "unknown_pair");
    await expectError(await call("/api/nope"), 404, "not_found");
  });

  it("POST ticks answers accepted and typed rejections", async () => {
    const ts = Date.now() - 1_000;
    const res = await postJson("/api/pairs/AUD_USD/ticks", {
      ticks: [
        { ts, bid: 0.65501, ask: 0.65511 },
        { ts: ts + 1, bid: 0.656, ask: 0.655 },
      ],
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ accepted: 1, rejected: [{ index: 1, reason: { type: "crossed", bid: 0.656, ask: 0.655 } }] });
  });

  it("refuses malformed bodies without changing state", async () => {
    const before = (await (await call("/api/pairs/USD_CHF")).json()) as { ticksStored: number };
    await expectError(
      await call("/api/pairs/USD_CHF/ticks", { method: "POST", headers: { "content-type": "application/json" }, body: "{oops" }),
      400,
      "invalid_json",
    );
    await expectError(await postJson("/api/pairs/USD_CHF/ticks", { ticks: [{ ts: "yesterday", bid: 1, ask: 1 }] }), 400, "invalid_ticks");
    await expectError(await postJson("/api/pairs/USD_CHF/ticks", { ticks: [] }), 400, "invalid_ticks");
    await expectError(await postJson("/api/pairs/USD_CHF/ticks", [1, 2]), 400, "invalid_ticks");
    await expectError(await call("/api/pairs/USD_CHF/ticks", { method: "POST", body: "{}" }), 415, "unsupported_media_type");
    const after = (await (await call("/api/pairs/USD_CHF")).json()) as { ticksStored: number };
    expect(after.ticksStored).toBe(before.ticksStored);
  });

  it("refuses oversized batches and bodies with 413 stating the limit", async () => {
    const ts = Date.now() - 10_000;
    const ticks = Array.from({ length: TICK_BATCH_MAX + 1 }, (_, i) => ({ ts: ts + i, bid: 1.1, ask: 1.1001 }));
    const body = await expectError(await postJson("/api/pairs/EUR_USD/ticks", { ticks }), 413, "batch_too_large");
    expect(body.error.details).toEqual({ maxTicks: TICK_BATCH_MAX, received: TICK_BATCH_MAX + 1 });
    const huge = JSON.stringify({ ticks: [{ ts, bid: 1.1, ask: 1.1001 }], pad: "x".repeat(300_000) });
    await expectError(
      await call("/api/pairs/EUR_USD/ticks", { method: "POST", headers: { "content-type": "application/json" }, body: huge }),
      413,
      "body_too_large",
    );
  });

  it("GET candles validates its query and filters by time", async () => {
    await expectError(await call("/api/pairs/EUR_USD/candles?tf=3m"), 400, "invalid_query");
    await expectError(await call("/api/pairs/EUR_USD/candles?limit=0"), 400, "invalid_query");
    await expectError(await call("/api/pairs/EUR_USD/candles?limit=99999"), 400, "invalid_query");
    await expectError(await call("/api/pairs/EUR_USD/candles?from=notadate"), 400, "invalid_query");

    const start = Date.UTC(2020, 0, 8, 12, 0, 0);
    const ticks = Array.from({ length: 10 }, (_, i) => ({ ts: start + i * 60_000 + 1_000, bid: 1.11 + i / 10_000, ask: 1.1101 + i / 10_000 }));
    expect(await (await postJson("/api/pairs/GBP_JPY/ticks", { ticks: ticks.map((t) => ({ ...t, bid: 140 + (t.bid - 1.11) * 100, ask: 140.01 + (t.bid - 1.11) * 100 })) })).json()).toMatchObject({ accepted: 10 });
    const iso = await (await call(`/api/pairs/GBP_JPY/candles?tf=1m&from=2020-01-08T12:03:00Z&to=${start + 6 * 60_000}`)).json() as { candles: { t: number }[] };
    expect(iso.candles.map((c) => (c.t - start) / 60_000)).toEqual([3, 4, 5]);
    const latest = await (await call("/api/pairs/GBP_JPY/candles?tf=1m&limit=2")).json() as { candles: { t: number; complete: boolean }[] };
    expect(latest.candles.map((c) => [(c.t - start) / 60_000, c.complete])).toEqual([[8, true], [9, false]]);
    const first = await (await call(`/api/pairs/GBP_JPY/candles?tf=1m&from=${start}&limit=2`)).json() as { candles: { t: number }[] };
    expect(first.candles.map((c) => (c.t - start) / 60_000)).toEqual([0, 1]);
  });
});

describe("metrics", () => {
  it("reports per-route counts and per-pair latencies as JSON and in the Prometheus format", async () => {
    await postJson("/api/pairs/EUR_JPY/ticks", { ticks: [{ ts: Date.now() - 1000, bid: 160.1, ask: 160.12 }] });
    await call("/api/pairs/EUR_JPY/candles?tf=7m");
    const m = (await (await call("/api/metrics")).json()) as {
      routes: { route: string; requests: number; clientErrors: number; errorRate: number }[];
      pairs: { pair: string; latencyMs: { ingest: { count: number; p50: number | null } } }[];
    };
    const ticks = m.routes.find((r) => r.route === "POST /api/pairs/:pair/ticks")!;
    expect(ticks.requests).toBeGreaterThanOrEqual(1);
    const candles = m.routes.find((r) => r.route === "GET /api/pairs/:pair/candles")!;
    expect(candles.clientErrors).toBeGreaterThanOrEqual(1);
    expect(candles.errorRate).toBeGreaterThan(0);
    const pair = m.pairs.find((p) => p.pair === "EUR_JPY")!;
    expect(pair.latencyMs.ingest.count).toBeGreaterThanOrEqual(1);
    const text = await (await call("/api/metrics?format=prometheus")).text();
    expect(text).toMatch(/^fxrt_requests_total\{route="POST \/api\/pairs\/:pair\/ticks"\} \d+$/m);
    expect(text).toMatch(/^fxrt_room_connections\{pair="EUR_JPY"\} \d+$/m);
    expect(text).toMatch(/^fxrt_trading_halted 0$/m);
  });
});
