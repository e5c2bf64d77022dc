/**
 * The OANDA v20 broker behind the pair actor's broker interface (the paper
 * broker stays the default). Orders go out with the runtime's client order id
 * in `clientExtensions.id`, which makes `place` idempotent across retries and
 * restarts: when an answer is lost (timeout, network, 5xx) or OANDA says the id
 * already exists, the order is looked up by that id instead of being sent again
 * blindly. Fills of resting (limit, stop) orders arrive as transactions,
 * polled from the last one seen while any order is working; a resting order
 * may fill in parts, and is followed until its units are filled or OANDA
 * cancels the rest.
 */
import * as v from "valibot";
import type { Instrument } from "../../domain/instruments.ts";
import type { Fill, OrderIntent, Quote, Side } from "../../domain/trading/types.ts";
import type { Broker, BrokerAnswer, BrokerCancel } from "../broker.ts";
import { OandaError, type OandaHttp } from "./oanda-http.ts";
import {
  msOf, OpenTrades, OrderCancelTransaction, OrderCreated, OrderFillTransaction, OrderLookup, orderRequest, pointsOf, PositionAnswer, TransactionPage, V20Error,
  type Trade,
} from "./v20.ts";

/** How often working orders are checked for fills, at most. */
const WORKING_POLL_MS = 1_000;
/** Working orders this broker follows; more is a caller bug (orders are bounded per minute by risk). */
const MAX_WORKING = 1_000;
/** Transaction ids asked for in one `idrange` call. */
const ID_RANGE = 1_000;
/** OANDA's largest page of `GET /trades`. */
const TRADES_PAGE = 500;

/** A working order OANDA cancelled (by hand on the platform, margin, a market halt, ...); the reason is v20's, e.g. INSUFFICIENT_MARGIN. */
export interface CancelledOrder extends BrokerCancel {
  /** Units filled before the rest was cancelled (their fills were reported as they came). */
  filledUnits: number;
}

/**
 * What the transactions since the last poll say about the working orders.
 * `Broker.onQuote` carries the fills; the cancellations wait for `takeCancelled`.
 */
export interface QuoteOutcome {
  fills: Fill[];
  cancelled: CancelledOrder[];
}

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

interface Working {
  clientOrderId: string;
  units: number;
  filled: number;
  /** Fill transactions already counted: the same fill seen by a lookup and a poll counts once. */
  seen: Set<string>;
}

