/**
 * The backtest engine: bars in, one strategy on one pair, driving the same
 * trading kernel as the live actor (kernel.ts: strategies, signal -> order,
 * per-pair risk, fills booked on netting positions with exact money,
 * protective exits and add levels). This file is the kernel's replay adapter:
 * it fills orders with the paper broker's fill model (fillMarket) at the next
 * quote, charges financing, and keeps the trades, metrics and equity curve.
 *
 * Bars are pushed in time order: 1-minute candles (`barEndMs` = t + 60 s) or
 * ticks as one-point bars (`barEndMs` = t). They roll up into candles of the
 * strategy's timeframe (hours without bars make no candle). A decision at a
 * candle's close is filled at the first quote after it: the open of the next
 * bar, bid for a sell and ask for a buy, where the ask is the bid plus a
 * configured spread (bid-only data such as histdata) or the data's own ask.
 * Stops and targets are checked on each bar's quote path (barPath: open, then
 * low and high in the order the bar's direction suggests, then close: the
 * ticks a replay into the actor sends).
 * A position still open after the last bar is closed at its close.
 *
 * Memory is bounded whatever the range: no bar is kept; trades grow with
 * trading, the equity curve is thinned (EquitySampler).
 */
import type { FillModelConfig, RiskLimits } from "../../schemas/trading.ts";
import type { StrategyConfig } from "../../schemas/strategy.ts";
import type { Candle, Timeframe } from "../domain/candle.ts";
import { bucketEnd, fxDayStart } from "../domain/fx-time.ts";
import type { Instrument } from "../domain/instruments.ts";
import { averagePriceDecimal, pipsToPoints, toDecimal } from "../domain/price.ts";
import { barPath } from "../domain/bar-path.ts";
import { CandleAggregator, type ClosedCandle } from "../domain/candle-aggregator.ts";
import { clientOrderId } from "../domain/trading/client-order-id.ts";
import { expired, fillMarket, triggerPending, type PendingPhase } from "../domain/trading/fill-model.ts";
import { financingQuoteMicros, NO_FINANCING, rolloverNights, type FinancingRates } from "../domain/trading/financing.ts";
import { centsToDecimal, convertQuoteMicrosToAccountCents, microsToDecimal, type ConversionRate } from "../domain/trading/money.ts";
import { emptyKernelState, step, watchesQuotes, type KernelConfig, type KernelEffect, type KernelEvent, type KernelState, type OrderContext } from "../domain/trading/kernel.ts";
import { markToMarket, type Position } from "../domain/trading/position.ts";
import { closeIntent } from "../domain/trading/signal-intent.ts";
import { runTimeframes, startRun } from "../domain/strategy/run.ts";
import type { StrategyFault } from "../domain/strategy/step.ts";
import type { Fill, OrderIntent, OrderRejection, Quote, Signal } from "../domain/trading/types.ts";
import type { TradingStatus } from "../domain/portfolio/messages.ts";
import { EquitySampler } from "./equity-sampler.ts";
import { MetricsTracker } from "./metrics.ts";
import type { BacktestResult, BacktestSettings, BacktestTrade } from "./result.ts";

const ACCOUNT = "USD";

/** A backtest has no coordinator (yet): the portfolio is active and approves whatever per-pair risk lets through. */
const ACTIVE: TradingStatus = { state: "ACTIVE", reason: "backtest", since: 0 };

export interface BacktestOptions {
  instrument: Instrument;
  strategy: StrategyConfig;
  /** Requested range, epoch ms (recorded in the settings; bars outside it are the caller's to skip). */
  fromMs: number;
  toMs: number;
  /**
   * Candles closing before this only warm the strategy up: no orders, no
   * equity (walk-forward out-of-sample runs start warm). Default: fromMs.
   */
  tradeFromMs?: number;
  /** Ask = bid + this many pips; null = the data's own ask. Default 1.0 (the reference run). */
  spreadPips?: number | null;
  /** Slippage and commission, as the paper broker. Default none. */
  fillModel?: FillModelConfig;
  financing?: FinancingRates;
  initialBalanceUsd?: number;
  /** Per-pair risk limits checked on every order, as in the actor; omitted = no checks. */
  risk?: RiskLimits;
  /** Rates that turn this pair's quote currency into USD, for crosses (e.g. GBP_USD for EUR_GBP); current at the time asked. */
  conversionRates?: () => readonly ConversionRate[];
  /** Told of every signal and every order's outcome, as they happen (the strategy test kit reads them). */
  observer?: BacktestObserver;
}

