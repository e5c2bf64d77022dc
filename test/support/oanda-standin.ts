/**
 * A local stand-in for OANDA's v20 servers (this machine cannot reach them),
 * speaking the protocol as OANDA publishes it (github.com/oanda/v20-openapi,
 * developer.oanda.com's development guide and best practices) for what the
 * adapter uses. Where OANDA's text allows a harsher behaviour, this server
 * does the harsher one:
 * - a client order id is refused only while another order under it is
 *   *pending* (CLIENT_ORDER_ID_ALREADY_EXISTS: "already assigned to another
 *   pending Order"): a filled or cancelled order's id is taken again, and the
 *   order sent again fills again; `@id` finds the newest order under the id;
 * - `transactions/sinceid` answers at most `sinceIdPageMax` transactions (users
 *   report 1,000), while its lastTransactionID is the account's last;
 * - prices may be `tradeable: false` (a market order is then cancelled with
 *   MARKET_HALTED, and resting orders do not trigger) and a side's list may be
 *   empty (no liquidity: a market order needing it is cancelled);
 * - every time has nine decimals (nanoseconds);
 * - FOK market orders fill whole or not at all (a partial fill cancels them);
 * - 120 REST requests a second and 2 new stream connections a second, 20
 *   streams at once: the excess is answered 429;
 * - a wrong token is answered 401 on every route, the stream included.
 * What it serves: account summary,
 * instruments, orders (market FOK at the current quote; limit and stop resting
 * until a quote crosses them: a buy limit fills when ask <= price, a sell limit
 * when bid >= price, a buy stop when ask >= price, a sell stop when bid <=
 * price), order lookup by client id (`@id`), transactions by id, in an id range
 * and since an id, trades (a non-hedging account: a fill first closes or reduces
 * the instrument's opposite trades, oldest first, and opens a trade with what is
 * left; SL/TP/trailing on fill become the new trade's dependent orders, recorded
 * but never triggered here), positions (the sum of the open trades), and the
 * pricing stream (JSON lines, heartbeats). Faults on demand: slow answers, 5xx,
 * an answer lost after the order was taken or stalled after its headers,
 * rejections, partial fills, cancellations, and a stream that drops or goes silent.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";

type Json = Record<string, unknown>;

export interface Faults {
  /** Delay before every REST answer. */
  delayMs: number;
  /** The next N REST calls answer 503 without doing anything. */
  fail5xx: number;
  /** The next N REST calls answer 429 without doing anything. */
  fail429: number;
  /** The next order is taken, but its answer never comes (the socket is destroyed). */
  loseNextOrderAnswer: boolean;
  /** The next order is refused with this v20 reject reason. */
  rejectNext: string | null;
  /** The next cancel is refused (404 ORDER_CANCEL_REJECT) though the order is pending: it keeps working. */
  refuseNextCancel: boolean;
  /**
   * The next fill takes this share of the units left: a market order's rest is
   * cancelled, a resting order's rest keeps working.
   */
  partialFill: number | null;
  /** The next REST answer sends its headers and half its body, then nothing more (whatever the call did stays done). */
  stallBody: boolean;
  /** Stream: stop sending anything (heartbeats included) after this many lines. */
  silentAfterLines: number | null;
  /** Stream: end the answer after this many lines. */
  dropAfterLines: number | null;
  /** The next order POST is answered with this status (429, 503, 403, ...) and not taken. */
  orderStatus: number | null;
  /** Order POSTs are taken only after this delay, then answered (a client that gave up meanwhile does not see it). */
  delayOrdersMs: number;
  /** Every stream request is answered with this status while set (401, 429, 503, ...). */
  streamStatus: number | null;
}

interface Order {
  id: string;
  clientId: string;
  instrument: string;
  type: "MARKET" | "LIMIT" | "STOP";
  /** Signed, as requested. */
  units: number;
  /** Signed units filled so far (a resting order may fill in parts). */
  filled: number;
  price: number | null;
  /** timeInForce GTD: OANDA cancels the order at this time (TIME_IN_FORCE_EXPIRED) unless filled. */
  gtdMs: number | null;
  state: "PENDING" | "FILLED" | "CANCELLED";
  fillingTransactionID?: string;
  cancellingTransactionID?: string;
  body: Json;
}

