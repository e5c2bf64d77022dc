/**
 * The OANDA v20 broker behind the pair actor's broker interface (the paper
 * broker stays the default). Orders go out with the runtime's client order id
 * in `clientExtensions.id`, and `place` looks that id up before every send,
 * the first included: OANDA refuses a client id only while another order
 * under it is *pending* (CLIENT_ORDER_ID_ALREADY_EXISTS), so a filled market
 * order sent again would fill again, and a resend is never safe in itself.
 * An order whose answer was lost (timeout, network, 5xx) is in doubt: looked
 * up at once, and never sent again by this broker until it has been in doubt
 * for a while (OANDA may still be taking it). Fills of resting (limit, stop)
 * orders arrive as transactions, polled from the last one received, a page
 * at a time until caught up; a resting order may fill in parts, and is
 * followed until its units are filled or OANDA cancels the rest.
 */
import * as v from "valibot";
import type { Instrument } from "../../domain/instruments.ts";
import type { Fill, OrderIntent, Quote, Side } from "../../domain/trading/types.ts";
import type { Broker, BrokerAnswer, BrokerCancel } from "../broker.ts";
import { OandaError, type OandaHttp } from "./oanda-http.ts";
import {
  CancelAnswer, msOf, OpenTrades, OrderCancelTransaction, OrderCreated, OrderFillTransaction, OrderLookup, orderRequest, pointsOf, PositionAnswer, TransactionPage, V20Error,
  type Trade,
} from "./v20.ts";

/** How often working orders are checked for fills, at most. */
const WORKING_POLL_MS = 1_000;
/** Working orders this broker follows; more is a caller bug (orders are bounded per minute by risk). */
const MAX_WORKING = 1_000;
/** Transaction ids asked for in one `idrange` call. */
const ID_RANGE = 1_000;
/** `sinceid` pages read in one poll (OANDA caps a page, users report at 1,000); the rest is read by the next poll. */
const SINCE_PAGES_PER_POLL = 10;
/**
 * How long an order whose answer was lost stays in doubt, in multiples of the
 * HTTP timeout: a request we gave up on may still reach OANDA and be taken,
 * so it is only looked up until then, never sent again. Past that, a lookup
 * that finds nothing means OANDA never got it.
 */