export interface BacktestObserver {
  signal?(signal: Signal): void;
  /** An order filled, refused with its rejection, or (a resting entry) expired unfilled or withdrawn by its strategy. */
  order?(intent: OrderIntent, outcome: { filled: Fill } | { refused: OrderRejection } | { expired: number } | { cancelled: number }): void;
}

export const DEFAULT_INITIAL_BALANCE_USD = 100_000;

/** The strategy's step failed: a backtest stops there, with the strategy's own words. */
export class StrategyFaultError extends Error {
  override readonly name = "StrategyFaultError";
  constructor(
    readonly strategyId: string,
    readonly atMs: number,
    readonly fault: StrategyFault,
  ) {
    super(`strategy ${strategyId} failed at ${new Date(atMs).toISOString()} (${fault.code}): ${fault.message}`);
  }
}
/** Trades listed in a result; later ones still count in every total and metric (a 1-minute strategy over years can trade millions of times). */
export const TRADES_LISTED_MAX = 100_000;

export class Backtester {
  private readonly instrument: Instrument;
  /** The strategy's first watched timeframe: the equity curve is sampled at its closes. */
  private readonly tf: Timeframe;
  /** The candles of every timeframe the strategy reads, rolled up from the bars (the live actor's aggregator). */
  private readonly aggregator: CandleAggregator;
  private readonly kernel: KernelConfig;
  private state: KernelState;
  /** Some open position has levels a quote can trigger: only then is each bar's quote path walked (kept per change, not asked per bar). */
  private watchingQuotes = false;
  /** The strategy steps on every tick (onTick): every bar's quote path is walked. */
  private readonly ticking: boolean;
  private readonly spreadPoints: number | null;
  private readonly fillModel: FillModelConfig;
  private readonly financing: FinancingRates;
  private readonly settings: BacktestSettings;
  private readonly metrics: MetricsTracker;
  private readonly equity = new EquitySampler();
  private readonly trades: BacktestTrade[] = [];
  private tradeCount = 0;
  private readonly rejections = new Map<string, number>();

  private pending: OrderIntent[] = [];
  /** Limit and stop entries resting until triggered or expired (as the paper broker keeps them). */
  private resting: OrderIntent[] = [];
  private realisedMicros = 0n;
  private realisedCents = 0n;
  private financingCents = 0n;
  private positionFinancingCents = 0;
  private positionPeakUnits = 0;
  private exposureMs = 0;
  private nextRollMs = Number.NEGATIVE_INFINITY;
  private readonly tradeFromMs: number;
  private bars = 0;
  private candles = 0;
  private firstMs: number | null = null;
  private lastMs: number | null = null;
  // The last bar's start and close, for ordering and the final close-out (bars are not kept).
  private lastBarT = Number.NEGATIVE_INFINITY;
  private lastBid = 0;
  private lastAsk = 0;
  private fillSeq = 0;
  private readonly scratch: Candle = { t: 0, bo: 0, bh: 0, bl: 0, bc: 0, ao: 0, ah: 0, al: 0, ac: 0, n: 0 };

