/**
 * OANDA as OANDA behaves, not as a kind server would (issue 14, items 8-12),
 * against the v20 stand-in doing the harsher thing wherever OANDA's text
 * allows it: a client order id refused only while its order is pending,
 * capped `sinceid` pages, prices that are not tradeable or one-sided,
 * nanosecond times, FOK all or nothing, 120 requests and 2 new connections a
 * second. Each test here failed on the adapter before these items were fixed.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { getInstrument } from "../../src/domain/instruments.ts";
import type { Tick } from "../../src/domain/candle.ts";
import { OandaBroker } from "../../src/broker/oanda/oanda-broker.ts";
import { OandaHttp, type OandaEndpoint, type RetryPolicy } from "../../src/broker/oanda/oanda-http.ts";
import { PricingStream } from "../../src/broker/oanda/pricing-stream.ts";
import { RateLimiter } from "../../src/broker/oanda/rate-limit.ts";
import { AccountSummary, msOf } from "../../src/broker/oanda/v20.ts";
import { FAST, intents, QUOTE, resetStandIn, startStandIn } from "../support/oanda-fixtures.ts";
import { OandaStandIn, v20Time, type Seen } from "../support/oanda-standin.ts";

const EUR_USD = getInstrument("EUR_USD");

let standin: OandaStandIn;
let endpoint: OandaEndpoint;

const intent = intents("safety", 1_000);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** A client with its own rate limiter, so one test's 429 pause does not hold up the next. */
const client = (policy: RetryPolicy = FAST, token = standin.token) => new OandaHttp({ ...endpoint, token }, policy, undefined, new RateLimiter(100));
/** The most requests in any window of `windowMs`. */
function mostInWindow(seen: readonly Seen[], windowMs: number): number {
  let most = 0;
  for (let i = 0, j = 0; j < seen.length; j++) {
    while (seen[j]!.at - seen[i]!.at >= windowMs) i++;
    most = Math.max(most, j - i + 1);
  }
  return most;
}

beforeAll(async () => {
  ({ standin, endpoint } = await startStandIn());
});

afterAll(() => standin.stop());

beforeEach(() => resetStandIn(standin));

describe("item 8: an order is never placed twice", () => {
  it("an order OANDA filled, sent again by a new life of the actor, is found by its client id and not filled again", async () => {
    const order = intent();
    const first = await new OandaBroker(client(), EUR_USD).place(order, QUOTE);
    expect(first.status).toBe("filled");
    const units = standin.positionUnits("EUR_USD");
    // The outbox sends it again after a restart: OANDA would take the id again (its order is no longer pending).
    const again = await new OandaBroker(client(), EUR_USD).place(order, QUOTE);
    expect(again).toEqual(first);
    expect(standin.ordersByClientId(order.clientOrderId)).toHaveLength(1);
    expect(standin.positionUnits("EUR_USD")).toBe(units);
  });

  it("an order whose answer never came while OANDA takes it late is in doubt: looked up, never sent again, found once taken", async () => {
    const broker = new OandaBroker(client({ ...FAST, timeoutMs: 100 }), EUR_USD);
    const order = intent();
    const from = Date.now();
    standin.faults.delayOrdersMs = 300; // taken after the client gave up, and after its lookup found nothing
    await expect(broker.place(order, QUOTE)).rejects.toMatchObject({ status: 0, code: "timeout" });
    await expect(broker.place(order, QUOTE)).rejects.toMatchObject({ code: "in_doubt" });
    await sleep(400);
    expect(await broker.place(order, QUOTE)).toMatchObject({ status: "filled", fills: [{ units: 1_000 }] });
    expect(standin.ordersByClientId(order.clientOrderId)).toHaveLength(1);
    expect(standin.requestsSince(from, "POST", "/orders")).toHaveLength(1);
  });

  it("a 503 or a 429 to the order: the call ends with the error, with no second POST", async () => {
    for (const status of [503, 429]) {
      const broker = new OandaBroker(client(), EUR_USD);
      const order = intent();
      const from = Date.now();
      standin.faults.orderStatus = status;
      await expect(broker.place(order, QUOTE)).rejects.toMatchObject({ status });
      expect(standin.requestsSince(from, "POST", "/orders")).toHaveLength(1);
      expect(standin.ordersByClientId(order.clientOrderId)).toHaveLength(0);
    }
  });
});

