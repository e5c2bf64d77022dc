/**
 * The OANDA v20 adapter against a local server speaking the v20 protocol
 * (test/support/oanda-standin.ts): orders and their idempotency by client
 * order id through lost answers, 5xx, timeouts, stalled bodies and resends;
 * rejections, partial fills, resting limit and stop orders with protection on
 * fill, filled in parts or cancelled by OANDA; looking an order up after a
 * restart; open trades (FIFO); the pricing stream with heartbeats, bad lines,
 * drops and silence; the retry policy's backoff.
 */
import fc from "fast-check";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { getInstrument } from "../../src/domain/instruments.ts";
import type { Tick } from "../../src/domain/candle.ts";
import type { OrderIntent } from "../../src/domain/trading/types.ts";
import { OandaBroker } from "../../src/broker/oanda/oanda-broker.ts";
import { backoffMs, DEFAULT_RETRY, OandaError, OandaHttp, type OandaEndpoint } from "../../src/broker/oanda/oanda-http.ts";
import { PricingStream } from "../../src/broker/oanda/pricing-stream.ts";
import { AccountSummary } from "../../src/broker/oanda/v20.ts";
import { readAccount } from "../../src/broker/oanda/oanda-account.ts";
import { FAST, intents, QUOTE, resetStandIn, startStandIn } from "../support/oanda-fixtures.ts";
import { OandaStandIn } from "../support/oanda-standin.ts";

const EUR_USD = getInstrument("EUR_USD");
const USD_JPY = getInstrument("USD_JPY");

let standin: OandaStandIn;
let endpoint: OandaEndpoint;

const intent = intents("test", 10_000);

beforeAll(async () => {
  ({ standin, endpoint } = await startStandIn());
});

afterAll(() => standin.stop());

beforeEach(() => resetStandIn(standin));

