import { logEvent } from "../src/log.ts";
import type { Broker, BrokerAnswer } from "../src/broker/broker.ts";
import { BrokerUnavailable } from "../src/broker/broker-link.ts";
import type { Instrument } from "../src/domain/instruments.ts";
import { midDecimal } from "../src/domain/price.ts";
import type { ConversionRate } from "../src/domain/trading/money.ts";
import { markToMarket, type Position } from "../src/domain/trading/position.ts";
import { ORDER_RATE_WINDOW_MS, signedUnits, trimOrderWindow } from "../src/domain/trading/risk.ts";
import type { StrategyRun } from "../src/domain/strategy/run.ts";
import { closeIntent } from "../src/domain/trading/signal-intent.ts";
import { approvalRequest, pairNetUnits, step, type KernelConfig, type KernelEffect, type KernelEvent, type KernelState } from "../src/domain/trading/kernel.ts";
import type { Fill, OrderIntent, Quote, Signal } from "../src/domain/trading/types.ts";
import type { RiskLimits } from "../schemas/trading.ts";
import type { TradingMessage, WireFill, WireOrder, WirePosition } from "../schemas/trading-events.ts";
import type { OrderRecord, OrderRejection, OrderStatus, OrderStore } from "./order-store.ts";
import type { ApprovalRequest, PairInFlight, PairReport, TradingStatus } from "../src/domain/portfolio/messages.ts";
import { askAdvisor, type Advice, type AdvisorConfig } from "../src/advisor/advisor.ts";
import { toWireSignal } from "../src/wire.ts";
import { toWireFill, toWireOrder, toWirePosition } from "../src/trading-wire.ts";
import { LatencyWindow } from "../src/metrics/latency-window.ts";

/**
 * A risk-adding order waits in the outbox (a broker outage, a restart) at most
 * this long; after that it is not sent any more, since the price and the
 * signal it was decided on are gone. Reducing and protective orders always go
 * out, however late: a stop is never dropped.
 */
export const OUTBOX_MAX_AGE_MS = 60_000;

/** A close the broker refused is tried again on a later quote, at most this often. */
export const CLOSE_RETRY_MS = 1_000;
/** A cancel the broker failed or did not take is asked again at most this often. */
const CANCEL_RETRY_MS = 5_000;

/** More than any rate limit allows (maxOrdersPerMinute <= 1,000 by schema), so the window is read whole. */
const ORDERS_PER_MINUTE_READ_MAX = 10_000;

/** Where a test may stop the trader as if the actor crashed. */
export type FaultPoint = "after_signal" | "after_approval" | "after_outbox" | "after_broker" | "after_apply" | "after_resting_fill";

export interface TraderDeps {
  storage: DurableObjectStorage;
  store: OrderStore;
  /** Test hook: throw at this point, as if the actor died there (null in production). */
  faultPoint: () => FaultPoint | null;
  broker: Broker;
  instrument: Instrument;
  accountCurrency: string;
  clock: () => number;
  lastQuote: () => Quote | null;
  limits: () => RiskLimits;
  publish: (msg: TradingMessage) => void;
  /** Prices of other pairs for account conversion (cross pairs); may be empty. */
  conversionRates: () => Promise<ConversionRate[]>;
  /** Optional advisor for strategy orders that add risk. */
  advisor: AdvisorConfig | null;
  /** Whether the broker lets the pair trade now (OANDA's `tradeable`); false refuses every order. */
  tradeable: () => boolean;
  /** The portfolio's trading state as this pair last heard it (persisted in the pair). */
  tradingState: () => TradingStatus;
  /** Ask the coordinator to reserve room for a risk-increasing order. */
  approve: (req: ApprovalRequest) => Promise<{ approved: true } | { approved: false; rejection: OrderRejection }>;
  /** Tell the coordinator the pair's figures after a fill (and release the order's reservation, when given: the order is done). */
  report: (report: PairReport, clientOrderId?: string) => Promise<void>;
  /** The broker holds another position than the runtime: halt and raise the alarm. */
  onPositionMismatch: (check: PositionCheck) => Promise<void>;
}