/** A dependent order of a trade, made from the opening order's stopLossOnFill / takeProfitOnFill / trailingStopLossOnFill. */
interface Dependent {
  id: string;
  price?: string;
  distance?: string;
}

interface Trade {
  /** The id of the fill that opened it, as OANDA numbers trades. */
  id: string;
  instrument: string;
  price: number;
  openTime: string;
  initialUnits: number;
  /** Signed; 0 once closed (then dropped from the open trades). */
  currentUnits: number;
  realizedPL: number;
  stopLossOrder?: Dependent;
  takeProfitOrder?: Dependent;
  trailingStopLossOrder?: Dependent;
}

const precisionOf = (instrument: string) => (instrument.endsWith("_JPY") ? 3 : 5);
const NO_FAULTS: Faults = {
  delayMs: 0, fail5xx: 0, fail429: 0, loseNextOrderAnswer: false, rejectNext: null, refuseNextCancel: false, partialFill: null, stallBody: false, silentAfterLines: null, dropAfterLines: null,
  orderStatus: null, delayOrdersMs: 0, streamStatus: null,
};

/** OANDA's development guide: 120 REST requests a second, 2 new connections a second, 20 streams at once. */
const REST_PER_SECOND = 120;
const CONNECTIONS_PER_SECOND = 2;
const STREAMS_MAX = 20;
/** Requests remembered for tests to inspect. */
const LOG_MAX = 20_000;

/** A v20 time as OANDA writes it: RFC 3339, UTC, nine decimals of a second. */
export function v20Time(ms: number = Date.now()): string {
  const iso = new Date(ms).toISOString(); // ...HH:MM:SS.mmmZ
  const belowMs = Math.floor((performance.now() % 1) * 1e6);
  return `${iso.slice(0, -1)}${String(belowMs).padStart(6, "0")}Z`;
}

/** A REST call or stream request as the server saw it. */
export interface Seen {
  at: number;
  method: string;
  path: string;
  status: number;
}

interface Quote {
  /** Null: no liquidity on that side (its list is empty). */
  bid: number | null;
  ask: number | null;
  tradeable: boolean;
  time: string;
}

export class OandaStandIn {
  readonly accountId = "101-004-1234567-001";
  readonly token = "standin-token-0123456789abcdef";
  faults: Faults = { ...NO_FAULTS };
  /** The most transactions one `sinceid` answer carries. */
  sinceIdPageMax = 1_000;
  /** REST answer times as the server saw them (request in to answer written), ms. */
  readonly answerMs: number[] = [];
  /** Every request, REST and stream, oldest first (the last LOG_MAX). */
  readonly seen: Seen[] = [];
  /** Stream requests answered with a stream. */
  streamConnections = 0;
  private server: http.Server | null = null;
  private nextId = 1000;
  private readonly transactions: Json[] = [];
  private readonly orders = new Map<string, Order>();
  private readonly quotes = new Map<string, Quote>();
  /** Open trades of every instrument, oldest first. */
  private trades: Trade[] = [];
  private readonly streams = new Set<{ instruments: Set<string>; write: (line: Json) => void; end: () => void }>();
  private heartbeat: ReturnType<typeof setInterval> | null = null;

  constructor(private readonly heartbeatMs = 5_000) {}

  async start(): Promise<string> {
    this.server = http.createServer((req, res) => void this.handle(req, res));
    this.server.keepAliveTimeout = 30_000;
    await new Promise<void>((r) => this.server!.listen(0, "127.0.0.1", r));
    this.heartbeat = setInterval(() => {
      this.expireOrders();
      this.broadcast({ type: "HEARTBEAT", time: v20Time() });
    }, this.heartbeatMs);
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.server?.closeAllConnections();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }

  /**
   * A new price: streamed to subscribers; resting orders it crosses are
   * filled while it is tradeable. A null side has no liquidity (an empty list).
   */
  setQuote(instrument: string, bid: number | null, ask: number | null, tradeable = true): void {
    const quote: Quote = { bid, ask, tradeable, time: v20Time() };
    this.quotes.set(instrument, quote);
    this.broadcast(this.priceLine(instrument, quote));
    if (!tradeable || bid === null || ask === null) return;
    this.expireOrders();
    for (const o of this.orders.values()) {
      if (o.state !== "PENDING" || o.instrument !== instrument || o.price === null) continue;
      const buy = o.units > 0;
      const crossed = o.type === "LIMIT" ? (buy ? ask <= o.price : bid >= o.price) : buy ? ask >= o.price : bid <= o.price;
      if (!crossed) continue;
      const left = o.units - o.filled;
      const share = this.faults.partialFill;
      this.faults.partialFill = null;
      this.fill(o, buy ? ask : bid, share === null ? left : Math.trunc(left * share), o.type === "LIMIT" ? "LIMIT_ORDER" : "STOP_ORDER");
    }
  }