describe("orders", () => {
  it("fills a market order at the ask with the client order id, stop loss, take profit and trailing stop on fill", async () => {
    const broker = new OandaBroker(new OandaHttp(endpoint, FAST), EUR_USD);
    const order = intent({ stopLoss: 108_000, takeProfit: 109_500, trailingStopPips: 15 });
    const answer = await broker.place(order, QUOTE);
    expect(answer.status).toBe("filled");
    expect(answer.fills).toEqual([
      { id: expect.stringMatching(new RegExp(`^${order.clientOrderId}:t\\d+$`)), clientOrderId: order.clientOrderId, pair: "EUR_USD", side: "buy", units: 10_000, price: 108_512, commissionQuoteMicros: 0, ts: expect.any(Number) },
    ]);
    expect(standin.orderByClientId(order.clientOrderId)?.body).toMatchObject({
      type: "MARKET", instrument: "EUR_USD", units: "10000", timeInForce: "FOK", positionFill: "DEFAULT",
      clientExtensions: { id: order.clientOrderId, tag: "test" },
      stopLossOnFill: { price: "1.08000" }, takeProfitOnFill: { price: "1.09500" }, trailingStopLossOnFill: { distance: "0.00150" },
    });
  });

  it("sells as negative units at the bid, and reduce-only orders say so (USD_JPY, 3 decimals)", async () => {
    const broker = new OandaBroker(new OandaHttp(endpoint, FAST), USD_JPY);
    const order = intent({ pair: "USD_JPY", side: "sell", units: 2_500, reduceOnly: true });
    const answer = await broker.place(order, QUOTE);
    expect(answer.fills[0]).toMatchObject({ side: "sell", units: 2_500, price: 151_200 });
    expect(standin.orderByClientId(order.clientOrderId)?.body).toMatchObject({ units: "-2500", positionFill: "REDUCE_ONLY" });
  });

  it("an answer lost after OANDA took the order: found by client order id, filled once", async () => {
    const broker = new OandaBroker(new OandaHttp(endpoint, FAST), EUR_USD);
    const before = standin.ordersCount();
    standin.faults.loseNextOrderAnswer = true;
    const order = intent();
    const answer = await broker.place(order, QUOTE);
    expect(answer).toMatchObject({ status: "filled", fills: [{ units: 10_000, price: 108_512 }] });
    expect(standin.ordersCount()).toBe(before + 1);
    // The outbox sends it again after a restart: the same fill (same id), still one order.
    const again = await new OandaBroker(new OandaHttp(endpoint, FAST), EUR_USD).place(order, QUOTE);
    expect(again).toEqual(answer);
    expect(standin.ordersCount()).toBe(before + 1);
  });

  it("a 503 to the order: the error stands and nothing is sent again while in doubt; later it is looked up, not found, sent once", async () => {
    let now = 0;
    const broker = new OandaBroker(new OandaHttp(endpoint, FAST), EUR_USD, () => now);
    const before = standin.ordersCount();
    const order = intent();
    standin.faults.orderStatus = 503;
    await expect(broker.place(order, QUOTE)).rejects.toMatchObject({ status: 503 });
    await expect(broker.place(order, QUOTE)).rejects.toMatchObject({ code: "in_doubt" });
    expect(standin.ordersCount()).toBe(before);
    now += 3 * FAST.timeoutMs;
    expect(await broker.place(order, QUOTE)).toMatchObject({ status: "filled", fills: [{ units: 10_000 }] });
    expect(standin.ordersCount()).toBe(before + 1);
  });

  it("a slow OANDA: the order times out and the error stands; sent again later, it is found, not doubled", async () => {
    const broker = new OandaBroker(new OandaHttp(endpoint, { ...FAST, timeoutMs: 100 }), EUR_USD);
    const before = standin.ordersCount();
    standin.faults.delayMs = 250;
    const order = intent();
    const err = await broker.place(order, QUOTE).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OandaError);
    expect(err).toMatchObject({ status: 0, code: "timeout" });
    standin.faults.delayMs = 0;
    await new Promise((r) => setTimeout(r, 300)); // the server finishes the order it took
    const answer = await broker.place(order, QUOTE);
    expect(answer).toMatchObject({ status: "filled", fills: [{ units: 10_000 }] });
    expect(standin.ordersCount()).toBe(before + 1);
  });

  it("rejections come back as rejected with OANDA's reason; a market with no price cancels the order", async () => {
    const broker = new OandaBroker(new OandaHttp(endpoint, FAST), EUR_USD);
    standin.faults.rejectNext = "INSUFFICIENT_MARGIN";
    expect(await broker.place(intent(), QUOTE)).toEqual({ status: "rejected", reason: "INSUFFICIENT_MARGIN", fills: [] });
    const jpy = new OandaBroker(new OandaHttp(endpoint, FAST), getInstrument("GBP_JPY"));
    expect(await jpy.place(intent({ pair: "GBP_JPY" }), QUOTE)).toEqual({ status: "rejected", reason: "MARKET_HALTED", fills: [] });
  });

  it("a FOK market order OANDA cannot fill whole is cancelled whole: rejected, nothing filled", async () => {
    const broker = new OandaBroker(new OandaHttp(endpoint, FAST), EUR_USD);
    const before = standin.positionUnits("EUR_USD");
    standin.faults.partialFill = 0.4;
    const order = intent({ units: 10_000 });
    expect(await broker.place(order, QUOTE)).toEqual({ status: "rejected", reason: "INSUFFICIENT_LIQUIDITY", fills: [] });
    expect(standin.orderByClientId(order.clientOrderId)?.state).toBe("CANCELLED");
    expect(standin.positionUnits("EUR_USD")).toBe(before);
  });

  it("a limit order works until a quote crosses it; its fill comes from the transactions", async () => {
    let now = 0;
    const broker = new OandaBroker(new OandaHttp(endpoint, FAST), EUR_USD, () => now);
    const order = intent({ type: "limit", price: 108_400 });
    expect(await broker.place(order, QUOTE)).toEqual({ status: "working", fills: [] });
    now += 2_000;
    expect(await broker.onQuote(QUOTE)).toEqual([]);
    standin.setQuote("EUR_USD", 1.0838, 1.08392);
    expect(await broker.onQuote(QUOTE)).toEqual([]); // polled a moment ago: waits for the next second
    now += 2_000;
    expect(await broker.onQuote(QUOTE)).toEqual([expect.objectContaining({ clientOrderId: order.clientOrderId, side: "buy", units: 10_000, price: 108_392 })]);
    now += 2_000;
    expect(await broker.onQuote(QUOTE)).toEqual([]);
  });

  it("a resting order cancelled on request: PUT .../orders/@id/cancel, then rejected with CLIENT_REQUEST; a filled one answers its fill; an unknown one null", async () => {
    let now = 0;
    const broker = new OandaBroker(new OandaHttp(endpoint, FAST), EUR_USD, () => now);
    const resting = intent({ type: "limit", price: 108_400 });
    expect(await broker.place(resting, QUOTE)).toEqual({ status: "working", fills: [] });
    const from = Date.now();
    expect(await broker.cancel(resting.clientOrderId)).toEqual({ status: "rejected", reason: "CLIENT_REQUEST", fills: [] });
    expect(standin.requestsSince(from, "PUT").map((r) => [r.path, r.status])).toEqual([[`/orders/@${resting.clientOrderId}/cancel`, 200]]);
    expect(standin.orderByClientId(resting.clientOrderId)?.state).toBe("CANCELLED");
    // The market comes to its price: nothing fills.
    standin.setQuote("EUR_USD", 1.0838, 1.08392);
    now += 2_000;
    expect(await broker.onQuote(QUOTE)).toEqual([]);

    // Filled before the cancel came: v20 refuses the cancel (404), and the fill is what stands.
    const filled = intent({ type: "limit", price: 108_300 });
    expect(await broker.place(filled, QUOTE)).toEqual({ status: "working", fills: [] });
    standin.setQuote("EUR_USD", 1.0828, 1.08292);
    expect(await broker.cancel(filled.clientOrderId)).toEqual({ status: "filled", fills: [expect.objectContaining({ clientOrderId: filled.clientOrderId, units: 10_000 })] });
    expect(await broker.cancel("never-sent")).toBeNull();

    // A cancel v20 refuses while the order still rests: an error (to be asked again), never a settled answer.
    const stuck = intent({ type: "limit", price: 108_000 });
    expect(await broker.place(stuck, QUOTE)).toEqual({ status: "working", fills: [] });
    standin.faults.refuseNextCancel = true;
    await expect(broker.cancel(stuck.clientOrderId)).rejects.toThrow(/was not cancelled/);
    expect(standin.orderByClientId(stuck.clientOrderId)?.state).toBe("PENDING");
    expect(await broker.cancel(stuck.clientOrderId)).toEqual({ status: "rejected", reason: "CLIENT_REQUEST", fills: [] });
  });

  it("a wrong token is an error, not a rejection: the order stays to be sent again", async () => {
    const broker = new OandaBroker(new OandaHttp({ ...endpoint, token: "wrong" }, FAST), EUR_USD);
    await expect(broker.place(intent(), QUOTE)).rejects.toMatchObject({ status: 401 });
  });

  it("reads the account summary, retrying a 503", async () => {
    standin.faults.fail5xx = 2;
    const summary = await new OandaHttp(endpoint, FAST).get("/summary", AccountSummary);
    expect(summary.account).toMatchObject({ id: standin.accountId, currency: "USD", balance: "100000.0000" });
  });

  it("reads the account for the operator: positions on every instrument, and instruments OANDA does not describe as the runtime does", async () => {
    standin.externalTrade("GBP_USD", -3_000);
    const account = await readAccount(new OandaHttp(endpoint, FAST), ["EUR_USD", "EUR_GBP"]);
    expect(account).toMatchObject({ currency: "USD", balance: 100_000 });
    expect(account.positions).toContainEqual({ instrument: "GBP_USD", netUnits: -3_000, served: false });
    expect(account.trades).toContainEqual({ instrument: "GBP_USD", count: 1, units: -3_000, served: false });
    const eurUsd = account.trades.find((t) => t.instrument === "EUR_USD");
    expect(eurUsd?.units).toBe(standin.positionUnits("EUR_USD"));
    expect(eurUsd?.count).toBe(standin.openTradesOf("EUR_USD").length);
    // EUR_GBP is not in the stand-in's instrument table: flagged, EUR_USD agrees.
    expect(account.instrumentMismatches).toEqual([{ instrument: "EUR_GBP", oanda: null }]);
  });
});