/** The last comparison of the runtime's net units in the pair with the broker's. */
export interface PositionCheck {
  checkedAt: number;
  runtimeUnits: number;
  brokerUnits: number;
  ok: boolean;
}

export type ExecuteResult =
  | { ok: true; order: WireOrder; fills: WireFill[]; position: WirePosition | null }
  | { ok: false; rejection: OrderRejection };

/**
 * The trading side of a pair actor: the live adapter of the trading kernel
 * (src/domain/trading/kernel.ts). The kernel decides (signal -> order, risk,
 * the portfolio's state, fills on positions, exits, add levels); this carries
 * its effects out: SQLite (orders, fills, positions, refusals), the outbox
 * and the broker, the coordinator's approval and reports, the room. What only
 * live trading has stays here: the outbox and reconciliation after a crash,
 * numbered close attempts, the advisor. All work runs one item at a time (a
 * promise chain), so a slow broker call can never interleave two updates of
 * one position.
 */
export class PairTrader {
  /** Order round trips (risk, approval, outbox, broker, position), ms. */
  readonly orderRoundTrip = new LatencyWindow();
  /** The coordinator's approval alone (one RPC hop), a stage of orderRoundTrip. */
  readonly approval = new LatencyWindow();
  private queue: Promise<unknown> = Promise.resolve();
  /** Orders a previous life of the actor left unacknowledged have been settled with the broker. */
  private reconciled = false;
  /** The orders held as working have been looked up at the broker in this life (reconcile, step 2). */
  private workingSettled = false;
  /** Null until compared (or when the broker's book is the runtime's own: paper). */
  positionCheck: PositionCheck | null = null;
  /**
   * Creation times of the orders of the last minute (the order-rate limit's
   * window), read from SQLite once per life and then kept here: reading them
   * per order was the heaviest function in a profile of a busy pair. An order
   * the broker rejects later still counts until it leaves the window, erring
   * towards refusal.
   */
  private recentOrderTimes: number[] | null = null;
  /** The latest close attempt of each position seen in this life (close() scans on from it). */
  private readonly closeAttempts = new Map<string, number>();
  /** Cancels the broker failed or did not take: not asked again before this time (in memory: a restart asks at once). */
  private readonly cancelRetryAt = new Map<string, number>();
  /** Approval requests sent to the coordinator and not answered yet, by client order id. */
  private readonly asking = new Map<string, ApprovalRequest>();

  private readonly kernel: KernelConfig;

  constructor(private readonly d: TraderDeps) {
    this.kernel = { instrument: d.instrument, accountCurrency: d.accountCurrency };
  }

  /**
   * The kernel's state as an event reads it: the open positions from SQLite,
   * and the strategies and the order-rate window only for the events that read
   * them (a signal; an order decision).
   */
  private state(runs: readonly StrategyRun[] = [], orderTimesMs: readonly number[] = []): KernelState {
    return { runs, positions: this.d.store.openPositions(), orderTimesMs };
  }

  private step(state: KernelState, event: KernelEvent): KernelEffect[] {
    return step(this.kernel, state, event).effects;
  }

