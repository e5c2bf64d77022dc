/**
 * End to end against the real runtime as `npm start` runs it (production
 * bundle on workerd through Miniflare, SQLite Durable Objects persisted to a
 * state folder), driven by the SDK over real HTTP and WebSockets from Node 20.
 */
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { getInstrument } from "../../src/domain/instruments.ts";
import { toDecimal } from "../../src/domain/price.ts";
import { bidAskBarToCandle, isHeaderLine, parseBidAskBar, parseIsoTick } from "../../src/ingest/history-formats.ts";
import { readLines } from "../../src/ingest/read-lines.ts";
import { parseZone } from "../../src/ingest/time-zone.ts";
import { connectPair, FxClient, type MessageOf } from "../../src/sdk/node.ts";
import type { WireCandle } from "../../schemas/candle.ts";
import type { WireTick } from "../../schemas/tick.ts";
import { startRuntime, type Runtime } from "../../scripts/runtime.ts";
import { parseArgs, postTicks, replay } from "../../scripts/replay.ts";
import { keysCli } from "../../scripts/keys.ts";

const DATA = path.resolve(import.meta.dirname, "../../../shared/data");
const OANDA_TICKS = path.join(DATA, "ticks/lean_oanda_EURUSD_ticks_20140501-20140515.csv.gz");
const OANDA_BARS = path.join(DATA, "bars_bidask/lean_oanda_EURUSD_M1_bidask_15days_2014-2018.csv.gz");
const HISTDATA_M1 = path.join(DATA, "m1_histdata/DAT_ASCII_EURUSD_M1_2018.csv.gz");
const hasData = existsSync(OANDA_TICKS) && existsSync(OANDA_BARS) && existsSync(HISTDATA_M1);
if (!hasData) console.warn(`runtime-e2e: real-data test skipped, no data at ${DATA}`);

/** Bootstrap admin key of every runtime started here (the ADMIN_API_KEY secret). */
const ADMIN_KEY = "e2e-admin-key";

let stateDir: string;
let runtime: Runtime;
let client: FxClient;

beforeAll(async () => {
  stateDir = await mkdtemp(path.join(tmpdir(), "fxrt-e2e-"));
  runtime = await startRuntime({ port: 0, stateDir, vars: { FEED: "off", ADMIN_API_KEY: ADMIN_KEY } });
  client = new FxClient(runtime.url, ADMIN_KEY);
});

afterAll(async () => {
  await runtime?.stop();
  await rm(stateDir, { recursive: true, force: true });
});

