/**
 * Fuzzing (fast-check) of every HTTP body and of the room's messages, against
 * the runtime as `npm start` serves it: thousands of invalid inputs per route,
 * each must get a typed 4xx error (`{ error: { code, message } }`), nothing
 * may crash, and nothing may change (a digest of the state readable through
 * the API is the same before and after). Inputs the route's own schema accepts
 * are not sent: those would be valid requests, which may change state.
 */
import { readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import fc from "fast-check";
import * as v from "valibot";
import WebSocket from "ws";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CreateKeyBody } from "../../schemas/auth.ts";
import { BacktestRequest } from "../../schemas/backtest.ts";
import { KillSwitchBody, PortfolioLimits } from "../../schemas/portfolio.ts";
import { ClientMessage, ROOM_MESSAGE_MAX_BYTES } from "../../schemas/room.ts";
import { StrategiesBody } from "../../schemas/strategy.ts";
import { TickBatch } from "../../schemas/tick.ts";
import { ExecuteBody } from "../../schemas/trading-events.ts";
import { RiskBody } from "../../schemas/trading.ts";
import { BackupNowBody, RestoreBody } from "../../schemas/backup.ts";
import { BrokerCredentialsBody } from "../../schemas/broker.ts";
import { ROOT, startRuntime, type Runtime } from "../../scripts/runtime.ts";

const ADMIN_KEY = "fuzz-admin-key";
const CASES = Number(process.env.FUZZ_CASES ?? 1_000);
const PAIR = "EUR_USD";

interface BodyRoute {
  method: "POST" | "PUT";
  /** As declared in src/http/routes.ts. */
  declared: string;
  path: string;
  schema: v.GenericSchema;
  /** A valid body, for mutations that break one part of it. */
  valid: Record<string, unknown>;
}

const ROUTES: BodyRoute[] = [
  { method: "POST", declared: "/api/pairs/:pair/ticks", path: `/api/pairs/${PAIR}/ticks`, schema: TickBatch, valid: { ticks: [{ ts: 1_700_000_000_000, bid: 1.085, ask: 1.0851 }] } },
  { method: "POST", declared: "/api/trade/execute", path: "/api/trade/execute", schema: ExecuteBody, valid: { pair: PAIR, side: "buy", units: 1000, stopLoss: 1.08 } },
  {
    method: "POST", declared: "/api/backtest/run", path: "/api/backtest/run", schema: BacktestRequest,
    valid: { pair: PAIR, from: "2018-01-01", to: "2018-02-01", strategy: { kind: "sma-cross", params: { timeframe: "1h", fast: 20, slow: 50 } } },
  },
  { method: "PUT", declared: "/api/admin/pairs/:pair/strategies", path: `/api/admin/pairs/${PAIR}/strategies`, schema: StrategiesBody, valid: { strategies: [{ id: "f", kind: "sma-cross", units: 1000, params: {} }] } },
  { method: "PUT", declared: "/api/admin/pairs/:pair/risk", path: `/api/admin/pairs/${PAIR}/risk`, schema: RiskBody, valid: { limits: { maxPositionUnits: 5000 } } },
  { method: "POST", declared: "/api/admin/keys", path: "/api/admin/keys", schema: CreateKeyBody, valid: { role: "viewer", label: "x" } },
  { method: "PUT", declared: "/api/admin/limits", path: "/api/admin/limits", schema: PortfolioLimits, valid: { maxOpenPositions: 3 } },
  { method: "POST", declared: "/api/admin/kill-switch", path: "/api/admin/kill-switch", schema: KillSwitchBody, valid: { action: "halt", reason: "x" } },
  { method: "PUT", declared: "/api/admin/broker/credentials", path: "/api/admin/broker/credentials", schema: BrokerCredentialsBody, valid: { accountId: "101-004-1234567-001", token: "0123456789abcdef0123456789abcdef" } },
  { method: "POST", declared: "/api/admin/backups", path: "/api/admin/backups", schema: BackupNowBody, valid: { actors: ["coordinator", `pair:${PAIR}`] } },
  { method: "POST", declared: "/api/admin/backups/restore", path: "/api/admin/backups/restore", schema: RestoreBody, valid: { actor: `pair:${PAIR}`, snapshot: `pair/${PAIR}/snapshots/0000000000001.json` } },
];

/** Any JSON, including the awkward: huge and tiny numbers, unicode, deep nesting. */
const anyJson = fc.jsonValue({ maxDepth: 4 });

