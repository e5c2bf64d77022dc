import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { askAdvisor } from "../../src/advisor/advisor.ts";
import type { AdvisorRequest } from "../../schemas/advisor.ts";

/** A local advisor whose behaviour is chosen by the request path. */
let server: Server;
let base: string;
const received: unknown[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      received.push(JSON.parse(body));
      const reply = (status: number, text: string, delayMs = 0) => setTimeout(() => res.writeHead(status, { "content-type": "application/json" }).end(text), delayMs);
      switch (req.url) {
        case "/slow": return reply(200, JSON.stringify({ action: "veto" }), 400);
        case "/fail": return reply(503, "{}");
        case "/garbage": return reply(200, "<html>");
        case "/wrong": return reply(200, JSON.stringify({ action: "buy more" }));
        case "/veto": return reply(200, JSON.stringify({ action: "veto", reason: "news in 5 minutes" }));
        case "/shrink": return reply(200, JSON.stringify({ action: "resize", units: 4000, reason: "high volatility" }));
        case "/grow": return reply(200, JSON.stringify({ action: "resize", units: 50_000 }));
        default: return reply(200, JSON.stringify({ action: "accept" }));
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

const request: AdvisorRequest = {
  signal: {
    id: "s1", pair: "EUR_USD", strategyId: "trend", timeframe: "15m", type: "buy", confidence: 0.7, reason: "EMA cross",
    time: 1_700_000_000_000, candleT: 1_699_999_100_000, stopLoss: 1.095, metadata: { atr: 0.0012 },
  },
  order: { pair: "EUR_USD", side: "buy", units: 10_000, reduceOnly: false },
};

describe("advisor hook", () => {
  it("passes its verdicts through: accept, veto, shrink", async () => {
    expect(await askAdvisor({ url: `${base}/ok`, timeoutMs: 1000 }, request)).toMatchObject({ source: "advisor", action: "accept" });
    expect(await askAdvisor({ url: `${base}/veto`, timeoutMs: 1000 }, request)).toMatchObject({ source: "advisor", action: "veto", reason: "news in 5 minutes" });
    expect(await askAdvisor({ url: `${base}/shrink`, timeoutMs: 1000 }, request)).toMatchObject({ source: "advisor", action: "resize", units: 4000 });
    expect(received.at(-1)).toEqual(request);
  });

  it("can only shrink an order: a larger size is the rule-based size", async () => {
    expect(await askAdvisor({ url: `${base}/grow`, timeoutMs: 1000 }, request)).toMatchObject({ source: "advisor", action: "accept" });
  });

  it("falls back to the rule-based decision within the time budget when the advisor is slow", async () => {
    const t0 = performance.now();
    const advice = await askAdvisor({ url: `${base}/slow`, timeoutMs: 100 }, request);
    const elapsed = performance.now() - t0;
    expect(advice).toMatchObject({ source: "fallback", action: "accept", failure: "timeout" });
    // Bounded by the budget (plus scheduling), never by the 400 ms the advisor takes.
    expect(elapsed).toBeLessThan(300);
  });

  it("falls back on HTTP errors, non-JSON, answers outside the schema and refused connections", async () => {
    expect(await askAdvisor({ url: `${base}/fail`, timeoutMs: 1000 }, request)).toMatchObject({ source: "fallback", failure: "http_error", detail: "HTTP 503" });
    expect(await askAdvisor({ url: `${base}/garbage`, timeoutMs: 1000 }, request)).toMatchObject({ source: "fallback", failure: "invalid_response" });
    expect(await askAdvisor({ url: `${base}/wrong`, timeoutMs: 1000 }, request)).toMatchObject({ source: "fallback", failure: "invalid_response" });
    expect(await askAdvisor({ url: "http://127.0.0.1:1/", timeoutMs: 1000 }, request)).toMatchObject({ source: "fallback", failure: "network_error" });
  });
});
