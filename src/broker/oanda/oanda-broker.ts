/**
 * The OANDA v20 broker behind the pair actor's broker interface (the paper
 * broker stays the default). Orders go out with the runtime's client order id
 * in `clientExtensions.id`, which makes `place` idempotent across retries and
 * restarts: when an answer is lost (timeout, network, 5xx) or OANDA says the id
 * already exists, the order is looked up by that id instead of being sent again
 * blindly. Fills of resting (limit, stop) orders arrive as transactions,
 * polled from the last one seen while any order is working.
 */
import * as v from "valibot";
import type { Instrument } from "../../domain/instruments.ts";
import type { Fill, OrderIntent, Quote, Side } from "../../domain/trading/types.ts";
import type { Broker, BrokerAnswer } from "../broker.ts";
import { OandaError, type OandaHttp } from "./oanda-http.ts";
import { msOf, OpenTrades, OrderCreated, OrderFillTransaction, OrderLookup, orderRequest, pointsOf, PositionAnswer, TransactionPage, V20Error, type Trade } from "./v20.ts";

/** How often working orders are checked for fills, at most. */
const WORKING_POLL_MS = 1_000;
/** Working orders this broker follows; more is a caller bug (orders are bounded per minute by risk). */
const MAX_WORKING = 1_000;
/** OANDA's largest page of `GET /trades`. */
const TRADES_PAGE = 500;

/** An open trade at OANDA, in the runtime's terms (points, positive units with a side). */
export interface OpenTrade {
  /** OANDA's trade id (the id of the fill that opened it). */
  id: string;
  side: Side;
  units: number;
  price: number;
  openedAt: number;
  /** Its dependent orders at OANDA, when any. */
  stopLoss?: number;
  takeProfit?: number;
  trailingStopPips?: number;
}