describe("item 9: no fill is missed", () => {
  it("a fill past the end of a capped sinceid page is read by paging on, not skipped", async () => {
    let now = 0;
    const broker = new OandaBroker(client(), EUR_USD, () => now);
    const order = intent({ type: "limit", price: 108_400, units: 2_000 });
    expect(await broker.place(order, QUOTE)).toEqual({ status: "working", fills: [] });
    standin.sinceIdPageMax = 2;
    for (let i = 0; i < 5; i++) standin.externalTrade("USD_JPY", 100); // five transactions before the fill
    standin.setQuote("EUR_USD", 1.0838, 1.08392);
    now += 2_000;
    expect(await broker.onQuote(QUOTE)).toEqual([expect.objectContaining({ clientOrderId: order.clientOrderId, units: 2_000, price: 108_392 })]);
  });
});

describe("item 10: prices OANDA will not fill at", () => {
  let stream: PricingStream | null = null;
  afterEach(async () => {
    await stream?.stop();
    stream = null;
  });

  it("a price marked not tradeable is no tick: the pair is closed until a tradeable price", async () => {
    const ticks: Tick[] = [];
    const changes: [string, boolean][] = [];
    stream = new PricingStream(endpoint, [EUR_USD], (_pair, tick) => ticks.push(tick), { retry: FAST, onTradeable: (pair, ok) => changes.push([pair, ok]) });
    stream.start();
    await expect.poll(() => ticks.length).toBe(1);
    standin.setQuote("EUR_USD", 1.0901, 1.0903, false);
    await expect.poll(() => stream!.state.closed).toEqual(["EUR_USD"]);
    standin.setQuote("EUR_USD", 1.0911, 1.0913);
    await expect.poll(() => ticks.at(-1)?.bid).toBe(109_110);
    expect(ticks.map((t) => t.bid)).toEqual([108_500, 109_110]);
    expect(stream.state).toMatchObject({ closed: [], untradeable: 1, badLines: 0 });
    expect(changes).toEqual([["EUR_USD", true], ["EUR_USD", false], ["EUR_USD", true]]);
  });

  it("a price with an empty bid or ask list is not malformed: no tick, the pair closed until both sides are back", async () => {
    const ticks: Tick[] = [];
    stream = new PricingStream(endpoint, [EUR_USD], (_pair, tick) => ticks.push(tick), { retry: FAST });
    stream.start();
    await expect.poll(() => ticks.length).toBe(1);
    standin.setQuote("EUR_USD", null, 1.0905);
    standin.setQuote("EUR_USD", 1.0904, null);
    await expect.poll(() => stream!.state.untradeable).toBe(2);
    expect(stream.state).toMatchObject({ closed: ["EUR_USD"], badLines: 0 });
    standin.setQuote("EUR_USD", 1.0906, 1.0908);
    await expect.poll(() => ticks.at(-1)?.bid).toBe(109_060);
    expect(ticks).toHaveLength(2);
    expect(stream.state.closed).toEqual([]);
  });

  it("a market order while the price is not tradeable is cancelled by OANDA (MARKET_HALTED), nothing filled", async () => {
    standin.setTradeable("EUR_USD", false);
    const broker = new OandaBroker(client(), EUR_USD);
    expect(await broker.place(intent(), QUOTE)).toEqual({ status: "rejected", reason: "MARKET_HALTED", fills: [] });
  });

  it("nanosecond times are cut to the millisecond; anything but RFC 3339 in UTC is refused", () => {
    expect(msOf("2026-03-02T10:04:05.999999999Z")).toBe(Date.parse("2026-03-02T10:04:05.999Z"));
    expect(msOf("2026-03-02T10:04:05Z")).toBe(Date.parse("2026-03-02T10:04:05Z"));
    expect(msOf(v20Time(Date.parse("2026-03-02T10:04:05.123Z")))).toBe(Date.parse("2026-03-02T10:04:05.123Z"));
    for (const bad of ["2026-03-02 10:04:05", "1772445845.123456789", "2026-03-02T10:04:05.1234567890Z", "x"]) expect(msOf(bad)).toBeNaN();
  });
});