const IN_DOUBT_TIMEOUTS = 3;
/** Orders in doubt remembered at once; more is a caller bug (orders are bounded per minute by risk). */
const MAX_IN_DOUBT = 1_000;
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
  /** Client order ids whose send got no clear answer, and until when they are not sent again. */
  private readonly inDoubt = new Map<string, number>();
  /** A place in progress per client order id: the same order asked twice at once is sent at most once. */
  private readonly placing = new Map<string, Promise<BrokerAnswer>>();

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
    const id = intent.clientOrderId;
    const running = this.placing.get(id);
    if (running) return running;
    const placed = this.submit(intent).finally(() => this.placing.delete(id));
    this.placing.set(id, placed);
    return placed;
  }

  private async submit(intent: OrderIntent): Promise<BrokerAnswer> {
    const id = intent.clientOrderId;
    // Looked up first, every time (a retry, a drain, a new life of the actor):
    // only what OANDA says it never got is sent.
    const known = await this.lookup(id);
    if (known) return known;
    const doubtUntil = this.inDoubt.get(id);
    if (doubtUntil !== undefined && this.now() < doubtUntil) {
      throw new OandaError(0, "in_doubt", `${id}: an earlier send got no answer and OANDA may still take it; not sent again before ${new Date(doubtUntil).toISOString()}`);
    }
    this.inDoubt.delete(id);
    let created: OrderCreated;
    try {
      created = await this.http.send("POST", "/orders", orderRequest(intent, this.instrument, this.protectionOnFill), OrderCreated);
    } catch (err) {
      if (!(err instanceof OandaError)) throw err;
      if (err.status === 0 || err.status >= 500) {
        // No clear answer: OANDA may have taken it. Never sent again here; a
        // lookup now finds it when it was taken, later ones when it is taken late.
        this.doubt(id);
        const found = await this.lookup(id).catch(() => null);
        if (found) return found;
        throw err;
      }
      // 429 (refused before it was taken), 401/403 (this client stops): the error stands,
      // the order stays in the pair's outbox, and the next try looks it up first.
      if (err.status === 429 || err.credentialsRefused) throw err;
      const rejection = rejectionOf(err);
      if (rejection === "CLIENT_ORDER_ID_ALREADY_EXISTS") {
        // Pending under this id (sent meanwhile by someone else on the account, or the lookup raced it).
        const found = await this.lookup(id);
        if (found) return found;
        throw err;
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
    for (let pages = 0; pages < SINCE_PAGES_PER_POLL && this.working.size > 0; pages++) {
      let page: v.InferOutput<typeof TransactionPage>;
      try {
        page = await this.http.get(`/transactions/sinceid?id=${this.lastTransactionId}`, TransactionPage);
      } catch (err) {
        // What earlier pages gave is counted and must be returned; the next poll asks again from the cursor.
        if (pages > 0) break;
        throw err;
      }
      if (page.transactions.length === 0) break;
      for (const tx of page.transactions) {
        try {
          if (transactionNumber(tx.id) <= transactionNumber(this.lastTransactionId)) throw new Error(`sinceid ${this.lastTransactionId} answered transaction ${tx.id}, not after it`);
          this.apply(tx, outcome);
        } catch (err) {
          // The cursor stays before it: read again next poll, never skipped. What came before it is returned now.
          if (outcome.fills.length > 0 || outcome.cancelled.length > 0) return outcome;
          throw err;
        }
        // Only over what was received: an answer's lastTransactionID may be past the end of a capped page.
        this.lastTransactionId = tx.id;
      }
      if (transactionNumber(this.lastTransactionId) >= transactionNumber(page.lastTransactionID)) break;
    }
    return outcome;
  }

  /** One transaction seen by a poll: a fill or cancellation of a working order counts, anything else is not ours to follow. */
  private apply(tx: { type: string }, outcome: QuoteOutcome): void {
    if (tx.type === "ORDER_FILL") {
      const fill = v.safeParse(OrderFillTransaction, tx);
      const order = fill.success ? this.working.get(fill.output.orderID) : undefined;
      if (!fill.success || !order) return;
      const counted = this.count(order, fill.output);
      if (counted) outcome.fills.push(counted);
      if (order.filled >= order.units) this.working.delete(fill.output.orderID);
    } else if (tx.type === "ORDER_CANCEL") {
      const cancel = v.safeParse(OrderCancelTransaction, tx);
      const order = cancel.success ? this.working.get(cancel.output.orderID) : undefined;
      if (!cancel.success || !order) return;
      outcome.cancelled.push({ clientOrderId: order.clientOrderId, reason: cancel.output.reason, filledUnits: order.filled });
      this.working.delete(cancel.output.orderID);
    }
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

  /**
   * `PUT /orders/@{client id}/cancel`; a 404 (filled already, cancelled, or
   * never placed: v20's ORDER_CANCEL_REJECT) is no failure. Either way the
   * order is then looked up, so its fills, if any, are not lost. One that
   * still works after that was not cancelled: an error, so the cancel is
   * asked for again.
   */
  async cancel(clientOrderId: string): Promise<BrokerAnswer | null> {
    try {
      await this.http.send("PUT", `/orders/@${encodeURIComponent(clientOrderId)}/cancel`, undefined, CancelAnswer);
    } catch (err) {
      if (!(err instanceof OandaError && err.status === 404)) throw err;
    }
    const answer = await this.lookup(clientOrderId);
    if (answer?.status === "working") throw new Error(`order ${clientOrderId} was not cancelled: OANDA still holds it as pending`);
    return answer;
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
    // Converted before it is marked seen: a fill that cannot be read throws, and is read again next time.
    const fill = this.fillOf(tx, order.clientOrderId);
    order.seen.add(tx.id);
    order.filled += fill.units;
    return fill;
  }

  /** Mark an order in doubt: looked up, not sent again, for a few HTTP timeouts. */
  private doubt(clientOrderId: string): void {
    const now = this.now();
    for (const [id, until] of this.inDoubt) if (until <= now) this.inDoubt.delete(id);
    if (this.inDoubt.size >= MAX_IN_DOUBT) throw new Error(`more than ${MAX_IN_DOUBT} orders in doubt on ${this.instrument.symbol}`);
    this.inDoubt.set(clientOrderId, now + IN_DOUBT_TIMEOUTS * this.http.policy.timeoutMs);
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
    const ts = msOf(tx.time);
    if (!Number.isFinite(price) || price <= 0 || !Number.isSafeInteger(signed) || signed === 0 || !Number.isFinite(ts)) {
      throw new Error(`fill ${tx.id} without a usable price, units or time`);
    }
    // Commission is in the account's home currency; the fill wants quote currency.
    const commissionHome = Number(tx.commission ?? "0");
    const toHome = Number(tx.lossQuoteHomeConversionFactor ?? "1");
    if (commissionHome > 0 && !(toHome > 0)) throw new Error(`fill ${tx.id}: commission ${tx.commission} with no usable conversion factor`);
    return {
      // The transaction id: the same fill seen twice (answer, then lookup) is the same fill.
      id: `${clientOrderId}:t${tx.id}`,
      clientOrderId,
      pair: this.instrument.symbol,
      side: signed > 0 ? "buy" : "sell",
      units: Math.abs(signed),
      price,
      commissionQuoteMicros: commissionHome > 0 ? Math.round((commissionHome / toHome) * 1e6) : 0,
      ts,
    };
  }
}

/** A v20 transaction id as a number (they are numeric strings); anything else is an answer not to trust. */
function transactionNumber(id: string): number {
  const n = Number(id);
  if (!/^\d+$/.test(id) || !Number.isSafeInteger(n)) throw new Error(`transaction id ${JSON.stringify(id).slice(0, 40)} is not a v20 id`);
  return n;
}

/** v20's reason for refusing an order (from a 400 with an orderRejectTransaction), or null. */
function rejectionOf(err: OandaError): string | null {
  const body = v.safeParse(V20Error, err.body);
  if (!body.success || err.status >= 500) return null;
  return body.output.orderRejectTransaction?.rejectReason ?? body.output.errorCode ?? (err.status === 400 ? "REJECTED" : null);
}