describe("a body that stalls after the headers", () => {
  it("is a timeout (OandaError, status 0): a GET is retried and gets its answer", async () => {
    const policy = { ...FAST, timeoutMs: 200 };
    standin.faults.stallBody = true;
    const once = await new OandaHttp(endpoint, { ...policy, attempts: 1 }).get("/summary", AccountSummary).catch((e: unknown) => e);
    expect(once).toBeInstanceOf(OandaError);
    expect(once).toMatchObject({ status: 0, code: "timeout" });
    standin.faults.stallBody = true;
    const summary = await new OandaHttp(endpoint, policy).get("/summary", AccountSummary);
    expect(summary.account.id).toBe(standin.accountId);
    expect(standin.faults.stallBody).toBe(false); // the first attempt did stall
  });

  it("an order POST whose answer stalls is looked up, not sent again: filled once", async () => {
    const broker = new OandaBroker(new OandaHttp(endpoint, { ...FAST, timeoutMs: 200 }), EUR_USD);
    const before = standin.ordersCount();
    standin.faults.stallBody = true;
    const order = intent();
    const answer = await broker.place(order, QUOTE);
    expect(answer).toMatchObject({ status: "filled", fills: [{ clientOrderId: order.clientOrderId, units: 10_000, price: 108_512 }] });
    expect(standin.ordersCount()).toBe(before + 1);
  });
});