describe("runtime over HTTP and WebSocket", () => {
  it("streams snapshot, ticks, candle updates and closes to an SDK client on Node", async () => {
    const room = connectPair({ url: runtime.url, pair: "USD_JPY", timeframes: ["1m"], reconnect: false });
    const invalid: unknown[] = [];
    room.onInvalid((raw) => invalid.push(raw));
    try {
      const snapshot = await room.next("snapshot");
      expect(snapshot).toMatchObject({ pair: "USD_JPY", tick: null, timeframes: [{ tf: "1m", candles: [] }] });

      const minute = Math.floor(Date.now() / 60_000) * 60_000 - 120_000;
      const closes: MessageOf<"candle">[] = [];
      room.on("candle", (m) => closes.push(m));
      const firstTick = room.next("tick");
      expect(await client.postTicks("USD_JPY", [{ ts: minute + 1_000, bid: 151.201, ask: 151.213 }])).toEqual({ accepted: 1, rejected: [] });
      expect(await firstTick).toMatchObject({ pair: "USD_JPY", ts: minute + 1_000, bid: 151.201, ask: 151.213, merged: 1 });

      await client.postTicks("USD_JPY", [
        { ts: minute + 20_000, bid: 151.251, ask: 151.262 },
        { ts: minute + 61_000, bid: 151.231, ask: 151.24 },
      ]);
      await expect.poll(() => closes.length, { timeout: 3_000 }).toBeGreaterThanOrEqual(1);
      expect(closes[0]).toMatchObject({
        tf: "1m",
        candle: { t: minute, n: 2, complete: true, bid: { o: 151.201, h: 151.251, l: 151.201, c: 151.251 } },
      });
      expect(closes[0]?.indicators).toBeDefined();
      expect(invalid).toEqual([]);
    } finally {
      room.close();
    }
  });

  it("feeds ticks over a room socket with the SDK: answered to the feed, broadcast to watchers; refused without a trader key", async () => {
    const feed = connectPair({ url: runtime.url, pair: "EUR_JPY", apiKey: ADMIN_KEY, reconnect: false });
    const watcher = connectPair({ url: runtime.url, pair: "EUR_JPY", reconnect: false });
    try {
      await Promise.all([feed.next("snapshot"), watcher.next("snapshot")]);
      const t = Date.now() - 1_000;
      const seen = watcher.next("tick");
      expect(await feed.sendTicks([{ ts: t, bid: 163.201, ask: 163.215 }])).toEqual({ accepted: 1, rejected: [] });
      expect(await seen).toMatchObject({ pair: "EUR_JPY", ts: t, bid: 163.201, ask: 163.215 });
      expect(await feed.sendTicks([{ ts: t - 1, bid: 163.2, ask: 163.21 }])).toEqual({ accepted: 0, rejected: [{ index: 0, reason: { type: "out_of_order", ts: t - 1, lastTs: t } }] });
      // The watcher has no key: market data yes, feeding no; nothing stored.
      await expect(watcher.sendTicks([{ ts: t + 1, bid: 163.3, ask: 163.31 }])).rejects.toThrow(/^forbidden/);
      expect((await client.request<{ lastTick: WireTick | null }>("GET", "/api/pairs/EUR_JPY")).lastTick).toMatchObject({ ts: t });
    } finally {
      feed.close();
      watcher.close();
    }
  });

  it("answers bad requests with the shared error shape", async () => {
    await expect(client.candles("XXX_YYY")).rejects.toMatchObject({ status: 404, code: "unknown_pair" });
    await expect(client.postTicks("EUR_USD", [])).rejects.toMatchObject({ status: 400, code: "invalid_ticks" });
  });
});

describe.skipIf(!hasData)("real ticks through the pair actor", () => {
  it("builds the published OANDA 1-minute bid/ask bars exactly (2014-05-01..15)", async () => {
    const eur = getInstrument("EUR_USD");
    const utc = parseZone("UTC");
    let batch: WireTick[] = [];
    let accepted = 0;
    let rejected = 0;
    let lineNo = 0;
    const flush = async () => {
      const r = await client.postTicks("EUR_USD", batch);
      accepted += r.accepted;
      rejected += r.rejected.length;
      batch = [];
    };
    for await (const line of readLines(OANDA_TICKS)) {
      lineNo++;
      if (isHeaderLine(line)) continue;
      const q = parseIsoTick(line, lineNo, utc);
      if (!q.ok) throw new Error(q.error.reason);
      batch.push(q.value);
      if (batch.length === 1000) await flush();
    }
    if (batch.length) await flush();
    expect(accepted).toBe(532_903);
    expect(rejected).toBe(0);

    const reference: WireCandle[] = [];
    lineNo = 0;
    for await (const line of readLines(OANDA_BARS)) {
      lineNo++;
      if (isHeaderLine(line)) continue;
      const b = parseBidAskBar(line, lineNo, utc);
      if (!b.ok) throw new Error(b.error.reason);
      if (b.value.ts >= Date.UTC(2015, 0, 1)) continue;
      const c = bidAskBarToCandle(b.value, eur);
      const d = (p: number) => toDecimal(p, eur);
      reference.push({ t: c.t, bid: { o: d(c.bo), h: d(c.bh), l: d(c.bl), c: d(c.bc) }, ask: { o: d(c.ao), h: d(c.ah), l: d(c.al), c: d(c.ac) }, n: 0, complete: true });
    }
    expect(reference).toHaveLength(15_366);

    const built: WireCandle[] = [];
    let from = Date.UTC(2014, 4, 1);
    for (;;) {
      const page = await client.candles("EUR_USD", { tf: "1m", from, to: Date.UTC(2015, 0, 1), limit: 5000 });
      built.push(...page.candles);
      if (page.candles.length < 5000) break;
      from = page.candles.at(-1)!.t + 60_000;
    }
    expect(built).toHaveLength(reference.length);
    const strip = (c: WireCandle) => ({ t: c.t, bid: c.bid, ask: c.ask });
    expect(built.map(strip)).toEqual(reference.map(strip));
    expect(built.reduce((s, c) => s + c.n, 0)).toBe(532_903);
  });

  it("replays a histdata M1 file into the pair's room (bars become ticks, candles close live)", async () => {
    const room = connectPair({ url: runtime.url, pair: "EUR_USD", timeframes: ["1m", "1h"], snapshotCandles: 0, reconnect: false });
    const closes: MessageOf<"candle">[] = [];
    room.on("candle", (m) => closes.push(m));
    try {
      await room.next("snapshot");
      const options = parseArgs([HISTDATA_M1, "--pair", "EUR_USD", "--tz", "America/New_York", "--speed", "max", "--limit", "2000", "--url", runtime.url]);
      const summary = await replay(options, {
        send: (ticks) => postTicks(runtime.url, "EUR_USD", ticks, ADMIN_KEY),
        nowMs: () => performance.now(),
        sleepMs: (ms) => new Promise((r) => setTimeout(r, ms)),
        log: () => {},
        stopped: () => false,
      });
      expect(summary).toMatchObject({ sent: 2000, accepted: 2000, rejected: 0, badRows: 0 });
      // 2018-01-01 17:00 New York = 22:00 UTC: the first bar of the file.
      expect(summary.firstTs).toBe("2018-01-01T22:00:00.000Z");
      // 500 bars: 499 closed by the next bar's ticks, the last by the alarm (its close
      // tick is at :59.999, so the data clock passes the minute's end at once).
      const closed2018 = () => closes.filter((c) => c.tf === "1m" && c.candle.t >= Date.UTC(2018, 0, 1)).map((c) => c.candle.t);
      await expect.poll(() => closed2018().length, { timeout: 5_000 }).toBe(500);
      expect(closes.some((c) => c.tf === "1h")).toBe(true);
      const first = closes.find((c) => c.tf === "1m" && c.candle.t >= Date.UTC(2018, 0, 1))!;
      // First line of the file: 20180101 170000;1.200370;1.201000;1.200370;1.201000;0
      expect(first.candle).toMatchObject({ t: Date.UTC(2018, 0, 1, 22), bid: { o: 1.20037, h: 1.201, l: 1.20037, c: 1.201 }, n: 4 });
    } finally {
      room.close();
    }
  });
});