  /** GTD orders whose time has come are cancelled (OANDA does it on its clock, whether or not a price moves). */
  expireOrders(nowMs = Date.now()): void {
    for (const o of this.orders.values()) if (o.state === "PENDING" && o.gtdMs !== null && nowMs >= o.gtdMs) this.cancel(o, "TIME_IN_FORCE_EXPIRED");
  }

  /** The same price, now (not) tradeable: a halt, or the market closing. */
  setTradeable(instrument: string, tradeable: boolean): void {
    const q = this.quotes.get(instrument);
    if (!q) throw new Error(`no price for ${instrument} yet`);
    this.setQuote(instrument, q.bid, q.ask, tradeable);
  }

  /** Orders sent under a client id, oldest first (more than one: the id was taken again after its order was done). */
  ordersByClientId(clientId: string): Order[] {
    return [...this.orders.values()].filter((o) => o.clientId === clientId);
  }

  /** Requests seen since `from` (ms) matching method and path prefix. */
  requestsSince(from: number, method?: string, pathPrefix?: string): Seen[] {
    return this.seen.filter((r) => r.at >= from && (!method || r.method === method) && (!pathPrefix || r.path.startsWith(pathPrefix)));
  }

  /** OANDA cancels a pending order (by hand on the platform, margin, a linked trade closed, ...). */
  cancelOrder(clientId: string, reason = "CLIENT_REQUEST"): void {
    const o = this.orderByClientId(clientId);
    if (!o || o.state !== "PENDING") throw new Error(`no pending order ${clientId}`);
    this.cancel(o, reason);
  }

  /** Default faults (nothing goes wrong). */
  static noFaults(): Faults {
    return { ...NO_FAULTS };
  }

  /** End every open pricing stream now (as a network drop would); clients must reconnect. */
  dropStreams(): void {
    for (const s of [...this.streams]) s.end();
  }

  /** Raw lines for the stream (to test bad input). */
  sendRawStreamLine(text: string): void {
    for (const s of this.streams) s.write({ __raw: text });
  }

  /** The newest order under a client id (as `GET /orders/@id` finds it). */
  orderByClientId(clientId: string): Order | undefined {
    return this.ordersByClientId(clientId).at(-1);
  }

  /** The account's net units in an instrument (longs positive): the sum of its open trades. */
  positionUnits(instrument: string): number {
    return this.trades.filter((t) => t.instrument === instrument).reduce((sum, t) => sum + t.currentUnits, 0);
  }

  /** Open trades of an instrument, oldest first. */
  openTradesOf(instrument: string): readonly Readonly<Trade>[] {
    return this.trades.filter((t) => t.instrument === instrument);
  }

  /** A trade nobody in the runtime made (by hand on the platform, or another system on the account). */
  externalTrade(instrument: string, units: number): void {
    const order: Order = { id: this.id(), clientId: "", instrument, type: "MARKET", units, filled: 0, price: null, gtdMs: null, state: "PENDING", body: {} };
    const quote = this.quotes.get(instrument);
    this.fill(order, (units > 0 ? quote?.ask : quote?.bid) ?? 1, units, "MARKET_ORDER");
  }

  ordersCount(): number {
    return this.orders.size;
  }

  private id(): string {
    return String(++this.nextId);
  }

  private lastId(): string {
    return String(this.nextId);
  }