describe("resting orders with protection on fill", () => {
  const USD_CAD = getInstrument("USD_CAD");
  const AUD_USD = getInstrument("AUD_USD");

  it("stop orders: a buy stop fills when the ask reaches its price, a sell stop when the bid does; the trade carries its SL/TP/trailing", async () => {
    let now = 0;
    standin.setQuote("USD_CAD", 1.365, 1.36515);
    const broker = new OandaBroker(new OandaHttp(endpoint, FAST), USD_CAD, () => now);
    const buy = intent({ pair: "USD_CAD", type: "stop", price: 136_600, units: 8_000, stopLoss: 136_200, takeProfit: 137_400, trailingStopPips: 25 });
    expect(await broker.place(buy, QUOTE)).toEqual({ status: "working", fills: [] });
    expect(standin.orderByClientId(buy.clientOrderId)).toMatchObject({
      state: "PENDING",
      body: {
        type: "STOP", instrument: "USD_CAD", units: "8000", price: "1.36600", timeInForce: "GTC", positionFill: "DEFAULT",
        clientExtensions: { id: buy.clientOrderId, tag: "test" },
        stopLossOnFill: { price: "1.36200" }, takeProfitOnFill: { price: "1.37400" }, trailingStopLossOnFill: { distance: "0.00250" },
      },
    });
    standin.setQuote("USD_CAD", 1.36585, 1.36599); // one point short
    now += 2_000;
    expect(await broker.onQuote(QUOTE)).toEqual([]);
    standin.setQuote("USD_CAD", 1.3659, 1.36605);
    now += 2_000;
    const [fill] = await broker.onQuote(QUOTE);
    expect(fill).toMatchObject({ clientOrderId: buy.clientOrderId, side: "buy", units: 8_000, price: 136_605 });
    expect(await broker.openTrades()).toEqual([
      { id: expect.any(String), side: "buy", units: 8_000, price: 136_605, openedAt: expect.any(Number), stopLoss: 136_200, takeProfit: 137_400, trailingStopPips: 25 },
    ]);

    const sell = intent({ pair: "USD_CAD", side: "sell", type: "stop", price: 136_300, units: 8_000 });
    expect(await broker.place(sell, QUOTE)).toEqual({ status: "working", fills: [] });
    expect(standin.orderByClientId(sell.clientOrderId)?.body).toMatchObject({ type: "STOP", units: "-8000", price: "1.36300" });
    standin.setQuote("USD_CAD", 1.363, 1.36315);
    now += 2_000;
    expect(await broker.onQuote(QUOTE)).toEqual([expect.objectContaining({ clientOrderId: sell.clientOrderId, side: "sell", units: 8_000, price: 136_300 })]);
    // The sell closed the buy trade (FIFO), and its SL/TP/trailing went with it.
    expect(await broker.openTrades()).toEqual([]);
    expect(standin.positionUnits("USD_CAD")).toBe(0);
  });

  it("a sell limit with SL/TP/trailing on fill: sent as such, rests (pending at OANDA), fills when the bid reaches it, and its trade carries them", async () => {
    let now = 0;
    standin.setQuote("AUD_USD", 0.66, 0.66012);
    const broker = new OandaBroker(new OandaHttp(endpoint, FAST), AUD_USD, () => now);
    const order = intent({ pair: "AUD_USD", side: "sell", units: 5_000, type: "limit", price: 66_100, stopLoss: 66_500, takeProfit: 65_500, trailingStopPips: 20 });
    expect(await broker.place(order, QUOTE)).toEqual({ status: "working", fills: [] });
    expect(standin.orderByClientId(order.clientOrderId)?.body).toMatchObject({
      type: "LIMIT", units: "-5000", price: "0.66100", timeInForce: "GTC",
      stopLossOnFill: { price: "0.66500" }, takeProfitOnFill: { price: "0.65500" }, trailingStopLossOnFill: { distance: "0.00200" },
    });
    // Resting: OANDA reports it pending, a lookup says working, nothing is filled.
    expect(await new OandaBroker(new OandaHttp(endpoint, FAST), AUD_USD).lookup(order.clientOrderId)).toEqual({ status: "working", fills: [] });
    const pendingBefore = (await readAccount(new OandaHttp(endpoint, FAST), ["AUD_USD"])).pendingOrderCount!;
    expect(pendingBefore).toBeGreaterThanOrEqual(1);
    now += 2_000;
    expect(await broker.onQuote(QUOTE)).toEqual([]);

    standin.setQuote("AUD_USD", 0.6611, 0.66122);
    now += 2_000;
    expect(await broker.onQuote(QUOTE)).toEqual([expect.objectContaining({ clientOrderId: order.clientOrderId, side: "sell", units: 5_000, price: 66_110 })]);
    expect(await broker.openTrades()).toEqual([
      { id: expect.any(String), side: "sell", units: 5_000, price: 66_110, openedAt: expect.any(Number), stopLoss: 66_500, takeProfit: 65_500, trailingStopPips: 20 },
    ]);
    const account = await readAccount(new OandaHttp(endpoint, FAST), ["AUD_USD"]);
    expect(account.trades).toContainEqual({ instrument: "AUD_USD", count: 1, units: -5_000, served: true });
    // The limit order is gone from the pending orders; its trade's three dependent orders came.
    expect(account.pendingOrderCount).toBe(pendingBefore - 1 + 3);
    standin.externalTrade("AUD_USD", 5_000);
    expect(await broker.openTrades()).toEqual([]);
  });
});