describe("item 11: OANDA's limits", () => {
  let stream: PricingStream | null = null;
  afterEach(async () => {
    await stream?.stop();
    stream = null;
  });

  // The streams here share the isolate's connection limiter, as the runtime's feed does: OANDA counts every connection from us.
  it("a stream that closes right after a line is reopened at most twice a second, never refused for it", async () => {
    const from = Date.now();
    standin.faults.dropAfterLines = 1;
    stream = new PricingStream(endpoint, [EUR_USD], () => {}, { retry: FAST });
    stream.start();
    await sleep(2_500);
    await stream.stop();
    const opened = standin.requestsSince(from, "STREAM");
    expect(opened.length).toBeGreaterThanOrEqual(2);
    expect(mostInWindow(opened, 1_000)).toBeLessThanOrEqual(2);
    expect(opened.filter((r) => r.status === 429)).toEqual([]);
  });

  it("a stream refused with 401 stops (state refused) instead of asking again", async () => {
    const from = Date.now();
    stream = new PricingStream({ ...endpoint, token: "wrong-token" }, [EUR_USD], () => {}, { retry: FAST });
    stream.start();
    await expect.poll(() => stream!.state.state, { timeout: 3_000 }).toBe("refused");
    await sleep(1_000);
    expect(standin.requestsSince(from, "STREAM").map((r) => r.status)).toEqual([401]);
    expect(stream.state.lastError).toContain("401");
  });

  it("a stream answered 429 backs off: at most three tries in 2.5 s", async () => {
    const from = Date.now();
    standin.faults.streamStatus = 429;
    stream = new PricingStream(endpoint, [EUR_USD], () => {}, { retry: FAST });
    stream.start();
    await sleep(2_500);
    const tries = standin.requestsSince(from, "STREAM");
    expect(tries.length).toBeGreaterThanOrEqual(1);
    expect(tries.length).toBeLessThanOrEqual(3);
  });

  it("a REST token refused with 401 stops the client: later calls fail unsent", async () => {
    const from = Date.now();
    const http = client(FAST, "wrong-token");
    await expect(http.get("/summary", AccountSummary)).rejects.toMatchObject({ status: 401 });
    await expect(http.get("/summary", AccountSummary)).rejects.toMatchObject({ status: 401, code: "stopped" });
    await expect(new OandaBroker(http, EUR_USD).place(intent(), QUOTE)).rejects.toMatchObject({ code: "stopped" });
    expect(standin.requestsSince(from)).toHaveLength(1);
    expect(http.stopped).toBe(true);
  });

  it("a 429 pauses the client: the GET is tried again only after a second", async () => {
    const from = Date.now();
    standin.faults.fail429 = 1;
    const summary = await client().get("/summary", AccountSummary);
    expect(summary.account.currency).toBe("USD");
    const seen = standin.requestsSince(from, "GET", "/summary");
    expect(seen.map((r) => r.status)).toEqual([429, 200]);
    expect(seen[1]!.at - seen[0]!.at).toBeGreaterThanOrEqual(950);
  });

  it("150 requests at once stay under OANDA's 120 a second: none refused", async () => {
    const from = Date.now();
    const http = new OandaHttp(endpoint, FAST); // the isolate's shared limiter, as the runtime uses it
    const answers = await Promise.all(Array.from({ length: 150 }, () => http.get("/summary", AccountSummary)));
    expect(answers).toHaveLength(150);
    const seen = standin.requestsSince(from, "GET", "/summary");
    expect(seen.filter((r) => r.status === 429)).toEqual([]);
    expect(mostInWindow(seen, 1_000)).toBeLessThanOrEqual(100);
  });
});

describe("item 12: the stand-in is as harsh as OANDA's text allows", () => {
  it("takes a client id again once its order is done, but not while it is pending", async () => {
    const raw = (order: object) =>
      fetch(`${endpoint.apiUrl}/v3/accounts/${standin.accountId}/orders`, { method: "POST", headers: { authorization: `Bearer ${standin.token}`, "content-type": "application/json" }, body: JSON.stringify({ order }) });
    const market = { type: "MARKET", instrument: "EUR_USD", units: "100", timeInForce: "FOK", positionFill: "DEFAULT", clientExtensions: { id: "standin-reuse-1" } };
    expect((await raw(market)).status).toBe(201);
    expect((await raw(market)).status).toBe(201); // filled, so OANDA's uniqueness no longer holds it
    expect(standin.ordersByClientId("standin-reuse-1")).toHaveLength(2);
    const limit = { ...market, type: "LIMIT", price: "1.00000", timeInForce: "GTC", clientExtensions: { id: "standin-reuse-2" } };
    expect((await raw(limit)).status).toBe(201);
    const refused = await raw(limit);
    expect(refused.status).toBe(400);
    expect(await refused.json()).toMatchObject({ errorCode: "CLIENT_ORDER_ID_ALREADY_EXISTS" });
  });

  it("writes every time with nine decimals", () => {
    expect(v20Time()).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{9}Z$/);
  });
});