/** A valid body with one part broken: a key replaced by anything, dropped, or an unknown one added. */
function mutated(valid: Record<string, unknown>): fc.Arbitrary<unknown> {
  const keys = Object.keys(valid);
  return fc.oneof(
    fc.tuple(fc.constantFrom(...keys), anyJson).map(([k, x]) => ({ ...valid, [k]: x })),
    fc.constantFrom(...keys).map((k) => Object.fromEntries(Object.entries(valid).filter(([key]) => key !== k))),
    fc.tuple(fc.string({ minLength: 1, maxLength: 12 }), anyJson).map(([k, x]) => ({ ...valid, [`x_${k}`]: x })),
  );
}

/** A body: JSON text of a value, or text that is not JSON at all. */
const bodyFor = (route: BodyRoute): fc.Arbitrary<{ text: string; value: unknown } | { text: string; value?: never }> =>
  fc.oneof(
    { weight: 3, arbitrary: fc.oneof(anyJson, mutated(route.valid)).map((value) => ({ text: JSON.stringify(value), value })) },
    { weight: 1, arbitrary: fc.string({ maxLength: 200 }).filter((t) => !isJson(t)).map((text) => ({ text })) },
  );

function isJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

let stateDir: string;
let runtime: Runtime;

async function api(method: string, p: string, body?: string): Promise<{ status: number; json: unknown }> {
  const res = await fetch(`${runtime.url}${p}`, {
    method,
    headers: { "x-api-key": ADMIN_KEY, ...(body === undefined ? {} : { "content-type": "application/json" }) },
    ...(body === undefined ? {} : { body }),
  });
  const text = await res.text();
  let json: unknown = null;
  try {
    json = JSON.parse(text);
  } catch {
    json = { notJson: text.slice(0, 200) };
  }
  return { status: res.status, json };
}

/** Everything the fuzzed routes could change, as the API shows it. */
async function digest(): Promise<string> {
  const reads = [
    "/api/admin/audit?limit=1000",
    "/api/admin/portfolio",
    "/api/admin/limits",
    "/api/admin/keys",
    `/api/admin/pairs/${PAIR}/strategies`,
    `/api/admin/pairs/${PAIR}/risk`,
    `/api/pairs/${PAIR}`,
    `/api/pairs/${PAIR}/orders?limit=1000`,
    `/api/pairs/${PAIR}/positions?limit=1000`,
    `/api/pairs/${PAIR}/rejections?limit=1000`,
    // Every row of the pair's and the key store's SQLite databases (the backup digest).
    `/api/admin/backups?actor=pair:${PAIR}`,
    "/api/admin/backups?actor=gatekeeper",
    "/api/admin/broker",
  ];
  const parts = await Promise.all(reads.map(async (p) => [p, (await api("GET", p)).json] as const));
  // Volatile fields that move with time, not with state: the portfolio's heartbeat, timestamps of reads,
  // an actor's time up and its last backup's age.
  const volatile = new Set(["heartbeatAt", "time", "upForMs", "ageMs"]);
  return JSON.stringify(parts, (k, x: unknown) => (volatile.has(k) ? undefined : x));
}

beforeAll(async () => {
  stateDir = await mkdtemp(path.join(tmpdir(), "fxrt-fuzz-"));
  // The schedule off: a scheduled backup or retention run between two reads of the state
  // would look like a change made by the refused request.
  runtime = await startRuntime({ port: 0, stateDir, vars: { FEED: "off", ADMIN_API_KEY: ADMIN_KEY }, rateLimitPerMinute: 1_000_000_000, scheduleEveryMs: 0 });
  // State to protect. No ticks: open candles would close on the clock during the run and move the digest.
  await api("PUT", `/api/admin/pairs/${PAIR}/strategies`, JSON.stringify({ strategies: [{ id: "keep", kind: "sma-cross", units: 1000, params: { timeframe: "1m", fast: 2, slow: 3 } }] }));
  await api("PUT", "/api/admin/limits", JSON.stringify({ maxOpenPositions: 7 }));
}, 60_000);

afterAll(async () => {
  await runtime?.stop();
  if (stateDir) await rm(stateDir, { recursive: true, force: true });
});