describe("resting orders filled in parts or cancelled by OANDA", () => {
  const USD_CHF = getInstrument("USD_CHF");
  const restingBuy = (extra: Partial<OrderIntent> = {}) => intent({ pair: "USD_CHF", type: "limit", price: 88_000, units: 10_000, ...extra });
  const cross = () => standin.setQuote("USD_CHF", 0.8798, 0.87995);
  const away = () => standin.setQuote("USD_CHF", 0.8805, 0.88065);

  it("a limit order filled in two parts gives both fills, then is no longer followed", async () => {
    let now = 0;
    away();
    const broker = new OandaBroker(new OandaHttp(endpoint, FAST), USD_CHF, () => now);
    const order = restingBuy();
    expect(await broker.place(order, QUOTE)).toEqual({ status: "working", fills: [] });
    standin.faults.partialFill = 0.3;
    cross();
    expect(standin.orderByClientId(order.clientOrderId)).toMatchObject({ state: "PENDING", filled: 3_000 });
    now += 2_000;
    const first = await broker.onQuote(QUOTE);
    expect(first).toEqual([expect.objectContaining({ clientOrderId: order.clientOrderId, units: 3_000, price: 87_995 })]);
    away();
    cross();
    now += 2_000;
    const second = await broker.onQuote(QUOTE);
    expect(second).toEqual([expect.objectContaining({ clientOrderId: order.clientOrderId, units: 7_000, price: 87_995 })]);
    expect(second[0]!.id).not.toBe(first[0]!.id);
    expect(standin.orderByClientId(order.clientOrderId)?.state).toBe("FILLED");
    // Filled: nothing left to follow, so no more polling (a new resting order would show it otherwise).
    now += 2_000;
    expect(await broker.poll(QUOTE)).toEqual({ fills: [], cancelled: [] });
    standin.externalTrade("USD_CHF", -10_000);
  });

  it("a market order sent between a resting order's fill and the next poll does not hide that fill", async () => {
    let now = 0;
    away();
    const broker = new OandaBroker(new OandaHttp(endpoint, FAST), USD_CHF, () => now);
    const order = restingBuy();
    await broker.place(order, QUOTE);
    cross();
    away();
    expect(await broker.place(intent({ pair: "USD_CHF", side: "sell", units: 1_000 }), QUOTE)).toMatchObject({ status: "filled" });
    now += 2_000;
    expect(await broker.onQuote(QUOTE)).toEqual([expect.objectContaining({ clientOrderId: order.clientOrderId, units: 10_000 })]);
    standin.externalTrade("USD_CHF", -9_000);
  });

  it("OANDA cancels the rest of a partly filled order: the fill, then the cancellation with OANDA's reason", async () => {
    let now = 0;
    away();
    const broker = new OandaBroker(new OandaHttp(endpoint, FAST), USD_CHF, () => now);
    const order = restingBuy();
    await broker.place(order, QUOTE);
    standin.faults.partialFill = 0.5;
    cross();
    away();
    standin.cancelOrder(order.clientOrderId, "INSUFFICIENT_MARGIN");
    now += 2_000;
    expect(await broker.poll(QUOTE)).toEqual({
      fills: [expect.objectContaining({ clientOrderId: order.clientOrderId, units: 5_000 })],
      cancelled: [{ clientOrderId: order.clientOrderId, reason: "INSUFFICIENT_MARGIN", filledUnits: 5_000 }],
    });
    cross(); // a cancelled order never fills again
    now += 2_000;
    expect(await broker.poll(QUOTE)).toEqual({ fills: [], cancelled: [] });
    expect(standin.positionUnits("USD_CHF")).toBe(5_000);
    standin.externalTrade("USD_CHF", -5_000);
  });
});

