/**
 * A local stand-in for OANDA's v20 servers (this machine cannot reach them),
 * speaking the documented protocol for what the adapter uses: account summary,
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
  /** The next order is taken, but its answer never comes (the socket is destroyed). */
  loseNextOrderAnswer: boolean;
  /** The next order is refused with this v20 reject reason. */
  rejectNext: string | null;
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
const NO_FAULTS: Faults = { delayMs: 0, fail5xx: 0, loseNextOrderAnswer: false, rejectNext: null, partialFill: null, stallBody: false, silentAfterLines: null, dropAfterLines: null };

export class OandaStandIn {
  readonly accountId = "101-004-1234567-001";
  readonly token = "standin-token-0123456789abcdef";
  faults: Faults = { ...NO_FAULTS };
  /** REST answer times as the server saw them (request in to answer written), ms. */
  readonly answerMs: number[] = [];
  streamConnections = 0;
  private server: http.Server | null = null;
  private nextId = 1000;
  private readonly transactions: Json[] = [];
  private readonly orders = new Map<string, Order>();
  private readonly quotes = new Map<string, { bid: number; ask: number; time: string }>();
  /** Open trades of every instrument, oldest first. */
  private trades: Trade[] = [];
  private readonly streams = new Set<{ instruments: Set<string>; write: (line: Json) => void; end: () => void }>();
  private heartbeat: ReturnType<typeof setInterval> | null = null;

  constructor(private readonly heartbeatMs = 5_000) {}

  async start(): Promise<string> {
    this.server = http.createServer((req, res) => void this.handle(req, res));
    this.server.keepAliveTimeout = 30_000;
    await new Promise<void>((r) => this.server!.listen(0, "127.0.0.1", r));
    this.heartbeat = setInterval(() => this.broadcast({ type: "HEARTBEAT", time: new Date().toISOString() }), this.heartbeatMs);
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.server?.closeAllConnections();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }

  /** A new price: streamed to subscribers; resting orders it crosses are filled. */
  setQuote(instrument: string, bid: number, ask: number): void {
    const time = new Date().toISOString();
    this.quotes.set(instrument, { bid, ask, time });
    const p = precisionOf(instrument);
    this.broadcast({ type: "PRICE", instrument, time, tradeable: true, bids: [{ price: bid.toFixed(p), liquidity: 1e7 }], asks: [{ price: ask.toFixed(p), liquidity: 1e7 }], closeoutBid: bid.toFixed(p), closeoutAsk: ask.toFixed(p) });
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

  orderByClientId(clientId: string): Order | undefined {
    return [...this.orders.values()].find((o) => o.clientId === clientId);
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
    const order: Order = { id: this.id(), clientId: "", instrument, type: "MARKET", units, filled: 0, price: null, state: "PENDING", body: {} };
    const quote = this.quotes.get(instrument);
    this.fill(order, quote ? (units > 0 ? quote.ask : quote.bid) : 1, units, "MARKET_ORDER");
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
    const time = new Date().toISOString();
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
    const tx = { type: "ORDER_CANCEL", id: this.id(), time: new Date().toISOString(), orderID: o.id, ...(o.clientId ? { clientOrderID: o.clientId } : {}), reason };
    this.transactions.push(tx);
    o.state = "CANCELLED";
    o.cancellingTransactionID = tx.id;
    return tx;
  }

  private tradeJson(t: Trade): Json {
    const p = precisionOf(t.instrument);
    const quote = this.quotes.get(t.instrument);
    const mark = quote ? (t.currentUnits > 0 ? quote.bid : quote.ask) : t.price;
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

  private broadcast(line: Json): void {
    for (const s of this.streams) {
      if (line.type === "PRICE" && !s.instruments.has(line.instrument as string)) continue;
      s.write(line);
    }
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const started = performance.now();
    const url = new URL(req.url ?? "/", "http://x");
    const send = (status: number, body: Json) => {
      res.writeHead(status, { "content-type": "application/json", "lastTransactionID": this.lastId() });
      const text = JSON.stringify(body);
      if (this.faults.stallBody) {
        // Headers and a first part out, the rest never: the client's timeout must cover reading the body.
        this.faults.stallBody = false;
        res.flushHeaders();
        res.write(text.slice(0, text.length >> 1));
        return;
      }
      res.end(text);
      this.answerMs.push(performance.now() - started);
    };
    if (req.headers.authorization !== `Bearer ${this.token}`) return send(401, { errorMessage: "Insufficient authorization to perform request." });
    const prefix = `/v3/accounts/${this.accountId}`;
    if (!url.pathname.startsWith(prefix)) return send(404, { errorMessage: "Invalid value specified for 'accountID'" });
    const path = url.pathname.slice(prefix.length);
    if (path === "/pricing/stream") return this.stream(url, res);

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
    if (req.method === "POST" && path === "/orders") return this.createOrder(JSON.parse(body) as { order: Json }, send, res);
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
      const since = Number(url.searchParams.get("id"));
      return send(200, { transactions: this.transactions.filter((t) => Number(t.id) > since), lastTransactionID: this.lastId() });
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
    if (clientId && this.orderByClientId(clientId)) {
      const tx = { type: "MARKET_ORDER_REJECT", id: this.id(), rejectReason: "CLIENT_ORDER_ID_ALREADY_EXISTS" };
      this.transactions.push(tx);
      return send(400, { orderRejectTransaction: tx, errorCode: "CLIENT_ORDER_ID_ALREADY_EXISTS", errorMessage: "The client Order ID specified is already assigned", lastTransactionID: this.lastId() });
    }
    if (this.faults.rejectNext) {
      const reason = this.faults.rejectNext;
      this.faults.rejectNext = null;
      const tx = { type: `${String(spec.type)}_ORDER_REJECT`, id: this.id(), rejectReason: reason };
      this.transactions.push(tx);
      return send(400, { orderRejectTransaction: tx, errorCode: reason, errorMessage: `order rejected: ${reason}`, lastTransactionID: this.lastId() });
    }
    const type = spec.type as Order["type"];
    const order: Order = { id: this.id(), clientId, instrument, type, units: Number(spec.units), filled: 0, price: spec.price === undefined ? null : Number(spec.price), state: "PENDING", body: spec };
    this.orders.set(order.id, order);
    const create = { type: `${type}_ORDER`, id: order.id, time: new Date().toISOString(), instrument, units: spec.units, clientExtensions: spec.clientExtensions };
    this.transactions.push(create);
    const answer: Json = { orderCreateTransaction: create };
    if (type === "MARKET") {
      const quote = this.quotes.get(instrument);
      if (!quote) {
        answer.orderCancelTransaction = this.cancel(order, "MARKET_HALTED");
      } else {
        const share = this.faults.partialFill;
        this.faults.partialFill = null;
        const units = share === null ? order.units : Math.trunc(order.units * share);
        answer.orderFillTransaction = this.fill(order, order.units > 0 ? quote.ask : quote.bid, units, "MARKET_ORDER");
        if (units !== order.units) {
          // FOK/IOC: the rest goes; the order itself stays FILLED, as its fill says.
          const cancel = { type: "ORDER_CANCEL", id: this.id(), time: new Date().toISOString(), orderID: order.id, ...(clientId ? { clientOrderID: clientId } : {}), reason: "INSUFFICIENT_LIQUIDITY" };
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
      if (q) {
        const p = precisionOf(name);
        entry.write({ type: "PRICE", instrument: name, time: q.time, tradeable: true, bids: [{ price: q.bid.toFixed(p), liquidity: 1e7 }], asks: [{ price: q.ask.toFixed(p), liquidity: 1e7 }] });
      }
    }
  }
}
