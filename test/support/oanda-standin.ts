/**
 * A local stand-in for OANDA's v20 servers (this machine cannot reach them),
 * speaking the documented protocol for what the adapter uses: account summary,
 * instruments, orders (market FOK at the current quote; limit and stop resting
 * until a quote crosses them; SL/TP/trailing on fill recorded), order lookup by
 * client id (`@id`), transactions by id and since an id, open trades and
 * positions (one instrument's net units), and the pricing stream (JSON lines, heartbeats). Faults on demand:
 * slow answers, 5xx, an answer lost after the order was taken or stalled after
 * its headers, rejections,
 * partial fills, and a stream that drops or goes silent.
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
  /** The next market order fills this share of its units (the rest is cancelled). */
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
  units: number;
  price: number | null;
  state: "PENDING" | "FILLED" | "CANCELLED";
  fillingTransactionID?: string;
  cancellingTransactionID?: string;
  body: Json;
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
  /** Net units held per instrument (longs positive), from every fill. */
  private readonly netUnits = new Map<string, number>();
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
      if (crossed) this.fill(o, buy ? ask : bid, o.units, o.type === "LIMIT" ? "LIMIT_ORDER" : "STOP_ORDER");
    }
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

  /** The account's net units in an instrument (longs positive). */
  positionUnits(instrument: string): number {
    return this.netUnits.get(instrument) ?? 0;
  }

  /** A trade nobody in the runtime made (by hand on the platform, or another system on the account). */
  externalTrade(instrument: string, units: number): void {
    const order: Order = { id: this.id(), clientId: "", instrument, type: "MARKET", units, price: null, state: "PENDING", body: {} };
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

  private fill(o: Order, price: number, units: number, reason: string): Json {
    const p = precisionOf(o.instrument);
    const tx: Json = {
      type: "ORDER_FILL", id: this.id(), time: new Date().toISOString(), accountID: this.accountId, orderID: o.id, clientOrderID: o.clientId,
      instrument: o.instrument, units: String(units), fullVWAP: price.toFixed(p), price: price.toFixed(p), commission: "0.0000", financing: "0.0000",
      pl: "0.0000", lossQuoteHomeConversionFactor: "1", gainQuoteHomeConversionFactor: "1", reason,
      tradeOpened: { tradeID: o.id, units: String(units), price: price.toFixed(p) },
    };
    this.transactions.push(tx);
    this.netUnits.set(o.instrument, (this.netUnits.get(o.instrument) ?? 0) + units);
    o.state = "FILLED";
    o.fillingTransactionID = tx.id as string;
    return tx;
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
      return send(200, { account: { id: this.accountId, currency: "USD", balance: "100000.0000", NAV: "100000.0000", unrealizedPL: "0.0000", marginAvailable: "100000.0000", openTradeCount: 0, openPositionCount: 0, pendingOrderCount: [...this.orders.values()].filter((o) => o.state === "PENDING").length, lastTransactionID: this.lastId() }, lastTransactionID: this.lastId() });
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
      return send(200, { order: { id: o.id, state: o.state, clientExtensions: { id: o.clientId }, ...(o.fillingTransactionID ? { fillingTransactionID: o.fillingTransactionID } : {}), ...(o.cancellingTransactionID ? { cancellingTransactionID: o.cancellingTransactionID } : {}) }, lastTransactionID: this.lastId() });
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
    if (req.method === "GET" && path === "/openTrades") return send(200, { trades: [], lastTransactionID: this.lastId() });
    const position = /^\/positions\/([A-Z]{3}_[A-Z]{3})$/.exec(path);
    if (req.method === "GET" && position) {
      const net = this.positionUnits(position[1]!);
      return send(200, { position: { instrument: position[1], long: { units: String(Math.max(net, 0)) }, short: { units: String(Math.min(net, 0)) } }, lastTransactionID: this.lastId() });
    }
    if (req.method === "GET" && path === "/openPositions") {
      const open = [...this.netUnits].filter(([, n]) => n !== 0);
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
    const order: Order = { id: this.id(), clientId, instrument, type, units: Number(spec.units), price: spec.price === undefined ? null : Number(spec.price), state: "PENDING", body: spec };
    this.orders.set(order.id, order);
    const create = { type: `${type}_ORDER`, id: order.id, time: new Date().toISOString(), instrument, units: spec.units, clientExtensions: spec.clientExtensions };
    this.transactions.push(create);
    const answer: Json = { orderCreateTransaction: create };
    if (type === "MARKET") {
      const quote = this.quotes.get(instrument);
      if (!quote) {
        const cancel = { type: "ORDER_CANCEL", id: this.id(), orderID: order.id, reason: "MARKET_HALTED" };
        this.transactions.push(cancel);
        order.state = "CANCELLED";
        order.cancellingTransactionID = cancel.id;
        answer.orderCancelTransaction = cancel;
      } else {
        const share = this.faults.partialFill;
        this.faults.partialFill = null;
        const units = share === null ? order.units : Math.trunc(order.units * share);
        answer.orderFillTransaction = this.fill(order, order.units > 0 ? quote.ask : quote.bid, units, "MARKET_ORDER");
        if (units !== order.units) {
          const cancel = { type: "ORDER_CANCEL", id: this.id(), orderID: order.id, reason: "INSUFFICIENT_LIQUIDITY" };
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