describe("lookup by client order id (what a restarted runtime asks)", () => {
  const USD_CHF = getInstrument("USD_CHF");
  const cross = () => standin.setQuote("USD_CHF", 0.8798, 0.87995);
  const away = () => standin.setQuote("USD_CHF", 0.8805, 0.88065);
  const fresh = (now: () => number = () => Date.now()) => new OandaBroker(new OandaHttp(endpoint, FAST), USD_CHF, now);

  it("an order still working is reported working and followed: its fill comes on a later quote", async () => {
    away();
    const order = intent({ pair: "USD_CHF", type: "limit", price: 88_000, units: 4_000 });
    expect(await fresh().place(order, QUOTE)).toEqual({ status: "working", fills: [] });
    let now = 0;
    const restarted = fresh(() => now);
    expect(await restarted.lookup(order.clientOrderId)).toEqual({ status: "working", fills: [] });
    cross();
    now += 2_000;
    expect(await restarted.onQuote(QUOTE)).toEqual([expect.objectContaining({ clientOrderId: order.clientOrderId, units: 4_000, price: 87_995 })]);
    standin.externalTrade("USD_CHF", -4_000);
  });

  it("an order that filled in two parts while the runtime was down: both fills, from the order's transactions", async () => {
    away();
    const order = intent({ pair: "USD_CHF", type: "limit", price: 88_000, units: 10_000 });
    await fresh().place(order, QUOTE);
    standin.faults.partialFill = 0.4;
    cross();
    standin.externalTrade("EUR_USD", 1_000); // other transactions in between
    away();
    cross();
    const answer = await fresh().lookup(order.clientOrderId);
    expect(answer).toEqual({
      status: "filled",
      fills: [
        expect.objectContaining({ id: expect.stringMatching(new RegExp(`^${order.clientOrderId}:t\\d+$`)), side: "buy", units: 4_000, price: 87_995 }),
        expect.objectContaining({ side: "buy", units: 6_000, price: 87_995 }),
      ],
    });
    // The same fills each time (same ids): applied once by the runtime.
    expect(await fresh().lookup(order.clientOrderId)).toEqual(answer);
    standin.externalTrade("USD_CHF", -10_000);
    standin.externalTrade("EUR_USD", -1_000);
  });

  it("an order filled in part while down and still working: the part now, the rest later, never the first part twice", async () => {
    away();
    const order = intent({ pair: "USD_CHF", type: "limit", price: 88_000, units: 10_000 });
    await fresh().place(order, QUOTE);
    standin.faults.partialFill = 0.25;
    cross();
    away();
    let now = 0;
    const restarted = fresh(() => now);
    // Still working: the part filled comes with it, the order is not done.
    expect(await restarted.lookup(order.clientOrderId)).toEqual({ status: "working", fills: [expect.objectContaining({ units: 2_500 })] });
    cross();
    now += 2_000;
    expect(await restarted.onQuote(QUOTE)).toEqual([expect.objectContaining({ clientOrderId: order.clientOrderId, units: 7_500 })]);
    standin.externalTrade("USD_CHF", -10_000);
  });

  it("an order cancelled unfilled is rejected with OANDA's reason; an order OANDA never got is unknown (null)", async () => {
    away();
    const order = intent({ pair: "USD_CHF", type: "limit", price: 88_000, units: 10_000 });
    await fresh().place(order, QUOTE);
    standin.cancelOrder(order.clientOrderId, "CLIENT_REQUEST");
    expect(await fresh().lookup(order.clientOrderId)).toEqual({ status: "rejected", reason: "CLIENT_REQUEST", fills: [] });
    expect(await fresh().lookup("USD_CHF-never-sent")).toBeNull();
  });
});