describe("persistence across a runtime restart", () => {
  it("serves the same candles after the process restarts on the same state folder", async () => {
    const before = await client.candles("USD_JPY", { tf: "1m", limit: 10 });
    expect(before.candles.length).toBeGreaterThan(0);
    await runtime.stop();
    runtime = await startRuntime({ port: 0, stateDir, vars: { FEED: "off", ADMIN_API_KEY: ADMIN_KEY } });
    client = new FxClient(runtime.url, ADMIN_KEY);
    expect(await client.candles("USD_JPY", { tf: "1m", limit: 10 })).toEqual(before);
  });
});

describe("synthetic feed and room limits", () => {
  it("drives every configured pair once woken, and refuses connections past the room limit", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "fxrt-feed-"));
    const fed = await startRuntime({
      port: 0,
      stateDir: dir,
      vars: { FEED: "synthetic", FEED_HOURS: "always", PAIRS: "EUR_USD,GBP_JPY", ROOM_MAX_CONNECTIONS: "2", ADMIN_API_KEY: ADMIN_KEY },
    });
    try {
      await fed.triggerScheduled();
      const c = new FxClient(fed.url, ADMIN_KEY);
      await expect
        .poll(async () => (await c.pairs()).pairs.every((p) => p.lastTick !== null), { timeout: 5_000, interval: 200 })
        .toBe(true);
      const room = connectPair({ url: fed.url, pair: "GBP_JPY", reconnect: false });
      try {
        await room.next("snapshot");
        const tick = await room.next("tick", 5_000);
        expect(tick.bid).toBeLessThan(tick.ask);

        const second = connectPair({ url: fed.url, pair: "GBP_JPY", reconnect: false });
        await second.next("snapshot");
        const third = connectPair({ url: fed.url, pair: "GBP_JPY", reconnect: false });
        expect(await third.next("error")).toMatchObject({ code: "room_full", details: { limit: 2 } });
        third.close();
        // A closed connection gives its place back, and the room keeps broadcasting to the rest.
        second.close();
        await expect.poll(async () => (await c.request<{ connections: number }>("GET", "/api/pairs/GBP_JPY")).connections, { timeout: 5_000, interval: 100 }).toBe(1);
        const fourth = connectPair({ url: fed.url, pair: "GBP_JPY", reconnect: false });
        try {
          await fourth.next("snapshot");
          expect((await fourth.next("tick", 5_000)).pair).toBe("GBP_JPY");
          expect((await room.next("tick", 5_000)).pair).toBe("GBP_JPY");
        } finally {
          fourth.close();
        }
      } finally {
        room.close();
      }
    } finally {
      await fed.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("retention", () => {
  it("keeps at most the configured ticks and candles per timeframe", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "fxrt-retention-"));
    const small = await startRuntime({ port: 0, stateDir: dir, vars: { FEED: "off", TICK_RETENTION_COUNT: "1000", CANDLE_RETENTION: "5m=10", ADMIN_API_KEY: ADMIN_KEY } });
    try {
      const c = new FxClient(small.url, ADMIN_KEY);
      const start = Date.UTC(2020, 0, 6, 0, 0);
      // 3,000 ticks, one every 10 s: 500 minutes, 100 five-minute candles.
      for (let batch = 0; batch < 3; batch++) {
        const ticks = Array.from({ length: 1000 }, (_, i) => {
          const n = batch * 1000 + i;
          return { ts: start + n * 10_000, bid: 1.1 + (n % 50) / 100_000, ask: 1.1001 + (n % 50) / 100_000 };
        });
        expect((await c.postTicks("USD_CHF", ticks)).accepted).toBe(1000);
      }
      const status = (await (await fetch(`${small.url}/api/pairs/USD_CHF`)).json()) as { ticksStored: number; candlesStored: Record<string, number> };
      // Pruning is amortised (once per 1% of the limit, at least 100 ticks / 10 candles).
      expect(status.ticksStored).toBeGreaterThanOrEqual(1000);
      expect(status.ticksStored).toBeLessThanOrEqual(1100);
      expect(status.candlesStored["5m"]).toBeGreaterThanOrEqual(10);
      expect(status.candlesStored["5m"]).toBeLessThanOrEqual(20);
      expect(status.candlesStored["1m"]).toBe(499);
      // The newest candles are the ones kept.
      const fiveMin = await c.candles("USD_CHF", { tf: "5m", limit: 100 });
      expect(fiveMin.candles.at(-1)!.t).toBe(start + 99 * 300_000);
    } finally {
      await small.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("advisor inside the pair actor", () => {
  it("vetoes a strategy order, and a slow advisor falls back to the rule-based order", async () => {
    const { createServer } = await import("node:http");
    let mode: "veto" | "slow" = "veto";
    const advisor = createServer((req, res) => {
      req.resume();
      req.on("end", () => {
        if (mode === "veto") res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ action: "veto", reason: "event risk" }));
        else setTimeout(() => res.writeHead(200).end(JSON.stringify({ action: "veto" })), 500);
      });
    });
    await new Promise<void>((r) => advisor.listen(0, "127.0.0.1", r));
    const port = (advisor.address() as { port: number }).port;
    const dir = await mkdtemp(path.join(tmpdir(), "fxrt-advisor-"));
    const rt = await startRuntime({ port: 0, stateDir: dir, vars: { FEED: "off", ADVISOR_URL: `http://127.0.0.1:${port}/advise`, ADVISOR_TIMEOUT_MS: "100", ADMIN_API_KEY: ADMIN_KEY } });
    const put = (p: string, body: unknown) =>
      fetch(`${rt.url}${p}`, { method: "PUT", headers: { "content-type": "application/json", "x-api-key": ADMIN_KEY }, body: JSON.stringify(body) });
    try {
      await put("/api/admin/pairs/AUD_USD/risk", { limits: { stopLossRequired: "never", weekendGuard: false, stalePriceMs: 86_400_000 } });
      await put("/api/admin/pairs/AUD_USD/strategies", { strategies: [{ id: "ref", kind: "sma-cross", units: 10_000, params: { timeframe: "1m", fast: 2, slow: 3 } }] });
      const c = new FxClient(rt.url, ADMIN_KEY);
      const start = Math.floor(Date.now() / 60_000) * 60_000 - 30 * 60_000;
      const bids = [0.661, 0.66, 0.659, 0.658, 0.66, 0.6605, 0.66, 0.658, 0.655];
      const ticks = bids.map((bid, i) => ({ ts: start + i * 60_000 + 1_000, bid, ask: Math.round((bid + 0.0001) * 1e5) / 1e5 }));
      await c.postTicks("AUD_USD", ticks.slice(0, 7)); // buy signal at minute 5: vetoed
      mode = "slow";
      await c.postTicks("AUD_USD", ticks.slice(7)); // sell signal at minute 7: advisor too slow
      const orders = ((await (await fetch(`${rt.url}/api/pairs/AUD_USD/orders`, { headers: { "x-api-key": ADMIN_KEY } })).json()) as { orders: Record<string, any>[] }).orders.reverse();
      expect(orders.map((o) => [o.side, o.status])).toEqual([["buy", "rejected"], ["sell", "filled"]]);
      expect(orders[0]).toMatchObject({ rejectReason: "advisor_veto: event risk", advice: { source: "advisor", action: "veto" } });
      expect(orders[1]!.advice).toMatchObject({ source: "fallback", action: "accept", failure: "timeout" });
      expect(orders[1]!.advice.ms).toBeLessThan(400);
    } finally {
      await rt.stop();
      advisor.closeAllConnections();
      await new Promise((r) => advisor.close(r));
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("rate limits", () => {
  it("answers 429 with Retry-After once an address spends its 1000 requests a minute, before any key check", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "fxrt-ratelimit-"));
    const rt = await startRuntime({ port: 0, stateDir: dir, vars: { FEED: "off", ADMIN_API_KEY: ADMIN_KEY } });
    try {
      let first429: Response | null = null;
      let n = 0;
      // Windows are fixed minutes: a flood that straddles a minute boundary needs up to two budgets.
      for (; n < 2100 && !first429; n++) {
        const res = await fetch(`${rt.url}/api/pairs/EUR_USD/orders`, { headers: { "x-api-key": "fxk_aaaaaaaaaaaa_guessing-a-key-here-000" } });
        if (res.status === 429) first429 = res;
        else {
          expect(res.status).toBe(401);
          await res.arrayBuffer();
        }
      }
      expect(first429).not.toBeNull();
      expect(n).toBeGreaterThan(1000);
      const retry = Number(first429!.headers.get("retry-after"));
      expect(retry).toBeGreaterThanOrEqual(1);
      expect(retry).toBeLessThanOrEqual(60);
      expect(await first429!.json()).toMatchObject({ error: { code: "rate_limited" } });
      // Even the right key is throttled from this address now.
      expect((await fetch(`${rt.url}/api/health`, { headers: { "x-api-key": ADMIN_KEY } })).status).toBe(429);
    } finally {
      await rt.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("keys CLI", () => {
  it("creates, lists and revokes keys against the running runtime; the new key works until revoked", async () => {
    const lines: string[] = [];
    const env = { FXRT_URL: runtime.url, FXRT_API_KEY: ADMIN_KEY };
    expect(await keysCli(["create", "--role", "trader", "--label", "desk"], env, (l) => lines.push(l))).toBe(0);
    const key = lines[1]!;
    const id = /created ([0-9a-f]{12})/.exec(lines[0]!)![1]!;
    expect(key).toMatch(/^fxk_/);
    expect((await new FxClient(runtime.url, key).postTicks("NZD_USD", [{ ts: 1, bid: 1, ask: 1 }]).catch((e) => e)).code).toBe("unknown_pair");
    lines.length = 0;
    expect(await keysCli(["list"], env, (l) => lines.push(l))).toBe(0);
    expect(lines.some((l) => l.startsWith(id) && l.includes("trader") && l.includes("active") && l.includes("desk"))).toBe(true);
    expect(await keysCli(["revoke", id, "--json"], env, (l) => lines.push(l))).toBe(0);
    expect(JSON.parse(lines.at(-1)!)).toMatchObject({ id, revokedAt: expect.any(Number) });
    await expect(new FxClient(runtime.url, key).postTicks("EUR_USD", [{ ts: 1, bid: 1, ask: 1 }])).rejects.toMatchObject({ status: 401 });
    expect(await keysCli(["create", "--role", "god"], env, () => {})).toBe(2);
    expect(await keysCli(["list"], { FXRT_URL: runtime.url, FXRT_API_KEY: "wrong" }, () => {})).toBe(1);
  });
});

describe("alerts", () => {
  it("raises an alert from the rules, shows it in the portfolio, delivers it to the webhook once (with a retry)", async () => {
    const { createServer } = await import("node:http");
    const received: { text: string; alert: { id: string } }[] = [];
    let calls = 0;
    const hook = createServer((req, res) => {
      let body = "";
      req.on("data", (c) => (body += c));
      req.on("end", () => {
        calls++;
        if (calls === 1) return res.writeHead(503).end(); // the first attempt fails: retried
        received.push(JSON.parse(body));
        res.writeHead(200).end("ok");
      });
    });
    await new Promise<void>((r) => hook.listen(0, "127.0.0.1", r));
    const dir = await mkdtemp(path.join(tmpdir(), "fxrt-alerts-"));
    const rt = await startRuntime({
      port: 0, stateDir: dir,
      vars: { FEED: "off", ADMIN_API_KEY: ADMIN_KEY, ALERT_WEBHOOK_URL: `http://127.0.0.1:${(hook.address() as { port: number }).port}/hook` },
    });
    try {
      const c = new FxClient(rt.url, ADMIN_KEY);
      await c.postTicks("EUR_USD", [{ ts: Date.now() - 1_000, bid: 1.1, ask: 1.1001 }]);
      // Six refused orders in a minute (too large, or the weekend): over the limit of 5.
      for (let i = 0; i < 6; i++) {
        const res = await fetch(`${rt.url}/api/trade/execute`, {
          method: "POST", headers: { "content-type": "application/json", "x-api-key": ADMIN_KEY },
          body: JSON.stringify({ pair: "EUR_USD", side: "buy", units: 900_000 }),
        });
        expect(res.status).toBe(422);
      }
      await rt.triggerScheduled();
      await expect.poll(() => received.map((r) => r.alert.id).filter((id) => id === "failed_orders:EUR_USD"), { timeout: 10_000, interval: 100 }).toEqual(["failed_orders:EUR_USD"]);
      expect(received.find((r) => r.alert.id === "failed_orders:EUR_USD")!.text).toMatch(/EUR_USD: 6 refused orders/);
      const portfolio = (await (await fetch(`${rt.url}/api/admin/portfolio`, { headers: { "x-api-key": ADMIN_KEY } })).json()) as { alerts: { alert: { id: string }; delivered: boolean }[] };
      expect(portfolio.alerts.find((a) => a.alert.id === "failed_orders:EUR_USD")).toMatchObject({ delivered: true });
      // Still active a minute later: not delivered again.
      await rt.triggerScheduled();
      await new Promise((r) => setTimeout(r, 500));
      expect(received.filter((r) => r.alert.id === "failed_orders:EUR_USD")).toHaveLength(1);
    } finally {
      await rt.stop();
      hook.closeAllConnections();
      await new Promise((r) => hook.close(r));
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("MARKET_DATA_PUBLIC=false", () => {
  it("puts market data and rooms behind a key", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "fxrt-private-"));
    const rt = await startRuntime({ port: 0, stateDir: dir, vars: { FEED: "off", ADMIN_API_KEY: ADMIN_KEY, MARKET_DATA_PUBLIC: "false" } });
    try {
      expect((await fetch(`${rt.url}/api/health`)).status).toBe(200);
      expect((await fetch(`${rt.url}/api/pairs`)).status).toBe(401);
      expect((await fetch(`${rt.url}/api/pairs/EUR_USD/candles`)).status).toBe(401);
      expect((await fetch(`${rt.url}/api/pairs`, { headers: { "x-api-key": ADMIN_KEY } })).status).toBe(200);
      const anon = connectPair({ url: rt.url, pair: "EUR_USD", reconnect: false });
      const closed = new Promise<boolean>((resolve) => {
        anon.socket.addEventListener("error", () => resolve(true));
        anon.socket.addEventListener("close", () => resolve(true));
        anon.on("snapshot", () => resolve(false));
      });
      expect(await closed).toBe(true);
      anon.close();
      const keyed = connectPair({ url: rt.url, pair: "EUR_USD", reconnect: false, apiKey: ADMIN_KEY });
      expect((await keyed.next("snapshot")).pair).toBe("EUR_USD");
      keyed.close();
    } finally {
      await rt.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