  constructor(private readonly options: BacktestOptions) {
    const { instrument, strategy } = options;
    this.instrument = instrument;
    const run = startRun(strategy, instrument);
    this.kernel = { instrument, accountCurrency: ACCOUNT };
    this.state = emptyKernelState([run]);
    this.tf = run.memory.watch.timeframes[0] as Timeframe;
    this.ticking = run.memory.watch.ticks;
    this.aggregator = new CandleAggregator(undefined, runTimeframes(run));
    const spreadPips = options.spreadPips === undefined ? 1.0 : options.spreadPips;
    this.spreadPoints = spreadPips === null ? null : pipsToPoints(spreadPips, instrument);
    if (this.spreadPoints !== null && !(Number.isSafeInteger(this.spreadPoints) && this.spreadPoints >= 0)) {
      throw new RangeError(`spreadPips must give a whole, non-negative number of points, got ${spreadPips}`);
    }
    this.tradeFromMs = options.tradeFromMs ?? options.fromMs;
    this.fillModel = options.fillModel ?? { slippagePips: 0, commissionPerMillion: 0 };
    this.financing = options.financing ?? NO_FINANCING;
    const initialBalanceUsd = options.initialBalanceUsd ?? DEFAULT_INITIAL_BALANCE_USD;
    if (!(Number.isSafeInteger(initialBalanceUsd * 100) && initialBalanceUsd > 0)) throw new RangeError(`initialBalanceUsd must be positive whole cents, got ${initialBalanceUsd}`);
    this.metrics = new MetricsTracker(Math.round(initialBalanceUsd * 100));
    this.settings = {
      pair: instrument.symbol,
      fromMs: options.fromMs,
      toMs: options.toMs,
      strategy: { id: strategy.id, kind: strategy.kind, units: strategy.units, params: { ...strategy.params } },
      spreadPips,
      slippagePips: this.fillModel.slippagePips,
      commissionPerMillion: this.fillModel.commissionPerMillion,
      financingLongPct: this.financing.longPct,
      financingShortPct: this.financing.shortPct,
      initialBalanceUsd,
    };
  }

  /** One bar, in time order. The bar object may be reused by the caller after this returns. */
  onBar(bar: Candle, barEndMs: number): void {
    if (bar.t < this.lastBarT) throw new RangeError(`bars out of order: ${bar.t} after ${this.lastBarT}`);
    this.bars++;
    // A candle whose period ended before this bar closes first: its decision fills at this bar's open.
    const ended = this.aggregator.closeDue(bar.t);
    if (ended.length > 0) this.onCandlesClosed(ended);
    if (bar.t >= this.nextRollMs) this.chargeFinancing(bar);
    if (this.pending.length > 0) this.sendPending(this.quoteAt(bar.t, bar.bo, bar.ao));
    if (this.watchingQuotes || this.resting.length > 0 || this.ticking) this.walkBar(bar, barEndMs);
    this.aggregator.addBar(this.priced(bar));
    const done = this.aggregator.closeDue(barEndMs);
    if (done.length > 0) this.onCandlesClosed(done);
    this.lastBarT = bar.t;
    this.lastBid = bar.bc;
    this.lastAsk = bar.ac;
    this.lastMs = Math.max(barEndMs, bar.t);
  }

  /**
   * The bar as the strategy's candles see it: with a fixed spread its ask
   * side is bid + spread, as the quotes are (and as a replay's ticks are), so
   * a strategy reading mid or ask prices decides on the prices it trades at.
   * One scratch object, reused: the aggregator copies what it keeps.
   */
  private priced(bar: Candle): Candle {
    const spread = this.spreadPoints;
    if (spread === null) return bar;
    const c = this.scratch;
    c.t = bar.t;
    c.bo = bar.bo;
    c.bh = bar.bh;
    c.bl = bar.bl;
    c.bc = bar.bc;
    c.ao = bar.bo + spread;
    c.ah = bar.bh + spread;
    c.al = bar.bl + spread;
    c.ac = bar.bc + spread;
    c.n = bar.n;
    return c;
  }

  private quoteAt(ts: number, bid: number, ask: number): Quote {
    return { ts, bid, ask: this.spreadPoints === null ? ask : bid + this.spreadPoints };
  }

  /** Step the kernel; its new state is kept, its effects returned. */
  private step(event: KernelEvent): KernelEffect[] {
    const out = step(this.kernel, this.state, event);
    if (out.state.positions !== this.state.positions) this.watchingQuotes = watchesQuotes(out.state);
    this.state = out.state;
    return out.effects;
  }

  /** The strategy's open position (one strategy, at most one). */
  private get position(): Position | null {
    return this.state.positions[0] ?? null;
  }