describe("fuzzing", () => {
  it("covers every route that takes a body", () => {
    const source = readFileSync(path.join(ROOT, "src/http/routes.ts"), "utf8");
    // Routes that read no body (an action named by the path alone).
    const bodiless = ["POST /api/admin/pairs/:pair/strategies/:id/resume"];
    const declared = [...source.matchAll(/method: "(post|put)", path: "([^"]+)"/g)].map((m) => `${m[1]!.toUpperCase()} ${m[2]}`).filter((r) => !bodiless.includes(r)).sort();
    expect(ROUTES.map((r) => `${r.method} ${r.declared}`).sort()).toEqual(declared);
  });

  it("storing broker credentials without the CREDENTIALS_KEY secret is a typed 409 that stores nothing", async () => {
    const before = await digest();
    const res = await api("PUT", "/api/admin/broker/credentials", JSON.stringify({ accountId: "101-004-1234567-001", token: "0123456789abcdef0123456789abcdef" }));
    expect(res.status).toBe(409);
    expect(res.json).toMatchObject({ error: { code: "credentials_key_missing" } });
    expect(await digest()).toBe(before);
  });

  it(`every HTTP body route: ${CASES} invalid bodies each get a typed 4xx and change nothing`, { timeout: 300_000 }, async () => {
    const before = await digest();
    const seen = new Map<string, Set<string>>();
    for (const route of ROUTES) {
      const codes = new Set<string>();
      seen.set(route.path, codes);
      await fc.assert(
        fc.asyncProperty(bodyFor(route), async (body) => {
          fc.pre(!("value" in body) || !v.safeParse(route.schema, body.value).success);
          const res = await api(route.method, route.path, body.text);
          expect(res.status, `${route.method} ${route.path} ${body.text.slice(0, 200)}`).toBeGreaterThanOrEqual(400);
          expect(res.status).toBeLessThan(500);
          const error = (res.json as { error?: { code?: unknown; message?: unknown } }).error;
          expect(typeof error?.code).toBe("string");
          expect(typeof error?.message).toBe("string");
          codes.add(`${res.status} ${String(error?.code)}`);
        }),
        { numRuns: CASES },
      );
    }
    expect(await digest()).toBe(before);
    // Every route refused with its own schema's code, and bad JSON as such.
    for (const [route, codes] of seen) {
      expect([...codes].some((c) => c.startsWith("400 invalid_json")), `${route}: ${[...codes].join(", ")}`).toBe(true);
    }
  });

  /*
   * Numbers JSON.stringify cannot write (1e309 parses to Infinity) and numbers that are no price once
   * rounded to the pair's point, in every price and pip field of every route: each is refused with a
   * typed answer (a tick batch answers 200 with the tick refused), and nothing changes.
   */
  const NASTY = ["1e309", "-1e309", "1e-320", "5e-324", "0.000001", "-0", "0"];
  const priceFields: { route: string; method: "POST" | "PUT"; path: string; valid: Record<string, unknown>; fields: string[] }[] = [
    { route: "ticks", method: "POST", path: `/api/pairs/${PAIR}/ticks`, valid: { ticks: [{ ts: 1_700_000_000_000, bid: 1.085, ask: 1.0851 }] }, fields: ["ticks.0.bid", "ticks.0.ask"] },
    {
      route: "execute", method: "POST", path: "/api/trade/execute",
      valid: { pair: PAIR, side: "buy", units: 1000, type: "limit", price: 1.08, stopLoss: 1.07, takeProfit: 1.09, trailingStopPips: 10, breakEven: { triggerPips: 10, offsetPips: 1 }, addLevels: { maxLevels: 2, offsetPips: 10, sizeMultiplier: 1 } },
      fields: ["price", "stopLoss", "takeProfit", "trailingStopPips", "breakEven.triggerPips", "addLevels.offsetPips"],
    },
    {
      route: "strategies", method: "PUT", path: `/api/admin/pairs/${PAIR}/strategies`,
      valid: { strategies: [{ id: "f", kind: "sma-cross", units: 1000, params: {}, protection: { trailingStopPips: 10, breakEven: { triggerPips: 10, offsetPips: 1 }, addLevels: { maxLevels: 2, offsetPips: 10, sizeMultiplier: 1 } } }] },
      fields: ["strategies.0.protection.trailingStopPips", "strategies.0.protection.breakEven.triggerPips", "strategies.0.protection.addLevels.offsetPips"],
    },
  ];

  /** Limits and amounts where a tiny positive number is a valid (if strict) setting: only non-finite ones are bad. */
  const NON_FINITE = ["1e309", "-1e309"];
  const amountFields: typeof priceFields = [
    { route: "risk", method: "PUT", path: `/api/admin/pairs/${PAIR}/risk`, valid: { limits: { maxSpreadPips: 5 }, fillModel: { slippagePips: 0.5, commissionPerMillion: 50 } }, fields: ["limits.maxSpreadPips", "fillModel.slippagePips", "fillModel.commissionPerMillion"] },
    { route: "limits", method: "PUT", path: "/api/admin/limits", valid: { maxGrossExposure: 1e6, maxNetExposurePerCurrency: 5e5, maxExposurePerPair: 2.5e5, dailyLossLimit: 1e4, maxDrawdown: 2.5e4 }, fields: ["maxGrossExposure", "maxNetExposurePerCurrency", "maxExposurePerPair", "dailyLossLimit", "maxDrawdown"] },
    {
      route: "backtest", method: "POST", path: "/api/backtest/run",
      valid: { pair: PAIR, from: "2018-01-01", to: "2018-02-01", strategy: { kind: "sma-cross", params: {} }, spreadPips: 1, initialBalanceUsd: 100_000 },
      fields: ["spreadPips", "initialBalanceUsd"],
    },
  ];

  it("non-finite and sub-point numbers in every price field are refused with a typed answer and change nothing", { timeout: 120_000 }, async () => {
    const before = await digest();
    const answers = new Set<string>();
    const cases = [...priceFields.map((r) => ({ ...r, literals: NASTY })), ...amountFields.map((r) => ({ ...r, literals: NON_FINITE }))];
    for (const { route, method, path: target, valid, fields, literals } of cases) {
      for (const field of fields) {
        for (const nasty of literals) {
          // The valid body as JSON with one number's text replaced by the raw literal.
          const marker = 424242.4242;
          const body = structuredClone(valid) as Record<string, unknown>;
          const keys = field.split(".");
          let at: Record<string, unknown> = body;
          for (const k of keys.slice(0, -1)) at = at[k] as Record<string, unknown>;
          at[keys.at(-1)!] = marker;
          const text = JSON.stringify(body).replace(String(marker), nasty);
          const res = await api(method, target, text);
          const where = `${route} ${field}=${nasty}`;
          if (route === "ticks" && res.status === 200) {
            expect(res.json, where).toEqual({ accepted: 0, rejected: [{ index: 0, reason: expect.objectContaining({ type: expect.stringMatching(/^(invalid_price|out_of_band)$/) }) }] });
            answers.add(`200 ${(res.json as { rejected: { reason: { type: string } }[] }).rejected[0]!.reason.type}`);
            continue;
          }
          expect(res.status, where).toBeGreaterThanOrEqual(400);
          expect(res.status, where).toBeLessThan(500);
          const error = (res.json as { error?: { code?: unknown } }).error;
          expect(typeof error?.code, where).toBe("string");
          answers.add(`${res.status} ${String(error?.code)}`);
        }
      }
    }
    expect(await digest()).toBe(before);
    expect([...answers].sort(), "the kinds of refusal seen").toEqual(
      expect.arrayContaining(["200 invalid_price", "400 invalid_order", "400 invalid_strategies", "400 invalid_risk", "400 invalid_backtest"]),
    );
  });

  it("the room's ticks message: non-finite and sub-point prices are refused in its ticks_result, nothing is stored", { timeout: 60_000 }, async () => {
    const before = await digest();
    const ws = new WebSocket(`${runtime.url.replace(/^http/, "ws")}/parties/pair/${PAIR}?tf=1m&limit=0&key=${ADMIN_KEY}`);
    const frames: { type: string; accepted?: number; rejected?: { reason: { type: string } }[] }[] = [];
    ws.on("message", (data: WebSocket.RawData) => frames.push(JSON.parse(data.toString()) as { type: string }));
    await new Promise((resolve, reject) => (ws.once("open", resolve), ws.once("error", reject)));
    let sent = 0;
    for (const field of ["bid", "ask"]) {
      for (const nasty of NASTY) {
        const tick = field === "bid" ? `{"ts":1700000000000,"bid":${nasty},"ask":1.0851}` : `{"ts":1700000000000,"bid":1.085,"ask":${nasty}}`;
        ws.send(`{"type":"ticks","id":"n${sent++}","ticks":[${tick}]}`);
      }
    }
    const until = Date.now() + 10_000;
    while (frames.filter((f) => f.type === "ticks_result" || f.type === "error").length < sent && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    const answers = frames.filter((f) => f.type === "ticks_result" || f.type === "error");
    expect(answers).toHaveLength(sent);
    for (const a of answers) {
      if (a.type === "error") continue;
      expect(a.accepted).toBe(0);
      expect(a.rejected?.[0]?.reason.type).toMatch(/^(invalid_price|out_of_band)$/);
    }
    ws.close();
    expect(await digest()).toBe(before);
  });

  it(`the room: ${CASES} invalid messages each get an error frame; the room stays up and unchanged`, { timeout: 120_000 }, async () => {
    const before = await digest();
    const ws = new WebSocket(`${runtime.url.replace(/^http/, "ws")}/parties/pair/${PAIR}?tf=1m&limit=0&key=${ADMIN_KEY}`);
    const frames: { type: string; code?: string; timeframes?: string[] }[] = [];
    let waiting: (() => void) | null = null;
    ws.on("message", (data: WebSocket.RawData) => {
      frames.push(JSON.parse(data.toString()) as { type: string });
      waiting?.();
    });
    const next = (pred: (f: { type: string }) => boolean) =>
      new Promise<{ type: string; code?: string }>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error("no frame within 5 s")), 5_000);
        const check = () => {
          const i = frames.findIndex(pred);
          if (i < 0) return;
          clearTimeout(timer);
          waiting = null;
          resolve(frames.splice(0, i + 1).at(-1)!);
        };
        waiting = check;
        check();
      });
    await next((f) => f.type === "snapshot");
    const message = fc.oneof(
      anyJson.filter((x) => !v.safeParse(ClientMessage, x).success).map((x) => JSON.stringify(x)),
      fc.string({ maxLength: 300 }),
      fc.record({ type: fc.constantFrom("subscribe", "unsubscribe", "ping", "ticks"), timeframes: anyJson, id: anyJson, ticks: anyJson }).filter((x) => !v.safeParse(ClientMessage, x).success).map((x) => JSON.stringify(x)),
      fc.uint8Array({ minLength: 1, maxLength: 64 }),
      // Over the size limit, valid JSON or not.
      fc.string({ minLength: 1, maxLength: 40 }).map((pad) => JSON.stringify({ type: "ping", id: pad.repeat(Math.ceil((ROOM_MESSAGE_MAX_BYTES + 1) / pad.length)) })),
    );
    const codes = new Set<string>();
    await fc.assert(
      fc.asyncProperty(message, async (m) => {
        if (typeof m === "string" && isJson(m) && v.safeParse(ClientMessage, JSON.parse(m)).success) return;
        ws.send(m);
        const err = await next((f) => f.type === "error");
        expect(err.code).toMatch(/^(invalid_json|invalid_message|message_too_large|unsupported_frame)$/);
        codes.add(err.code!);
      }),
      { numRuns: CASES },
    );
    // Every kind of refusal came up.
    expect([...codes].sort()).toEqual(["invalid_json", "invalid_message", "message_too_large", "unsupported_frame"]);
    // Still up, still following 1m only.
    ws.send(JSON.stringify({ type: "ping", id: "after" }));
    expect(await next((f) => f.type === "pong")).toEqual({ type: "pong", id: "after" });
    ws.send(JSON.stringify({ type: "unsubscribe", timeframes: ["5m"] }));
    expect(await next((f) => f.type === "subscribed")).toEqual({ type: "subscribed", timeframes: ["1m"] });
    ws.close();
    expect(await digest()).toBe(before);
  });

  for (const stream of ["/api/signals/realtime", "/api/admin/alerts/realtime"]) {
    it(`${stream}: ${CASES} messages of any kind each get a read_only error; the stream stays open`, { timeout: 120_000 }, async () => {
      const ws = new WebSocket(`${runtime.url.replace(/^http/, "ws")}${stream}?key=${ADMIN_KEY}`);
      let errors = 0;
      let other = 0;
      ws.on("message", (data: WebSocket.RawData) => {
        const frame = JSON.parse(data.toString()) as { type: string; code?: string };
        if (frame.type === "error" && frame.code === "read_only") errors++;
        else other++;
      });
      await new Promise((resolve, reject) => (ws.once("open", resolve), ws.once("error", reject)));
      const message = fc.oneof(anyJson.map((x) => JSON.stringify(x)), fc.string({ maxLength: 300 }), fc.uint8Array({ minLength: 1, maxLength: 64 }));
      let sent = 0;
      await fc.assert(
        fc.asyncProperty(message, async (m) => {
          ws.send(m);
          sent++;
        }),
        { numRuns: CASES },
      );
      const until = Date.now() + 10_000;
      while (errors < sent && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
      expect({ errors, other, open: ws.readyState === WebSocket.OPEN }).toEqual({ errors: sent, other: 0, open: true });
      ws.close();
    });
  }
});