  /**
   * Fill `units` (signed) of an order. As on a non-hedging (FIFO) account: the
   * instrument's opposite trades are closed or reduced first, oldest first,
   * and what is left opens a new trade, which gets the order's on-fill
   * protection as dependent orders (their transactions follow the fill).
   */
  private fill(o: Order, price: number, units: number, reason: string): Json {
    const p = precisionOf(o.instrument);
    const time = v20Time();
    const tx: Json = {
      type: "ORDER_FILL", id: this.id(), time, accountID: this.accountId, orderID: o.id, ...(o.clientId ? { clientOrderID: o.clientId } : {}),
      instrument: o.instrument, units: String(units), fullVWAP: price.toFixed(p), price: price.toFixed(p), commission: "0.0000", financing: "0.0000",
      pl: "0.0000", lossQuoteHomeConversionFactor: "1", gainQuoteHomeConversionFactor: "1", reason,
    };
    let left = units;
    const closed: Json[] = [];
    for (const t of this.trades) {
      if (left === 0) break;
      if (t.instrument !== o.instrument || Math.sign(t.currentUnits) === Math.sign(left)) continue;
      // Units of the fill that go against this trade, signed as the fill.
      const against = Math.sign(left) * Math.min(Math.abs(left), Math.abs(t.currentUnits));
      const pl = (price - t.price) * -against;
      t.currentUnits += against;
      t.realizedPL += pl;
      left -= against;
      const change = { tradeID: t.id, units: String(against), price: price.toFixed(p), realizedPL: pl.toFixed(4), financing: "0.0000" };
      if (t.currentUnits === 0) closed.push(change);
      else tx.tradeReduced = change;
    }
    if (closed.length > 0) tx.tradesClosed = closed;
    this.trades = this.trades.filter((t) => t.currentUnits !== 0);
    this.transactions.push(tx);
    if (left !== 0) {
      const trade: Trade = { id: tx.id as string, instrument: o.instrument, price, openTime: time, initialUnits: left, currentUnits: left, realizedPL: 0 };
      tx.tradeOpened = { tradeID: trade.id, units: String(left), price: price.toFixed(p) };
      this.trades.push(trade);
      const onFill = (key: string, type: string) => {
        const spec = o.body[key] as { price?: string; distance?: string } | undefined;
        if (!spec) return undefined;
        const dependent = { id: this.id(), ...spec };
        this.transactions.push({ type, id: dependent.id, time, tradeID: trade.id, ...spec, timeInForce: "GTC", reason: "ON_FILL" });
        return dependent;
      };
      const stopLoss = onFill("stopLossOnFill", "STOP_LOSS_ORDER");
      const takeProfit = onFill("takeProfitOnFill", "TAKE_PROFIT_ORDER");
      const trailing = onFill("trailingStopLossOnFill", "TRAILING_STOP_LOSS_ORDER");
      if (stopLoss) trade.stopLossOrder = stopLoss;
      if (takeProfit) trade.takeProfitOrder = takeProfit;
      if (trailing) trade.trailingStopLossOrder = trailing;
    }
    o.filled += units;
    // A resting order filled in part keeps working for the rest.
    if (o.type === "MARKET" || o.filled === o.units) {
      o.state = "FILLED";
      o.fillingTransactionID = tx.id as string;
    }
    return tx;
  }

  private cancel(o: Order, reason: string): Json {
    const tx = { type: "ORDER_CANCEL", id: this.id(), time: v20Time(), orderID: o.id, ...(o.clientId ? { clientOrderID: o.clientId } : {}), reason };
    this.transactions.push(tx);
    o.state = "CANCELLED";
    o.cancellingTransactionID = tx.id;
    return tx;
  }

  private tradeJson(t: Trade): Json {
    const p = precisionOf(t.instrument);
    const quote = this.quotes.get(t.instrument);
    const mark = (t.currentUnits > 0 ? quote?.bid : quote?.ask) ?? t.price;
    const dependent = (type: string, d: Dependent | undefined) => (d ? { id: d.id, type, tradeID: t.id, state: "PENDING", timeInForce: "GTC", ...(d.price ? { price: d.price } : {}), ...(d.distance ? { distance: d.distance } : {}) } : undefined);
    return {
      id: t.id, instrument: t.instrument, price: t.price.toFixed(p), openTime: t.openTime, state: "OPEN",
      initialUnits: String(t.initialUnits), currentUnits: String(t.currentUnits), realizedPL: t.realizedPL.toFixed(4),
      unrealizedPL: ((mark - t.price) * t.currentUnits).toFixed(4), financing: "0.0000",
      ...(t.stopLossOrder ? { stopLossOrder: dependent("STOP_LOSS", t.stopLossOrder) } : {}),
      ...(t.takeProfitOrder ? { takeProfitOrder: dependent("TAKE_PROFIT", t.takeProfitOrder) } : {}),
      ...(t.trailingStopLossOrder ? { trailingStopLossOrder: dependent("TRAILING_STOP_LOSS", t.trailingStopLossOrder) } : {}),
    };
  }