  /**
   * On the bar's quote path (barPath: open, low/high, close), as the live
   * pair on each tick: resting entries first (expiry, then trigger, as the
   * paper broker), then protective exits and add levels.
   */
  private walkBar(bar: Candle, barEndMs: number): void {
    for (const { ts, bid, ask } of barPath(bar, null)) {
      if (!this.ticking && this.state.positions.length === 0 && this.resting.length === 0) return;
      // Stamped at its place in the bar (a tick, whose bar ends where it starts, keeps its own time).
      const quote = this.quoteAt(Math.min(ts, barEndMs), bid, ask);
      // As the live pair on a tick: the strategies that watch ticks decide (filled at this quote), then resting entries and exits.
      if (this.ticking) this.onTick(quote);
      if (this.resting.length > 0) this.settleResting(quote);
      if (this.state.positions.length === 0) continue;
      for (const effect of this.step({ type: "quote", quote })) {
        if (effect.type === "fault") throw effect.error;
        if (effect.type === "exit") this.send(closeIntent(effect.position, "exit", 1, quote.ts), quote, effect.reason);
        else if (effect.type === "order") this.send(effect.intent, quote, "signal");
      }
    }
  }

  private onCandlesClosed(closed: readonly ClosedCandle[]): void {
    for (const c of closed) this.onCandleClose(c.tf, c.candle);
  }

  private onCandleClose(tf: Timeframe, candle: Candle): void {
    const closeTs = bucketEnd(tf, candle.t);
    // The account as the strategies see it, and as the equity curve draws it: nothing fills during the step.
    const balance = this.balanceCents(this.quoteAt(closeTs, candle.bc, candle.ac));
    const account = { currency: ACCOUNT, equity: balance / 100 };
    const signals = this.stepStrategies({ type: "candle", tf, candle, entries: this.resting, account }, closeTs);
    if (closeTs > this.tradeFromMs) for (const intent of this.ordersOf(signals)) this.pending.push(intent);
    if (tf !== this.tf) return;
    this.candles++;
    if (this.firstMs === null) this.firstMs = candle.t;
    this.equity.push({ t: closeTs, accountCents: balance - this.metrics.initialCents });
    this.metrics.onEquity(closeTs, balance);
  }

  /** Initial balance + realised + financing + the open position marked at `quote` (a candle's close, or a tick). */
  private balanceCents(quote: Quote): number {
    let cents = BigInt(this.metrics.initialCents) + this.realisedCents + this.financingCents;
    const p = this.position;
    if (p !== null) {
      const mark = markToMarket(p, quote, { instrument: this.instrument, rates: this.rates() });
      if (!mark.ok) throw new Error(`backtest: cannot value ${p.pair} in USD at ${new Date(quote.ts).toISOString()}: no conversion rate`);
      cents += BigInt(mark.value.unrealisedPnlAccountCents);
    }
    return Number(cents);
  }

  private rates(): readonly ConversionRate[] {
    return this.options.conversionRates?.() ?? [];
  }

  private sendPending(quote: Quote): void {
    const orders = this.pending;
    this.pending = [];
    for (const intent of orders) this.send({ ...intent, createdAt: quote.ts }, quote, "signal");
  }

  /** The strategy's tick step; its orders go out at this very quote, as the live pair sends them on the tick that decided them. */
  private onTick(quote: Quote): void {
    const account = { currency: ACCOUNT, equity: this.balanceCents(quote) / 100 };
    const signals = this.stepStrategies({ type: "tick", quote, entries: this.resting, account }, quote.ts);
    if (quote.ts >= this.tradeFromMs) for (const intent of this.ordersOf(signals)) this.send({ ...intent, createdAt: quote.ts }, quote, "signal");
  }

  /** A candle or tick step of the strategy: a fault stops the backtest, withdrawn entries go at once; its signals. */
  private stepStrategies(event: Extract<KernelEvent, { type: "candle" | "tick" }>, atMs: number): Signal[] {
    const signals: Signal[] = [];
    for (const effect of this.step(event)) {
      if (effect.type === "strategy_fault") throw new StrategyFaultError(effect.strategyId, atMs, effect.fault);
      if (effect.type === "cancel") this.cancelEntry(effect.intent.clientOrderId, atMs);
      if (effect.type === "signal") signals.push(effect.signal);
    }
    return signals;
  }