export class OandaBroker implements Broker {
  private readonly working = new Set<string>();
  private lastTransactionId: string | null = null;
  private lastPollAt = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly http: OandaHttp,
    private readonly instrument: Instrument,
    private readonly now: () => number = () => Date.now(),
    /**
     * Send stop loss, take profit and trailing stop with the order, for OANDA
     * to manage. The pair actors pass false: they manage exits themselves
     * (the same code as in replay, and break-even moves the stop), and a stop
     * at both ends would close a position twice.
     */
    private readonly protectionOnFill = true,
  ) {}

  place(intent: OrderIntent, _quote: Quote): Promise<BrokerAnswer> {
    return this.submit(intent, false);
  }

  private async submit(intent: OrderIntent, resent: boolean): Promise<BrokerAnswer> {
    let created: OrderCreated;
    try {
      created = await this.http.send("POST", "/orders", orderRequest(intent, this.instrument, this.protectionOnFill), OrderCreated);
    } catch (err) {
      if (!(err instanceof OandaError)) throw err;
      const rejection = rejectionOf(err);
      if (rejection === "CLIENT_ORDER_ID_ALREADY_EXISTS" || err.retryable) {
        // Sent before (or maybe just now, with the answer lost): what became of it decides.
        const known = await this.lookup(intent.clientOrderId);
        if (known) return known;
        // OANDA never got it: one more send is safe, since the id makes a duplicate impossible.
        // After that the error stands, and the order stays in the pair's outbox for the next drain.
        if (!err.retryable || resent) throw err;
        return this.submit(intent, true);
      }
      if (rejection !== null) return { status: "rejected", reason: rejection, fills: [] };
      throw err;
    }
    this.lastTransactionId = created.lastTransactionID;
    if (created.orderFillTransaction) return { status: "filled", fills: [this.fillOf(created.orderFillTransaction, intent.clientOrderId)] };
    if (created.orderCancelTransaction) return { status: "rejected", reason: created.orderCancelTransaction.reason, fills: [] };
    this.follow(intent.clientOrderId);
    return { status: "working", fills: [] };
  }

  /** Fills of working orders since the last transaction seen (at most one poll a second). */
  async onQuote(_quote: Quote): Promise<Fill[]> {
    const now = this.now();
    if (this.working.size === 0 || this.lastTransactionId === null || now - this.lastPollAt < WORKING_POLL_MS) return [];
    this.lastPollAt = now;
    const page = await this.http.get(`/transactions/sinceid?id=${this.lastTransactionId}`, TransactionPage);
    const fills: Fill[] = [];
    for (const tx of page.transactions) {
      if (tx.type !== "ORDER_FILL") continue;
      const fill = v.safeParse(OrderFillTransaction, tx);
      if (!fill.success || fill.output.instrument !== this.instrument.symbol) continue;
      const id = fill.output.clientOrderID;
      if (id === undefined || !this.working.has(id)) continue;
      fills.push(this.fillOf(fill.output, id));
      this.working.delete(id);
    }
    this.lastTransactionId = page.lastTransactionID;
    return fills;
  }

  /** The account's net units in this instrument (longs positive), for reconciliation. */
  async openUnits(): Promise<number> {
    const answer = await this.http.get(`/positions/${this.instrument.symbol}`, PositionAnswer);
    return Number(answer.position.long.units) + Number(answer.position.short.units);
  }

  /** The account's open trades in this instrument, oldest first, with their dependent orders. */
  async openTrades(): Promise<OpenTrade[]> {
    const trades: Trade[] = [];
    // Newest first, a page at a time: the next page is the trades before the oldest one seen.
    for (let before = ""; ; ) {
      const page = await this.http.get(`/trades?state=OPEN&instrument=${this.instrument.symbol}&count=${TRADES_PAGE}${before}`, OpenTrades);
      trades.push(...page.trades);
      if (page.trades.length < TRADES_PAGE) break;
      before = `&beforeID=${page.trades.at(-1)!.id}`;
    }
    return trades.map((t) => this.tradeOf(t)).sort((a, b) => Number(a.id) - Number(b.id));
  }

  /** What OANDA did with an order of ours, by client order id; null when it never got it. */
  async lookup(clientOrderId: string): Promise<BrokerAnswer | null> {
    let found: v.InferOutput<typeof OrderLookup>;
    try {
      found = await this.http.get(`/orders/@${encodeURIComponent(clientOrderId)}`, OrderLookup);
    } catch (err) {
      if (err instanceof OandaError && err.status === 404) return null;
      throw err;
    }
    const order = found.order;
    if (order.state === "FILLED" && order.fillingTransactionID) {
      const tx = await this.http.get(`/transactions/${order.fillingTransactionID}`, v.object({ transaction: OrderFillTransaction }));
      return { status: "filled", fills: [this.fillOf(tx.transaction, clientOrderId)] };
    }
    if (order.state === "CANCELLED") return { status: "rejected", reason: "CANCELLED", fills: [] };
    this.follow(clientOrderId);
    this.lastTransactionId ??= found.lastTransactionID;
    return { status: "working", fills: [] };
  }

  private follow(clientOrderId: string): void {
    if (this.working.size >= MAX_WORKING) throw new Error(`more than ${MAX_WORKING} working orders on ${this.instrument.symbol}`);
    this.working.add(clientOrderId);
  }

  private tradeOf(t: Trade): OpenTrade {
    const units = Number(t.currentUnits);
    const pip = 10 ** this.instrument.pipLocation;
    const { stopLossOrder: sl, takeProfitOrder: tp, trailingStopLossOrder: ts } = t;
    return {
      id: t.id,
      side: units > 0 ? "buy" : "sell",
      units: Math.abs(units),
      price: pointsOf(t.price, this.instrument),
      openedAt: msOf(t.openTime),
      ...(sl?.price !== undefined ? { stopLoss: pointsOf(sl.price, this.instrument) } : {}),
      ...(tp?.price !== undefined ? { takeProfit: pointsOf(tp.price, this.instrument) } : {}),
      ...(ts?.distance !== undefined ? { trailingStopPips: Math.round(Number(ts.distance) / pip) } : {}),
    };
  }

  /** A v20 fill as the runtime's: points, positive units with a side, commission in quote micros. */
  private fillOf(tx: OrderFillTransaction, clientOrderId: string): Fill {
    const signed = Number(tx.units);
    const price = pointsOf(tx.fullVWAP ?? tx.price ?? "NaN", this.instrument);
    if (!Number.isFinite(price) || !Number.isInteger(signed) || signed === 0) throw new Error(`fill ${tx.id} without a usable price or units`);
    // Commission is in the account's home currency; the fill wants quote currency.
    const commissionHome = Number(tx.commission ?? "0");
    const toHome = Number(tx.lossQuoteHomeConversionFactor ?? "1");
    return {
      // The transaction id: the same fill seen twice (answer, then lookup) is the same fill.
      id: `${clientOrderId}:t${tx.id}`,
      clientOrderId,
      pair: this.instrument.symbol,
      side: signed > 0 ? "buy" : "sell",
      units: Math.abs(signed),
      price,
      commissionQuoteMicros: commissionHome > 0 && toHome > 0 ? Math.round((commissionHome / toHome) * 1e6) : 0,
      ts: msOf(tx.time),
    };
  }
}

/** v20's reason for refusing an order (from a 400 with an orderRejectTransaction), or null. */
function rejectionOf(err: OandaError): string | null {
  const body = v.safeParse(V20Error, err.body);
  if (!body.success || err.status >= 500) return null;
  return body.output.orderRejectTransaction?.rejectReason ?? body.output.errorCode ?? (err.status === 400 ? "REJECTED" : null);
}