  /** Pending orders: the resting ones sent, and the dependent orders of open trades. */
  private pendingCount(): number {
    const dependents = this.trades.reduce((n, t) => n + [t.stopLossOrder, t.takeProfitOrder, t.trailingStopLossOrder].filter(Boolean).length, 0);
    return [...this.orders.values()].filter((o) => o.state === "PENDING").length + dependents;
  }

  /** A ClientPrice as the stream writes it; an empty list for a side with no liquidity. */
  private priceLine(instrument: string, q: Quote): Json {
    const p = precisionOf(instrument);
    const side = (price: number | null) => (price === null ? [] : [{ price: price.toFixed(p), liquidity: 10_000_000 }]);
    const closeout = q.bid ?? q.ask ?? 0;
    return {
      type: "PRICE", instrument, time: q.time, tradeable: q.tradeable, bids: side(q.bid), asks: side(q.ask),
      closeoutBid: (q.bid ?? closeout).toFixed(p), closeoutAsk: (q.ask ?? closeout).toFixed(p),
    };
  }

  private log(method: string, path: string, status: number): void {
    this.seen.push({ at: Date.now(), method, path, status });
    if (this.seen.length > LOG_MAX) this.seen.splice(0, this.seen.length - LOG_MAX);
  }

  /** Whether `limit` requests of this kind were already seen in the last second (the one now would be one too many). */
  private overLimit(limit: number, isKind: (r: Seen) => boolean): boolean {
    const from = Date.now() - 1_000;
    let n = 0;
    for (let i = this.seen.length - 1; i >= 0 && this.seen[i]!.at > from; i--) if (isKind(this.seen[i]!)) n++;
    return n >= limit;
  }