  /** The orders the kernel makes of signals (told to the observer first). */
  private ordersOf(signals: readonly Signal[]): OrderIntent[] {
    const orders: OrderIntent[] = [];
    for (const signal of signals) {
      this.options.observer?.signal?.(signal);
      for (const decided of this.step({ type: "signal", signal })) if (decided.type === "order") orders.push(decided.intent);
    }
    return orders;
  }

  /** Resting entries on a quote: expired ones dropped, triggered ones filled at their price (the paper broker's rule). */
  private settleResting(quote: Quote): void {
    this.resting = this.resting.filter((intent) => !this.settleEntry(intent, quote, "resting"));
  }

  /** A resting entry withdrawn by its strategy: gone before anything else happens at this instant (the paper broker's cancel). */
  private cancelEntry(clientOrderId: string, atMs: number): void {
    const intent = this.resting.find((o) => o.clientOrderId === clientOrderId);
    if (!intent) return;
    this.resting = this.resting.filter((o) => o !== intent);
    this.options.observer?.order?.(intent, { cancelled: atMs });
  }

  /** An entry on a quote, as the paper broker takes it: gone when expired, else filled when triggered. Whether it is done. */
  private settleEntry(intent: OrderIntent, quote: Quote, phase: PendingPhase): boolean {
    if (expired(intent, quote)) {
      this.options.observer?.order?.(intent, { expired: quote.ts });
      return true;
    }
    const fill = triggerPending(intent, quote, this.fillModel, this.instrument, this.fillSeq + 1, phase);
    if (!fill) return false;
    this.fillSeq++;
    this.book(intent, fill, "signal");
    return true;
  }

  /** The kernel's word on the order (risk when configured; no portfolio yet), then a fill at `quote` as the paper broker would: a market order at once, an entry when triggered. */
  private send(intent: OrderIntent, quote: Quote, exitReason: string): void {
    const context: OrderContext = { nowMs: quote.ts, quote, limits: this.options.risk ?? null, tradeable: true, brokerAvailable: true, tradingState: ACTIVE };
    for (const decided of this.step({ type: "order", intent, context })) {
      if (decided.type === "refused") {
        const type = decided.rejection.type;
        this.rejections.set(type, (this.rejections.get(type) ?? 0) + 1);
        this.options.observer?.order?.(intent, { refused: decided.rejection });
        return;
      }
    }
    this.step({ type: "order_sent", intent, nowMs: quote.ts });
    if (intent.type !== "market") {
      if (!this.settleEntry(intent, quote, "arrival")) this.resting.push(intent);
      return;
    }
    this.book(intent, fillMarket(intent, quote, this.fillModel, this.instrument, ++this.fillSeq), exitReason);
  }

  /** A fill on the strategy's position: booked by the kernel; a closed trade recorded. */
  private book(intent: OrderIntent, fill: Fill, exitReason: string): void {
    this.options.observer?.order?.(intent, { filled: fill });
    const before = this.position;
    for (const effect of this.step({ type: "fill", intent, fill, rates: this.rates() })) {
      // A fill the backtest cannot book in full is a defect of its inputs: say so rather than trade on without it.
      if (effect.type === "unbooked" || effect.type === "protection_dropped") throw new Error(`backtest: fill ${fill.id} refused: ${JSON.stringify(effect.error)}`);
      if (effect.type === "closed") this.recordTrade(effect.position, fill.ts, toDecimal(fill.price, this.instrument), exitReason);
    }
    const next = this.position;
    if (next !== null && next.id !== before?.id) {
      this.positionPeakUnits = 0;
      this.positionFinancingCents = 0;
    }
    if (next !== null) {
      this.positionPeakUnits = Math.max(this.positionPeakUnits, next.units);
      if (this.nextRollMs === Number.NEGATIVE_INFINITY || next.id !== before?.id) this.nextRollMs = bucketEnd("1D", fxDayStart(fill.ts));
    }
  }