export class OandaBroker implements Broker {
  /** Working orders by OANDA order id. */
  private readonly working = new Map<string, Working>();
  /** Cancellations polled and not yet taken by the trader (bounded: each was a working order). */
  private cancelled: CancelledOrder[] = [];
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
    this.startPollingAt(created.lastTransactionID);
    const fill = created.orderFillTransaction;
    const fills = fill ? [this.fillOf(fill, intent.clientOrderId)] : [];
    if (created.orderCancelTransaction) {
      // A FOK market order: filled in part (the rest cancelled), or not at all.
      return fills.length > 0 ? { status: "filled", fills } : { status: "rejected", reason: created.orderCancelTransaction.reason, fills: [] };
    }
    if (fill && Math.abs(Number(fill.units)) >= intent.units) return { status: "filled", fills };
    // Resting, or filled in part at once with the rest resting: its later fills come from the transactions.
    this.follow(created.orderCreateTransaction.id, intent.clientOrderId, intent.units, fill ? [fill] : []);
    return { status: "working", fills };
  }

  /** Fills of working orders since the last transaction seen (at most one poll a second); cancellations are kept for takeCancelled. */
  async onQuote(quote: Quote): Promise<Fill[]> {
    const outcome = await this.poll(quote);
    this.cancelled.push(...outcome.cancelled);
    return outcome.fills;
  }

  takeCancelled(): CancelledOrder[] {
    const taken = this.cancelled;
    this.cancelled = [];
    return taken;
  }

  /**
   * What happened to the working orders since the last transaction seen (at
   * most one poll a second): their fills, and the ones OANDA cancelled. An
   * order stays working until its fills add up to its units.
   */
  async poll(_quote: Quote): Promise<QuoteOutcome> {
    const outcome: QuoteOutcome = { fills: [], cancelled: [] };
    const now = this.now();
    if (this.working.size === 0 || this.lastTransactionId === null || now - this.lastPollAt < WORKING_POLL_MS) return outcome;
    this.lastPollAt = now;
    const page = await this.http.get(`/transactions/sinceid?id=${this.lastTransactionId}`, TransactionPage);
    for (const tx of page.transactions) {
      if (tx.type === "ORDER_FILL") {
        const fill = v.safeParse(OrderFillTransaction, tx);
        const order = fill.success ? this.working.get(fill.output.orderID) : undefined;
        if (!fill.success || !order) continue;
        const counted = this.count(order, fill.output);
        if (counted) outcome.fills.push(counted);
        if (order.filled >= order.units) this.working.delete(fill.output.orderID);
      } else if (tx.type === "ORDER_CANCEL") {
        const cancel = v.safeParse(OrderCancelTransaction, tx);
        const order = cancel.success ? this.working.get(cancel.output.orderID) : undefined;
        if (!cancel.success || !order) continue;
        outcome.cancelled.push({ clientOrderId: order.clientOrderId, reason: cancel.output.reason, filledUnits: order.filled });
        this.working.delete(cancel.output.orderID);
      }
    }
    this.lastTransactionId = page.lastTransactionID;
    return outcome;
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

  /**
   * What OANDA did with an order of ours, by client order id; null when it
   * never got it. Its fills come from the transactions, all of them (a resting
   * order may have filled in parts, also while the runtime was down):
   * `filled` with them once it is done (the rest, if any, cancelled),
   * `working` while a rest still rests (followed from now on), with the
   * fills so far, `rejected` with OANDA's reason when it was cancelled unfilled.
   */
  async lookup(clientOrderId: string): Promise<BrokerAnswer | null> {
    let found: v.InferOutput<typeof OrderLookup>;
    try {
      found = await this.http.get(`/orders/@${encodeURIComponent(clientOrderId)}`, OrderLookup);
    } catch (err) {
      if (err instanceof OandaError && err.status === 404) return null;
      throw err;
    }
    const order = found.order;
    const { fills, cancel } = await this.transactionsOf(order.id, order.fillingTransactionID ?? order.cancellingTransactionID ?? found.lastTransactionID);
    const answerFills = fills.map((tx) => this.fillOf(tx, clientOrderId));
    if (order.state === "FILLED" || order.state === "CANCELLED") {
      if (answerFills.length > 0) return { status: "filled", fills: answerFills };
      if (order.state === "FILLED") throw new Error(`order ${clientOrderId} is FILLED but no fill of it was found`);
      return { status: "rejected", reason: cancel?.reason ?? "CANCELLED", fills: [] };
    }
    this.startPollingAt(found.lastTransactionID);
    this.follow(order.id, clientOrderId, Math.abs(Number(order.units)), fills);
    return { status: "working", fills: answerFills };
  }

  /** An order's fills and cancel, from its creation (its id) up to `lastId`, a page of ids at a time. */
  private async transactionsOf(orderId: string, lastId: string): Promise<{ fills: OrderFillTransaction[]; cancel: OrderCancelTransaction | null }> {
    const fills: OrderFillTransaction[] = [];
    let cancel: OrderCancelTransaction | null = null;
    for (let from = Number(orderId); from <= Number(lastId); from += ID_RANGE) {
      const to = Math.min(Number(lastId), from + ID_RANGE - 1);
      const page = await this.http.get(`/transactions/idrange?from=${from}&to=${to}&type=ORDER_FILL,ORDER_CANCEL`, TransactionPage);
      for (const tx of page.transactions) {
        const fill = v.safeParse(OrderFillTransaction, tx);
        if (fill.success && fill.output.orderID === orderId) fills.push(fill.output);
        const cancelled = v.safeParse(OrderCancelTransaction, tx);
        if (cancelled.success && cancelled.output.orderID === orderId) cancel = cancelled.output;
      }
    }
    return { fills, cancel };
  }

  /**
   * Where the polling of working orders starts. It only moves on by polling
   * while an order is working: jumping to a newer answer's id then would skip
   * a fill of that order made in between.
   */
  private startPollingAt(lastTransactionId: string): void {
    if (this.working.size === 0 || this.lastTransactionId === null) this.lastTransactionId = lastTransactionId;
  }

  private follow(orderId: string, clientOrderId: string, units: number, fills: readonly OrderFillTransaction[]): void {
    let order = this.working.get(orderId);
    if (!order) {
      if (this.working.size >= MAX_WORKING) throw new Error(`more than ${MAX_WORKING} working orders on ${this.instrument.symbol}`);
      order = { clientOrderId, units, filled: 0, seen: new Set() };
    }
    for (const tx of fills) this.count(order, tx);
    if (order.filled < order.units) this.working.set(orderId, order);
    else this.working.delete(orderId);
  }

  /** Count a fill of a working order once; the fill, or null when it was counted before. */
  private count(order: Working, tx: OrderFillTransaction): Fill | null {
    if (order.seen.has(tx.id)) return null;
    order.seen.add(tx.id);
    order.filled += Math.abs(Number(tx.units));
    return this.fillOf(tx, order.clientOrderId);
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