  private broadcast(line: Json): void {
    for (const s of this.streams) {
      if (line.type === "PRICE" && !s.instruments.has(line.instrument as string)) continue;
      s.write(line);
    }
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const started = performance.now();
    const url = new URL(req.url ?? "/", "http://x");
    const prefix = `/v3/accounts/${this.accountId}`;
    const path = url.pathname.startsWith(prefix) ? url.pathname.slice(prefix.length) : url.pathname;
    const streaming = path === "/pricing/stream";
    const method = streaming ? "STREAM" : (req.method ?? "GET");
    const send = (status: number, body: Json) => {
      this.log(method, path, status);
      res.writeHead(status, { "content-type": "application/json", "lastTransactionID": this.lastId() });
      const text = JSON.stringify(body);
      if (this.faults.stallBody && !streaming) {
        // Headers and a first part out, the rest never: the client's timeout must cover reading the body.
        this.faults.stallBody = false;
        res.flushHeaders();
        res.write(text.slice(0, text.length >> 1));
        return;
      }
      res.end(text);
      this.answerMs.push(performance.now() - started);
    };
    // OANDA's limits, counted before anything else (a refused request still counts).
    if (streaming) {
      if (this.overLimit(CONNECTIONS_PER_SECOND, (r) => r.method === "STREAM")) return send(429, { errorMessage: "Too many new connections: at most 2 a second" });
      if (this.streams.size >= STREAMS_MAX) return send(429, { errorMessage: `Too many active streams: at most ${STREAMS_MAX}` });
    } else if (this.overLimit(REST_PER_SECOND, (r) => r.method !== "STREAM")) {
      return send(429, { errorMessage: "Requests exceeded the rate limit: at most 120 a second" });
    }
    if (req.headers.authorization !== `Bearer ${this.token}`) return send(401, { errorMessage: "Insufficient authorization to perform request." });
    if (!url.pathname.startsWith(prefix)) return send(404, { errorMessage: "Invalid value specified for 'accountID'" });
    if (streaming) {
      if (this.faults.streamStatus !== null) return send(this.faults.streamStatus, { errorMessage: `stream refused (${this.faults.streamStatus})` });
      return this.stream(url, res);
    }

    const body = await new Promise<string>((resolve) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    });
    if (this.faults.delayMs > 0) await new Promise((r) => setTimeout(r, this.faults.delayMs));
    if (this.faults.fail5xx > 0) {
      this.faults.fail5xx--;
      return send(503, { errorMessage: "Service Unavailable" });
    }
    if (this.faults.fail429 > 0) {
      this.faults.fail429--;
      return send(429, { errorMessage: "Requests exceeded the rate limit" });
    }
    if (req.method === "GET" && path === "/summary") {
      return send(200, { account: { id: this.accountId, currency: "USD", balance: "100000.0000", NAV: "100000.0000", unrealizedPL: "0.0000", marginAvailable: "100000.0000", openTradeCount: this.trades.length, openPositionCount: new Set(this.trades.map((t) => t.instrument)).size, pendingOrderCount: this.pendingCount(), lastTransactionID: this.lastId() }, lastTransactionID: this.lastId() });
    }
    if (req.method === "GET" && path === "/instruments") {
      const wanted = url.searchParams.get("instruments")?.split(",");
      const all = ["EUR_USD", "USD_JPY", "GBP_USD", "AUD_USD", "USD_CHF", "USD_CAD", "EUR_JPY", "GBP_JPY"].map((name) => ({
        name, type: "CURRENCY", displayPrecision: precisionOf(name), pipLocation: name.endsWith("_JPY") ? -2 : -4,
      }));
      return send(200, { instruments: wanted ? all.filter((i) => wanted.includes(i.name)) : all, lastTransactionID: this.lastId() });
    }
    if (req.method === "POST" && path === "/orders") {
      if (this.faults.orderStatus !== null) {
        const status = this.faults.orderStatus;
        this.faults.orderStatus = null;
        return send(status, { errorMessage: `order not taken (${status})` });
      }
      if (this.faults.delayOrdersMs > 0) await new Promise((r) => setTimeout(r, this.faults.delayOrdersMs));
      return this.createOrder(JSON.parse(body) as { order: Json }, send, res);
    }
    // PUT /orders/{specifier}/cancel: a PENDING order is cancelled (reason CLIENT_REQUEST); any other
    // (filled, cancelled already, unknown) is a 404 with an ORDER_CANCEL_REJECT, as v20 documents.
    const cancelBy = /^\/orders\/(@?)([^/]+)\/cancel$/.exec(path);
    if (req.method === "PUT" && cancelBy) {
      const key = decodeURIComponent(cancelBy[2]!);
      const o = cancelBy[1] ? this.orderByClientId(key) : this.orders.get(key);
      const refused = this.faults.refuseNextCancel;
      this.faults.refuseNextCancel = false;
      if (!o || o.state !== "PENDING" || refused) {
        const reject = { type: "ORDER_CANCEL_REJECT", id: this.id(), time: v20Time(), ...(o ? { orderID: o.id } : {}), rejectReason: o ? "ORDER_NOT_CANCELABLE" : "ORDER_DOESNT_EXIST" };
        this.transactions.push(reject);
        return send(404, { orderCancelRejectTransaction: reject, relatedTransactionIDs: [reject.id], lastTransactionID: this.lastId(), errorCode: reject.rejectReason, errorMessage: "The Order cannot be cancelled" });
      }
      const tx = this.cancel(o, "CLIENT_REQUEST");
      return send(200, { orderCancelTransaction: tx, relatedTransactionIDs: [tx.id], lastTransactionID: this.lastId() });
    }
    const byClient = /^\/orders\/@(.+)$/.exec(path);
    if (req.method === "GET" && byClient) {
      const o = this.orderByClientId(decodeURIComponent(byClient[1]!));
      if (!o) return send(404, { errorMessage: "The Order specified does not exist", errorCode: "NO_SUCH_ORDER" });
      return send(200, { order: { id: o.id, type: o.type, instrument: o.instrument, units: String(o.units), state: o.state, clientExtensions: { id: o.clientId }, ...(o.fillingTransactionID ? { fillingTransactionID: o.fillingTransactionID } : {}), ...(o.cancellingTransactionID ? { cancellingTransactionID: o.cancellingTransactionID } : {}) }, lastTransactionID: this.lastId() });
    }
    const txById = /^\/transactions\/(\d+)$/.exec(path);
    if (req.method === "GET" && txById) {
      const tx = this.transactions.find((t) => t.id === txById[1]);
      return tx ? send(200, { transaction: tx, lastTransactionID: this.lastId() }) : send(404, { errorMessage: "The Transaction specified does not exist" });
    }
    if (req.method === "GET" && path === "/transactions/sinceid") {
      // A capped page, oldest first; lastTransactionID is still the account's last, past the page's end.
      const since = Number(url.searchParams.get("id"));
      const page = this.transactions.filter((t) => Number(t.id) > since).slice(0, this.sinceIdPageMax);
      return send(200, { transactions: page, lastTransactionID: this.lastId() });
    }
    if (req.method === "GET" && path === "/transactions/idrange") {
      // from and to inclusive; `type` an optional comma-separated filter; at most 1,000 ids asked at once.
      const from = Number(url.searchParams.get("from"));
      const to = Number(url.searchParams.get("to"));
      const types = url.searchParams.get("type")?.split(",");
      if (!(from >= 1 && to >= from && to - from < 1_000)) return send(400, { errorMessage: "Invalid value specified for 'from' or 'to'" });
      const inRange = this.transactions.filter((t) => Number(t.id) >= from && Number(t.id) <= to && (!types || types.includes(t.type as string)));
      return send(200, { transactions: inRange, lastTransactionID: this.lastId() });
    }
    // Open trades, newest first: all of them, or by instrument through /trades (count 50 by default, at most 500, before an id).
    if (req.method === "GET" && path === "/openTrades") return send(200, { trades: [...this.trades].reverse().map((t) => this.tradeJson(t)), lastTransactionID: this.lastId() });
    if (req.method === "GET" && path === "/trades") {
      if ((url.searchParams.get("state") ?? "OPEN") !== "OPEN") return send(400, { errorMessage: "the stand-in keeps open trades only" });
      const instrument = url.searchParams.get("instrument");
      const before = Number(url.searchParams.get("beforeID") ?? Infinity);
      const count = Math.min(500, Number(url.searchParams.get("count") ?? 50));
      const trades = [...this.trades].reverse().filter((t) => (!instrument || t.instrument === instrument) && Number(t.id) < before).slice(0, count);
      return send(200, { trades: trades.map((t) => this.tradeJson(t)), lastTransactionID: this.lastId() });
    }
    const position = /^\/positions\/([A-Z]{3}_[A-Z]{3})$/.exec(path);
    if (req.method === "GET" && position) {
      const net = this.positionUnits(position[1]!);
      return send(200, { position: { instrument: position[1], long: { units: String(Math.max(net, 0)) }, short: { units: String(Math.min(net, 0)) } }, lastTransactionID: this.lastId() });
    }
    if (req.method === "GET" && path === "/openPositions") {
      // By instrument name: an order that does not depend on which trade happens to be oldest.
      const open = [...new Set(this.trades.map((t) => t.instrument))].sort().map((instrument) => [instrument, this.positionUnits(instrument)] as const);
      return send(200, { positions: open.map(([instrument, n]) => ({ instrument, long: { units: String(Math.max(n, 0)) }, short: { units: String(Math.min(n, 0)) } })), lastTransactionID: this.lastId() });
    }
    return send(404, { errorMessage: `no route ${req.method} ${path}` });
  }

  private createOrder(req: { order: Json }, send: (status: number, body: Json) => void, res: http.ServerResponse): void {
    const spec = req.order;
    const clientId = (spec.clientExtensions as { id?: string } | undefined)?.id ?? "";
    const instrument = String(spec.instrument);
    // Refused only while an order under the id is pending: a filled one's id is taken again.
    if (clientId && this.ordersByClientId(clientId).some((o) => o.state === "PENDING")) {
      const tx = { type: `${String(spec.type)}_ORDER_REJECT`, id: this.id(), time: v20Time(), rejectReason: "CLIENT_ORDER_ID_ALREADY_EXISTS" };
      this.transactions.push(tx);
      return send(400, { orderRejectTransaction: tx, errorCode: "CLIENT_ORDER_ID_ALREADY_EXISTS", errorMessage: "The client Order ID specified is already assigned", lastTransactionID: this.lastId() });
    }
    if (this.faults.rejectNext) {
      const reason = this.faults.rejectNext;
      this.faults.rejectNext = null;
      const tx = { type: `${String(spec.type)}_ORDER_REJECT`, id: this.id(), time: v20Time(), rejectReason: reason };
      this.transactions.push(tx);
      return send(400, { orderRejectTransaction: tx, errorCode: reason, errorMessage: `order rejected: ${reason}`, lastTransactionID: this.lastId() });
    }
    const type = spec.type as Order["type"];
    // GTD needs a gtdTime in the future (v20: TIME_IN_FORCE_GTD_TIMESTAMP_MISSING / _IN_PAST); a market order may not be GTD.
    let gtdMs: number | null = null;
    if (spec.timeInForce === "GTD") {
      gtdMs = typeof spec.gtdTime === "string" ? Date.parse(spec.gtdTime) : Number.NaN;
      const reason = type === "MARKET" ? "TIME_IN_FORCE_INVALID" : Number.isNaN(gtdMs) ? "TIME_IN_FORCE_GTD_TIMESTAMP_MISSING" : gtdMs <= Date.now() ? "TIME_IN_FORCE_GTD_TIMESTAMP_IN_PAST" : null;
      if (reason) {
        const tx = { type: `${String(spec.type)}_ORDER_REJECT`, id: this.id(), time: v20Time(), rejectReason: reason };
        this.transactions.push(tx);
        return send(400, { orderRejectTransaction: tx, errorCode: reason, errorMessage: `order rejected: ${reason}`, lastTransactionID: this.lastId() });
      }
    }
    const order: Order = { id: this.id(), clientId, instrument, type, units: Number(spec.units), filled: 0, price: spec.price === undefined ? null : Number(spec.price), gtdMs, state: "PENDING", body: spec };
    this.orders.set(order.id, order);
    const create = { type: `${type}_ORDER`, id: order.id, time: v20Time(), instrument, units: spec.units, clientExtensions: spec.clientExtensions };
    this.transactions.push(create);
    const answer: Json = { orderCreateTransaction: create };
    if (type === "MARKET") {
      const quote = this.quotes.get(instrument);
      const price = order.units > 0 ? quote?.ask : quote?.bid;
      const share = this.faults.partialFill;
      this.faults.partialFill = null;
      if (!quote || !quote.tradeable) {
        answer.orderCancelTransaction = this.cancel(order, "MARKET_HALTED");
      } else if (price === null || price === undefined || (share !== null && spec.timeInForce === "FOK")) {
        // Fill or kill: never in part. No liquidity on the side needed, or not all of it: the whole order goes.
        answer.orderCancelTransaction = this.cancel(order, "INSUFFICIENT_LIQUIDITY");
      } else {
        const units = share === null ? order.units : Math.trunc(order.units * share);
        answer.orderFillTransaction = this.fill(order, price, units, "MARKET_ORDER");
        if (units !== order.units) {
          // IOC: the rest goes; the order itself stays FILLED, as its fill says.
          const cancel = { type: "ORDER_CANCEL", id: this.id(), time: v20Time(), orderID: order.id, ...(clientId ? { clientOrderID: clientId } : {}), reason: "INSUFFICIENT_LIQUIDITY" };
          this.transactions.push(cancel);
          answer.orderCancelTransaction = cancel;
        }
      }
    }
    answer.relatedTransactionIDs = [];
    answer.lastTransactionID = this.lastId();
    if (this.faults.loseNextOrderAnswer) {
      this.faults.loseNextOrderAnswer = false;
      res.socket?.destroy();
      return;
    }
    send(201, answer);
  }

  private stream(url: URL, res: http.ServerResponse): void {
    this.log("STREAM", "/pricing/stream", 200);
    this.streamConnections++;
    const instruments = new Set((url.searchParams.get("instruments") ?? "").split(",").filter(Boolean));
    res.writeHead(200, { "content-type": "application/octet-stream", "transfer-encoding": "chunked" });
    let lines = 0;
    const entry = {
      instruments,
      write: (line: Json) => {
        const { silentAfterLines, dropAfterLines } = this.faults;
        if (silentAfterLines !== null && lines >= silentAfterLines) return;
        res.write(`${"__raw" in line ? String(line.__raw) : JSON.stringify(line)}\n`);
        lines++;
        if (dropAfterLines !== null && lines >= dropAfterLines) entry.end();
      },
      end: () => {
        this.streams.delete(entry);
        res.end();
      },
    };
    this.streams.add(entry);
    res.on("close", () => this.streams.delete(entry));
    // First line at once, as OANDA sends the current price of each instrument on connect.
    for (const name of instruments) {
      const q = this.quotes.get(name);
      if (q) entry.write(this.priceLine(name, q));
    }
  }
}