  private recordTrade(closed: Position, exitT: number, exitPrice: number, exitReason: string): void {
    this.realisedMicros += BigInt(closed.realisedPnlQuoteMicros);
    this.realisedCents += BigInt(closed.realisedPnlAccountCents);
    this.exposureMs += exitT - closed.openedAt;
    this.tradeCount++;
    const trade: BacktestTrade = {
      side: closed.side,
      units: Math.max(this.positionPeakUnits, closed.units),
      entryT: closed.openedAt,
      entryPrice: averagePriceDecimal(closed.entryPrice, this.instrument),
      exitT,
      exitPrice,
      pnlQuoteMicros: closed.realisedPnlQuoteMicros,
      pnlAccountCents: closed.realisedPnlAccountCents,
      financingAccountCents: this.positionFinancingCents,
      exitReason,
    };
    this.metrics.onTrade(trade);
    if (this.trades.length < TRADES_LISTED_MAX) this.trades.push(trade);
  }

  /** Every 17:00 New York roll passed since the last bar, with the position held over it. */
  private chargeFinancing(bar: Candle): void {
    const p = this.position;
    if (p === null) {
      this.nextRollMs = Number.POSITIVE_INFINITY;
      return;
    }
    const price = bar.bo;
    while (this.nextRollMs <= bar.t) {
      const micros = financingQuoteMicros(p.side, p.units, price, rolloverNights(this.nextRollMs), this.financing, this.instrument);
      if (micros !== 0) {
        const cents = convertQuoteMicrosToAccountCents(micros, this.instrument.quote, ACCOUNT, [{ instrument: this.instrument, points: price }, ...this.rates()]);
        if (!cents.ok) throw new Error(`backtest: no USD rate for financing on ${p.pair}`);
        this.realisedMicros += BigInt(micros);
        this.financingCents += BigInt(cents.value);
        this.positionFinancingCents += cents.value;
      }
      this.nextRollMs = bucketEnd("1D", this.nextRollMs);
    }
  }

  /** Close the last candle and any open position; the result. Call once. */
  finish(): BacktestResult {
    this.onCandlesClosed(this.aggregator.closeDue(Number.POSITIVE_INFINITY));
    // A decision on the last candle has no next quote: dropped, like a live order after the data ends.
    this.pending = [];
    const p = this.position;
    if (p !== null && this.lastMs !== null) {
      const closeTs = this.lastMs;
      const quote = this.quoteAt(closeTs, this.lastBid, this.lastAsk);
      this.send(
        { clientOrderId: clientOrderId(this.instrument.symbol, p.strategyId, `end:${closeTs}`), pair: p.pair, strategyId: p.strategyId, side: p.side === "buy" ? "sell" : "buy", units: p.units, type: "market", reduceOnly: true, createdAt: closeTs },
        quote,
        "end",
      );
      this.equity.amendLast(Number(this.realisedCents + this.financingCents));
    }
    const finalCents = this.metrics.initialCents + Number(this.realisedCents + this.financingCents);
    const span = this.firstMs !== null && this.lastMs !== null ? this.lastMs - this.firstMs : 0;
    const pnlQuoteMicros = Number(this.realisedMicros);
    const pnlAccountCents = Number(this.realisedCents + this.financingCents);
    return {
      settings: this.settings,
      pair: this.instrument.symbol,
      strategyId: this.options.strategy.id,
      timeframe: this.tf,
      bars: this.bars,
      candles: this.candles,
      firstMs: this.firstMs,
      lastMs: this.lastMs,
      trades: this.trades,
      tradeCount: this.tradeCount,
      tradesOmitted: this.tradeCount - this.trades.length,
      pnlQuoteMicros,
      pnlAccountCents,
      pnlQuote: microsToDecimal(pnlQuoteMicros),
      pnlAccount: centsToDecimal(pnlAccountCents),
      financingAccountCents: Number(this.financingCents),
      rejections: Object.fromEntries([...this.rejections].sort((a, b) => a[0].localeCompare(b[0]))),
      equity: this.equity.points(),
      metrics: this.metrics.finish(finalCents, span, this.exposureMs),
    };
  }
}