  /** Run `fn` after everything queued before it. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.queue.then(fn, fn);
    this.queue = next.catch(() => undefined);
    return next;
  }

  /** Run `fn` with no order work of this trader in progress (a restore replacing the database). */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    return this.serial(fn);
  }

  // ---- entry points ---------------------------------------------------------------

  /**
   * Decide every queued signal (queued in the transaction that stored it), in
   * order. Each one leaves the queue in the transaction that records its order
   * or its refusal, so a crash in between re-decides it, never twice.
   */
  decideSignals(runs: readonly StrategyRun[]): Promise<void> {
    return this.serial(async () => {
      await this.reconcile();
      await this.settleCancels();
      for (const signal of this.d.store.pendingSignals()) {
        if (this.d.faultPoint() === "after_signal") throw new Error("fault injected before deciding a stored signal");
        const done = () => this.d.store.signalDecided(signal.id);
        const decided = this.step(this.state(runs), { type: "signal", signal }).find((e) => e.type === "order");
        const intent = decided?.intent ?? null;
        if (!intent || this.d.store.getOrder(intent.clientOrderId)) {
          this.d.storage.transactionSync(done);
          continue;
        }
        const advice = await this.advise(signal, intent);
        if (advice?.action === "veto") {
          this.d.storage.transactionSync(() => {
            this.d.store.insertRejectedOrder(intent, `advisor_veto${advice.reason ? `: ${advice.reason}` : ""}`, advice, this.d.clock());
            done();
          });
          this.d.publish({ type: "order", order: this.wireOrder(this.orderOf(intent.clientOrderId)) });
          continue;
        }
        const sized = advice?.action === "resize" ? { ...intent, units: advice.units } : intent;
        await this.submitNow(sized, advice, done);
      }
    });
  }

  execute(intent: OrderIntent): Promise<ExecuteResult> {
    return this.serial(async () => {
      await this.reconcile();
      return this.submitNow(intent);
    });
  }

  /**
   * After each batch of ticks: resting orders, then stops / targets / trailing
   * stops. A failure with the resting orders (a broker call, a fill that could
   * not be applied) is logged and looked into again before anything new, but
   * never keeps the exits below from being checked.
   */
  onQuote(quote: Quote): Promise<void> {
    return this.serial(async () => {
      try {
        await this.reconcile();
        await this.settleResting(quote);
        await this.settleCancels();
      } catch (err) {
        // The broker will not report these fills again: look the working orders up before anything new.
        this.reconciled = false;
        this.workingSettled = false;
        logEvent("error", "trade.resting_orders_failed", { pair: this.d.instrument.symbol, error: String(err) });
      }
      let failed: unknown = null;
      for (const effect of this.step(this.state(), { type: "quote", quote })) {
        // Each effect on its own: a failure with one position never keeps the stops of the others from firing.
        try {
          if (effect.type === "position") {
            this.d.store.savePosition(effect.position, effect.before?.version ?? 0, this.d.clock());
            this.d.publish({ type: "position", position: this.wirePosition(effect.position) });
          } else if (effect.type === "exit") await this.close(effect.position, effect.purpose);
          else if (effect.type === "order") await this.addLevel(effect.intent);
          else if (effect.type === "fault") {
            logEvent("error", "trade.position_fault", { pair: this.d.instrument.symbol, positionId: effect.position.id, error: String(effect.error) });
            throw effect.error;
          }
        } catch (err) {
          failed ??= err;
        }
      }
      if (failed !== null) throw failed;
    });
  }

  /** Fills and cancels of resting orders the broker reports on this quote. */
  private async settleResting(quote: Quote): Promise<void> {
    const fills = await this.d.broker.onQuote(quote);
    if (fills.length > 0 && this.d.faultPoint() === "after_resting_fill") throw new Error("fault injected after the broker reported a resting order's fill");
    // A resting order's fill; "working" until its fills add up to its units (OANDA can fill one in parts).
    for (const fill of fills) await this.applyAnswer(this.orderOf(fill.clientOrderId), { status: "working", fills: [fill] });
    for (const c of this.d.broker.takeCancelled?.() ?? []) {
      const order = this.d.store.getOrder(c.clientOrderId);
      if (order?.status === "working") await this.applyAnswer(order, { status: "rejected", reason: `cancelled by the broker: ${c.reason}`, fills: [] });
    }
  }

  /**
   * Entries their strategies withdrew: cancelled at the broker, whose answer
   * is applied as any other (cancelled, or the fill that came first). A
   * request stays until then: one the broker fails (or does not take) is
   * logged and asked again at most every CANCEL_RETRY_MS (it never holds up
   * the signals or the other cancels), and a restart finds it in SQLite.
   */
  private async settleCancels(): Promise<void> {
    const now = this.d.clock();
    for (const id of this.d.store.cancelRequests()) {
      if ((this.cancelRetryAt.get(id) ?? 0) > now) continue;
      try {
        const order = this.d.store.getOrder(id);
        if (order?.status === "working") {
          const answer = await this.d.broker.cancel(id);
          await this.applyAnswer(order, answer ?? { status: "rejected", reason: "unknown_to_broker", fills: [] });
        }
        this.d.storage.transactionSync(() => this.d.store.cancelSettled(id));
        this.cancelRetryAt.delete(id);
      } catch (err) {
        this.cancelRetryAt.set(id, now + CANCEL_RETRY_MS);
        logEvent("error", "trade.cancel_failed", { pair: this.d.instrument.symbol, clientOrderId: id, error: String(err) });
      }
    }
  }

  /**
   * Send the order that closes `position` (an exit or the kill switch's
   * flatten) unless one is already on its way. Attempts are numbered: an
   * attempt the broker refused, or one filled without closing the position,
   * is followed by the next, at most one every CLOSE_RETRY_MS; an attempt
   * still pending or working is waited for, so two closes never overlap and
   * reverse the position. Only an order of this runtime's own (reduce-only,
   * with a purpose, of this position) counts as an attempt: client ids can
   * never take these ids (client-order-id.ts), and if one did it would be
   * passed over. Whether an order went out (false: one is on its way).
   */
  private async close(position: Position, purpose: "exit" | "flatten"): Promise<boolean> {
    const now = this.d.clock();
    for (let attempt = this.closeAttempts.get(position.id) ?? 1; ; attempt++) {
      const intent = closeIntent(position, purpose, attempt, now);
      const known = this.d.store.getOrder(intent.clientOrderId);
      const ours = known !== undefined && known.intent.reduceOnly && known.intent.purpose !== undefined && known.intent.strategyId === position.strategyId;
      if (ours && (known.status === "pending" || known.status === "working")) return false;
      if (known !== undefined || this.d.store.hasRejection(intent.clientOrderId)) {
        if (ours && now - known.updatedAt < CLOSE_RETRY_MS) return false;
        continue;
      }
      this.closeAttempts.set(position.id, attempt);
      await this.submitNow(intent);
      return true;
    }
  }

  /**
   * Pyramiding: send the add-level order the kernel found due. Its id is
   * derived from the position and level, so it is sent at most once; one that
   * risk refused is not retried on every quote.
   */
  private async addLevel(intent: OrderIntent): Promise<void> {
    if (this.d.store.getOrder(intent.clientOrderId) || this.d.store.hasRejection(intent.clientOrderId)) return;
    await this.submitNow({ ...intent, createdAt: this.d.clock() });
  }

  /**
   * Once per life of the actor (and again after a resting order's fill could
   * not be applied), before it sends anything new:
   * 1. every order a previous life wrote to the outbox but never saw
   *    acknowledged is sent again under its client order id, which a broker
   *    answers with what it already did (the paper book; OANDA by looking the
   *    id up), and the answer is applied once;
   * 2. every order acknowledged as resting (working) is looked up by its client
   *    order id: a fill while the actor was down, or one the broker reported
   *    but the actor died before applying, is applied once;
   * 3. the position is compared with the broker's (checkPositions).
   * If the broker cannot be asked, this throws and nothing new is sent.
   */
  private async reconcile(): Promise<void> {
    if (this.reconciled) return;
    // An order left in the outbox (it waits for a price, or failed on its own and was logged) is
    // tried again next time; it never keeps the working orders from being settled.
    const outboxEmpty = await this.sendOutbox();
    if (!this.workingSettled) {
      await this.settleWorking();
      this.workingSettled = true;
    }
    if (!outboxEmpty) return;
    this.reconciled = true;
    await this.comparePositions();
  }

  private async settleWorking(): Promise<void> {
    for (const order of this.d.store.workingOrders()) {
      const answer = await this.d.broker.lookup(order.intent.clientOrderId);
      // Still resting and nothing new: the broker follows it again from here.
      if (answer?.status === "working" && answer.fills.length === 0) continue;
      if (answer === null) {
        // Acknowledged once, unknown now (a restore from another account's state, a broker reset):
        // never trusted as working; the position comparison that follows judges the units.
        logEvent("error", "trade.working_order_unknown", { pair: this.d.instrument.symbol, clientOrderId: order.intent.clientOrderId });
      }
      await this.applyAnswer(order, answer ?? { status: "rejected", reason: "unknown_to_broker", fills: [] });
    }
  }

  /**
   * Compare the runtime's net units in the pair (the sum of its open
   * positions) with what the broker holds. A difference is never trusted
   * either way: the runtime cannot know which trades it missed or which the
   * broker closed, so the mismatch halts trading and raises an alert; an
   * operator repairs it and resumes. The account must be this runtime's alone.
   * Runs on the trader's queue, so no order is mid-way while it compares.
   */
  checkPositions(): Promise<PositionCheck | null> {
    return this.serial(async () => {
      if (this.reconciled) return this.comparePositions();
      await this.reconcile(); // compares once it is through
      return this.positionCheck;
    });
  }

  private async comparePositions(): Promise<PositionCheck | null> {
    if (!this.d.broker.openUnits) return null;
    const brokerUnits = await this.d.broker.openUnits();
    const runtimeUnits = pairNetUnits(this.d.store.openPositions());
    const check = { checkedAt: this.d.clock(), runtimeUnits, brokerUnits, ok: brokerUnits === runtimeUnits };
    this.positionCheck = check;
    if (!check.ok) {
      logEvent("error", "trade.position_mismatch", { pair: this.d.instrument.symbol, runtimeUnits, brokerUnits });
      await this.d.onPositionMismatch(check);
    }
    return check;
  }

  /**
   * Send every order in the outbox again (a risk-adding one past its age is
   * only looked up); whether it is empty now. A failure of one order (not of
   * the broker as a whole) is logged and that order stays for the next try:
   * one bad order must never keep the others, new orders or exits from going out.
   */
  private async sendOutbox(): Promise<boolean> {
    const waiting = this.d.store.outbox();
    // The common case on every tick: nothing waits, and one read says so.
    if (waiting.length === 0) return true;
    for (const intent of waiting) {
      try {
        if (!intent.reduceOnly && this.d.clock() - intent.createdAt > OUTBOX_MAX_AGE_MS) await this.expire(intent);
        else await this.send(intent);
      } catch (err) {
        if (err instanceof BrokerUnavailable) throw err;
        logEvent("error", "trade.outbox_order_failed", { pair: this.d.instrument.symbol, clientOrderId: intent.clientOrderId, error: String(err).slice(0, 300) });
      }
    }
    return this.d.store.outbox().length === 0;
  }

  /** What the broker did with a stale order stands (it may have got it before the outage); if it never got it, it never will. */
  private async expire(intent: OrderIntent): Promise<void> {
    const answer = await this.d.broker.lookup(intent.clientOrderId);
    if (answer === null) logEvent("warn", "trade.order_expired", { pair: intent.pair, clientOrderId: intent.clientOrderId, ageMs: this.d.clock() - intent.createdAt });
    await this.applyAnswer(this.orderOf(intent.clientOrderId), answer ?? { status: "rejected", reason: "expired_in_outbox", fills: [] });
  }

  /** Reconcile, or re-send what is in the outbox (orders that waited for a price). Safe to call any time. */
  drainOutbox(): Promise<void> {
    // Only the outbox: pending signals need the strategy runs (decideSignals).
    return this.serial(async () => {
      if (!this.reconciled) await this.reconcile();
      else await this.sendOutbox();
    });
  }

  // ---- pipeline ---------------------------------------------------------------------

  /** The advisor's word on a risk-adding strategy order; null when off or not asked. */
  private async advise(signal: Signal, intent: OrderIntent): Promise<Advice | null> {
    if (!this.d.advisor || intent.reduceOnly) return null;
    return askAdvisor(this.d.advisor, {
      signal: toWireSignal(signal, this.d.instrument),
      order: { pair: intent.pair, side: intent.side, units: intent.units, reduceOnly: intent.reduceOnly },
    });
  }

  /** Risk, then order + outbox in one transaction (with `alsoInTransaction`), then the broker. */
  private async submitNow(intent: OrderIntent, advice: Advice | null = null, alsoInTransaction: () => void = () => {}): Promise<ExecuteResult> {
    const known = this.d.store.getOrder(intent.clientOrderId);
    if (known) return this.resultOf(known);
    const started = performance.now();
    const now = this.d.clock();
    const refusal = await this.decide(intent, now);
    if (refusal) {
      this.d.storage.transactionSync(() => {
        this.d.store.insertRejection(intent.clientOrderId, intent.strategyId, refusal, now);
        alsoInTransaction();
      });
      this.d.publish({
        type: "risk",
        pair: this.d.instrument.symbol,
        event: { clientOrderId: intent.clientOrderId, strategyId: intent.strategyId, rejection: refusal, time: now },
      });
      logEvent("info", "trade.rejected", { pair: intent.pair, clientOrderId: intent.clientOrderId, strategyId: intent.strategyId, rejection: refusal });
      return { ok: false, rejection: refusal };
    }
    if (this.d.faultPoint() === "after_approval") throw new Error("fault injected after the approval, before the outbox write");
    this.d.storage.transactionSync(() => {
      this.d.store.insertOrderWithOutbox(intent, advice, now);
      alsoInTransaction();
    });
    this.countOrder(intent, now);
    this.d.publish({ type: "order", order: this.wireOrder(this.orderOf(intent.clientOrderId)) });
    if (this.d.faultPoint() === "after_outbox") throw new Error("fault injected after the outbox write");
    await this.send(intent);
    this.orderRoundTrip.record(performance.now() - started);
    return this.resultOf(this.orderOf(intent.clientOrderId));
  }

  /** A recorded order counts in the order-rate window from now on (the kernel's rule). */
  private countOrder(intent: OrderIntent, now: number): void {
    const window = { runs: [], positions: [], orderTimesMs: this.orderTimesInWindow(now) };
    this.recentOrderTimes = [...step(this.kernel, window, { type: "order_sent", intent, nowMs: now }).state.orderTimesMs];
  }

  /** The order-rate window at `now`, oldest first. */
  private orderTimesInWindow(now: number): number[] {
    this.recentOrderTimes ??= this.d.store.orderTimesSince(now - ORDER_RATE_WINDOW_MS, ORDERS_PER_MINUTE_READ_MAX).reverse();
    return trimOrderWindow(this.recentOrderTimes, now);
  }

  /**
   * The kernel's word on the order (market, per-pair risk, broker, portfolio
   * state), then the coordinator's reservation when it adds risk. A broker
   * that just failed is given time (BrokerLink): a strategy order is refused
   * for good (its signal would be stale by then), any other fails now and is
   * tried again by its caller (the next quote for an exit, the client for a
   * manual order). Null = go ahead.
   */
  private async decide(intent: OrderIntent, now: number): Promise<OrderRejection | null> {
    const context = {
      nowMs: now,
      quote: this.d.lastQuote(),
      limits: this.d.limits(),
      tradeable: this.d.tradeable(),
      brokerAvailable: this.d.broker.available?.() !== false,
      tradingState: this.d.tradingState(),
    };
    const [decision] = this.step(this.state([], this.orderTimesInWindow(now)), { type: "order", intent, context });
    switch (decision?.type) {
      case "refused":
        return decision.rejection;
      case "retry_later":
        throw new BrokerUnavailable(`broker unavailable: ${intent.clientOrderId} not sent`);
      case "approve":
        return this.approve(decision.request);
      default:
        return null;
    }
  }

  /** A coordinator reservation for a risk-adding order; an unreachable coordinator refuses it (fail closed). */
  private async approve(request: ApprovalRequest): Promise<OrderRejection | null> {
    const asked = performance.now();
    this.asking.set(request.clientOrderId, request);
    try {
      const answer = await this.d.approve(request);
      this.approval.record(performance.now() - asked);
      return answer.approved ? null : answer.rejection;
    } catch (err) {
      return { type: "coordinator_unreachable", detail: String(err).slice(0, 200) };
    } finally {
      this.asking.delete(request.clientOrderId);
    }
  }


  /**
   * For a new life of the coordinator, which keeps its reservations in memory:
   * this pair's figures, its risk-adding orders not settled yet (in the outbox
   * or resting at the broker), and the approvals it is waiting for.
   */
  inFlight(): PairInFlight {
    const unsettled = [...this.d.store.outbox(), ...this.d.store.workingOrders().map((o) => o.intent)].filter((i) => !i.reduceOnly);
    const state = this.state();
    const quote = this.d.lastQuote();
    return { report: this.pairReport(), orders: unsettled.map((i) => approvalRequest(this.kernel, state, i, quote)), asking: [...this.asking.values()] };
  }

  private pairReport(): PairReport {
    const positions = this.d.store.openPositions();
    const quote = this.d.lastQuote();
    let unrealised = 0;
    for (const p of positions) {
      const mark = quote ? markToMarket(p, quote, { instrument: this.d.instrument }) : null;
      if (mark?.ok) unrealised += mark.value.unrealisedPnlAccountCents;
    }
    return {
      pair: this.d.instrument.symbol,
      netUnits: pairNetUnits(positions),
      openPositions: positions.length,
      mid: quote ? midDecimal(quote, this.d.instrument) : 0,
      realisedCents: this.d.store.realisedAccountCents(),
      unrealisedCents: unrealised,
    };
  }

  /** The pair's figures for the coordinator; best effort, since the next report carries absolute values. */
  private async reportTo(clientOrderId: string | undefined): Promise<void> {
    try {
      await this.d.report(this.pairReport(), clientOrderId);
    } catch (err) {
      logEvent("warn", "trade.report_failed", { pair: this.d.instrument.symbol, clientOrderId, error: String(err) });
    }
  }

  private async send(intent: OrderIntent): Promise<void> {
    const quote = this.d.lastQuote();
    if (!quote) return; // stays in the outbox until the pair has a price
    const answer = await this.d.broker.place(intent, quote);
    if (this.d.faultPoint() === "after_broker") throw new Error("fault injected after the broker answered");
    await this.applyAnswer(this.orderOf(intent.clientOrderId), answer);
  }

  /** Apply a broker answer exactly once: fills already stored are skipped, the outbox entry goes last. */
  private async applyAnswer(order: OrderRecord, answer: BrokerAnswer): Promise<void> {
    const rates = this.d.instrument.quote === this.d.accountCurrency ? [] : await this.d.conversionRates();
    const now = this.d.clock();
    const changed: Position[] = [];
    const newFills: Fill[] = [];
    const unbooked: Fill[] = [];
    try {
      this.applyInTransaction(order, answer, rates, now, changed, newFills, unbooked);
    } catch (err) {
      this.d.store.forgetTotals();
      throw err;
    }
    if (this.d.faultPoint() === "after_apply") throw new Error("fault injected after the fill was applied");
    this.publishApplied(order, changed, newFills);
    if (unbooked.length > 0) await this.haltForUnbooked(unbooked);
  }

  /** Fills the broker made that no position holds: the broker's units differ from the runtime's, as a failed reconciliation. */
  private async haltForUnbooked(fills: readonly Fill[]): Promise<void> {
    const runtimeUnits = pairNetUnits(this.d.store.openPositions());
    const brokerUnits = runtimeUnits + fills.reduce((s, f) => s + signedUnits(f.side, f.units), 0);
    const check = { checkedAt: this.d.clock(), runtimeUnits, brokerUnits, ok: false };
    this.positionCheck = check;
    try {
      await this.d.onPositionMismatch(check);
    } catch (err) {
      logEvent("error", "trade.halt_failed", { pair: this.d.instrument.symbol, error: String(err) });
    }
  }

  private applyInTransaction(order: OrderRecord, answer: BrokerAnswer, rates: ConversionRate[], now: number, changed: Position[], newFills: Fill[], unbooked: Fill[]): void {
    this.d.storage.transactionSync(() => {
      for (const fill of answer.fills) {
        if (!this.d.store.insertFill(fill)) continue;
        newFills.push(fill);
        for (const effect of this.step(this.state(), { type: "fill", intent: order.intent, fill, rates })) {
          if (effect.type === "position") {
            this.d.store.savePosition(effect.position, effect.before?.version ?? 0, now);
            changed.push(effect.position);
          } else if (effect.type === "protection_dropped") {
            // The units are at the broker whatever their protection: the position is tracked without the
            // part that cannot be applied (the order's prices were checked, so this is a defect); say so.
            logEvent("error", "trade.protection_not_applied", { pair: fill.pair, clientOrderId: fill.clientOrderId, error: effect.error });
          } else if (effect.type === "unbooked") {
            // A fill the runtime cannot book at all (no conversion rate, a malformed broker fill) must not
            // jam the pair by failing this transaction on every drain: it is kept (never applied twice),
            // its order settles, and the difference with the broker halts trading and raises the alarm.
            logEvent("error", "trade.fill_not_applied", { pair: fill.pair, clientOrderId: fill.clientOrderId, fillId: fill.id, error: effect.error });
            unbooked.push(fill);
          }
        }
      }
      this.d.store.setOrderStatus(order.intent.clientOrderId, this.statusAfter(order, answer), now, answer.status === "rejected" ? answer.reason : null);
      // Filled, working at the broker or rejected by it: either way acknowledged.
      this.d.store.removeFromOutbox(order.intent.clientOrderId);
    });
  }

  /**
   * A working order whose fills add up to its units is filled; a broker's
   * final answer stands (a FOK order filled in part, the rest cancelled, is
   * filled; one cancelled after a part filled too, the cancel noted).
   */
  private statusAfter(order: OrderRecord, answer: BrokerAnswer): OrderStatus {
    const filledUnits = this.d.store.fillsOf(order.intent.clientOrderId).reduce((sum, f) => sum + f.units, 0);
    if (answer.status === "working") return filledUnits >= order.intent.units ? "filled" : "working";
    if (answer.status === "rejected" && filledUnits > 0) return "filled";
    return answer.status;
  }

  private publishApplied(order: OrderRecord, changed: Position[], newFills: Fill[]): void {
    const stored = this.orderOf(order.intent.clientOrderId);
    this.d.publish({ type: "order", order: this.wireOrder(stored) });
    for (const fill of newFills) {
      const wire = this.wireFill(fill);
      this.d.publish({ type: "fill", fill: wire });
      logEvent("info", "trade.fill", { ...wire, strategyId: order.intent.strategyId });
    }
    for (const p of changed) this.d.publish({ type: "position", position: this.wirePosition(p) });
    // Not awaited: until the report lands the coordinator still counts the order's reservation,
    // which errs on the safe side, and the report carries absolute figures. An order still working
    // keeps its reservation; a part already filled is reported too (counted twice meanwhile: the safe side).
    const done = stored.status !== "working";
    if (done || newFills.length > 0) void this.reportTo(done ? order.intent.clientOrderId : undefined);
  }

  /** Kill switch: close every open position of the pair with reduce-only market orders (or the close already on its way). */
  flatten(): Promise<number> {
    return this.serial(async () => {
      const exits = this.step(this.state(), { type: "flatten" });
      let failed: unknown = null;
      for (const exit of exits) {
        // One position's failure never keeps the others open.
        try {
          if (exit.type === "exit") await this.close(exit.position, exit.purpose);
        } catch (err) {
          failed ??= err;
        }
      }
      if (failed !== null) throw failed;
      return exits.length;
    });
  }

  // ---- reads -----------------------------------------------------------------------

  private orderOf(id: string): OrderRecord {
    const order = this.d.store.getOrder(id);
    if (!order) throw new Error(`order ${id} not found`);
    return order;
  }

  private resultOf(order: OrderRecord): ExecuteResult {
    const position = this.d.store.openPosition(order.intent.strategyId) ?? null;
    return {
      ok: true,
      order: this.wireOrder(order),
      fills: this.d.store.fillsOf(order.intent.clientOrderId).map((f) => this.wireFill(f)),
      position: position ? this.wirePosition(position) : null,
    };
  }

  orders(limit: number): WireOrder[] {
    return this.d.store.recentOrders(limit).map((o) => this.wireOrder(o));
  }

  positions(limit: number): WirePosition[] {
    return this.d.store.recentPositions(limit).map((p) => this.wirePosition(p));
  }

  // ---- wire --------------------------------------------------------------------------

  wireOrder(o: OrderRecord): WireOrder {
    return toWireOrder(o, this.d.instrument);
  }

  private wireFill(f: Fill): WireFill {
    return toWireFill(f, this.d.instrument);
  }

  private wirePosition(p: Position): WirePosition {
    return toWirePosition(p, this.d.instrument, this.d.lastQuote());
  }
}