describe("open trades", () => {
  it("FIFO as OANDA: an opposite fill closes the oldest trade first, reduces the next, and what is left opens a trade", async () => {
    const USD_CHF = getInstrument("USD_CHF");
    standin.setQuote("USD_CHF", 0.8805, 0.88065);
    const broker = new OandaBroker(new OandaHttp(endpoint, FAST), USD_CHF);
    standin.externalTrade("USD_CHF", 1_000);
    standin.externalTrade("USD_CHF", 2_000);
    const [oldest, next] = await broker.openTrades();
    expect([oldest?.units, next?.units]).toEqual([1_000, 2_000]);
    await broker.place(intent({ pair: "USD_CHF", side: "sell", units: 1_500 }), QUOTE);
    expect(await broker.openTrades()).toEqual([{ id: next!.id, side: "buy", units: 1_500, price: 88_065, openedAt: next!.openedAt }]);
    await broker.place(intent({ pair: "USD_CHF", side: "sell", units: 4_000 }), QUOTE);
    expect(await broker.openTrades()).toEqual([expect.objectContaining({ side: "sell", units: 2_500, price: 88_050 })]);
    expect(await broker.openUnits()).toBe(-2_500);
    standin.externalTrade("USD_CHF", 2_500);
  });

  it("reads every open trade of the instrument, past OANDA's page of 500", async () => {
    const NZD_USD = getInstrument("NZD_USD");
    standin.setQuote("NZD_USD", 0.6, 0.60015);
    for (let i = 0; i < 501; i++) standin.externalTrade("NZD_USD", 1);
    const trades = await new OandaBroker(new OandaHttp(endpoint, FAST), NZD_USD).openTrades();
    expect(trades).toHaveLength(501);
    expect(new Set(trades.map((t) => t.id)).size).toBe(501);
    const ids = trades.map((t) => Number(t.id));
    expect(ids).toEqual([...ids].sort((a, b) => a - b)); // oldest first
    standin.externalTrade("NZD_USD", -501);
    expect(await new OandaBroker(new OandaHttp(endpoint, FAST), NZD_USD).openTrades()).toEqual([]);
  });
});

describe("retry policy", () => {
  it("waits at most the exponential bound, capped, and never a negative time", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 30 }), fc.double({ min: 0, max: 0.999999, noNaN: true }), (attempt, r) => {
        const wait = backoffMs(attempt, DEFAULT_RETRY, () => r);
        expect(wait).toBeGreaterThanOrEqual(0);
        expect(wait).toBeLessThan(Math.max(1, Math.min(DEFAULT_RETRY.maxDelayMs, DEFAULT_RETRY.baseDelayMs * 2 ** attempt)));
      }),
    );
  });
});

describe("pricing stream", () => {
  let stream: PricingStream | null = null;
  afterEach(async () => {
    await stream?.stop();
    stream = null;
  });

  it("turns prices into ticks in points, counts heartbeats, skips bad lines", async () => {
    const ticks: { pair: string; tick: Tick }[] = [];
    stream = new PricingStream(endpoint, [EUR_USD, USD_JPY], (pair, tick) => ticks.push({ pair, tick }), { heartbeatTimeoutMs: 1_000, retry: FAST });
    stream.start();
    await expect.poll(() => ticks.length).toBeGreaterThanOrEqual(2); // the current prices on connect
    standin.setQuote("EUR_USD", 1.08601, 1.08611);
    await expect.poll(() => ticks.at(-1)?.tick.bid).toBe(108_601);
    expect(ticks.at(-1)).toMatchObject({ pair: "EUR_USD", tick: { bid: 108_601, ask: 108_611 } });
    standin.sendRawStreamLine("{not json");
    standin.sendRawStreamLine(JSON.stringify({ type: "PRICE", instrument: "EUR_USD", time: "x", tradeable: true, bids: [{ price: "1.1" }], asks: [{ price: "1.2" }] }));
    await expect.poll(() => stream!.state.badLines).toBe(2);
    await expect.poll(() => stream!.state.heartbeats).toBeGreaterThan(0);
    expect(stream.state).toMatchObject({ state: "streaming", connects: 1 });
  });

  it("reconnects when the stream ends, and when it goes silent past the heartbeat timeout", async () => {
    const ticks: Tick[] = [];
    const connectsBefore = standin.streamConnections;
    stream = new PricingStream(endpoint, [EUR_USD], (_pair, tick) => ticks.push(tick), { heartbeatTimeoutMs: 400, retry: FAST });
    standin.faults.dropAfterLines = 2;
    stream.start();
    await expect.poll(() => standin.streamConnections - connectsBefore, { timeout: 5_000 }).toBeGreaterThanOrEqual(2);
    standin.faults.dropAfterLines = null;
    standin.faults.silentAfterLines = 1;
    const silentFrom = standin.streamConnections;
    // Two new connections: the first may follow a drop from before the switch; the second follows a silent one.
    await expect.poll(() => standin.streamConnections - silentFrom, { timeout: 5_000 }).toBeGreaterThanOrEqual(2);
    expect(stream.state.lastError).toBe("no line for 400 ms");
    standin.faults.silentAfterLines = null;
    await expect.poll(() => stream!.state.state, { timeout: 5_000 }).toBe("streaming");
    const n = ticks.length;
    standin.setQuote("EUR_USD", 1.0871, 1.0872);
    await expect.poll(() => ticks.length, { timeout: 3_000 }).toBeGreaterThan(n);
  });
});
