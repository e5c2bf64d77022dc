/**
 * One pair of a backtest: its strategies on the trading kernel (kernel.ts,
 * the same the live pair actor drives), filled as the paper broker fills, with
 * financing charged per night held. This is the kernel's replay adapter; the
 * portfolio around it (portfolio-backtester.ts) plays the coordinator's part
 * through `ReplayDesk`: the account, the other pairs' prices, approvals and
 * reports, the trading state.
 *
 * Bars are pushed in time order: 1-minute candles (`barEndMs` = t + 60 s) or
 * ticks as one-point bars (`barEndMs` = t). They roll up into candles of the
 * strategies' timeframes (hours without bars make no candle). A decision at a
 * candle's close is filled at the first quote after it: the open of the next
 * bar, bid for a sell and ask for a buy, where the ask is the bid plus a
 * configured spread (bid-only data such as histdata) or the data's own ask.
 * Stops and targets are checked on each bar's quote path (barPath: open, then
 * low and high in the order the bar's direction suggests, then close: the
 * ticks a replay into the actor sends).
 */
import type { FillModelConfig, RiskLimits } from "../../schemas/trading.ts";
import type { PortfolioRejection } from "../../schemas/portfolio.ts";
import type { StrategyConfig } from "../../schemas/strategy.ts";
import type { Candle, Timeframe } from "../domain/candle.ts";
import { bucketEnd, fxDayStart } from "../domain/fx-time.ts";
import type { Instrument } from "../domain/instruments.ts";
import { averagePriceDecimal, midDecimal, pipsToPoints, toDecimal } from "../domain/price.ts";
import { barPath } from "../domain/bar-path.ts";
import { CandleAggregator, type ClosedCandle } from "../domain/candle-aggregator.ts";
import { clientOrderId } from "../domain/trading/client-order-id.ts";
import { expired, fillMarket, triggerPending, type PendingPhase } from "../domain/trading/fill-model.ts";
import { financingQuoteMicros, rolloverNights, type FinancingRates } from "../domain/trading/financing.ts";
import { convertQuoteMicrosToAccountCents, type ConversionRate } from "../domain/trading/money.ts";
import { emptyKernelState, pairNetUnits, step, watchesQuotes, type KernelConfig, type KernelEffect, type KernelEvent, type KernelState, type OrderContext } from "../domain/trading/kernel.ts";
import { markToMarket, type Position } from "../domain/trading/position.ts";
import { closeIntent } from "../domain/trading/signal-intent.ts";
import { runTimeframes, startRun } from "../domain/strategy/run.ts";
import type { StrategyAccount } from "../domain/strategy/api.ts";
import type { StrategyFault } from "../domain/strategy/step.ts";
import type { ApprovalRequest, PairReport, TradingStatus } from "../domain/portfolio/messages.ts";
import type { Fill, OrderIntent, OrderRejection, Quote, Signal } from "../domain/trading/types.ts";
import type { BacktestTrade } from "./result.ts";

/** What a pair of a backtest asks of the portfolio around it (the coordinator's part, and the account). */
export interface ReplayDesk {
  readonly accountCurrency: string;
  /** The account as the strategies see it now (a candle's close, a tick). */
  account(): StrategyAccount;
  /** Rates that value `pair`'s quote currency in the account currency now (its own price is added by the caller). */
  rates(pair: PairReplay): readonly ConversionRate[];
  /** The portfolio's trading state now. */
  status(): TradingStatus;
  /** The portfolio's word on a risk-adding order, reserving its room: null when approved. */
  approve(request: ApprovalRequest, nowMs: number): PortfolioRejection | null;
  /** After a fill, or an approved order that ended without one (releasing its reservation): the pair's figures changed. */
  report(pair: PairReplay, clientOrderId: string | undefined, nowMs: number): void;
  /** An order refused, by per-pair risk or the portfolio. */
  refused(pair: PairReplay, intent: OrderIntent, rejection: OrderRejection, nowMs: number): void;
  /** A position closed. */
  trade(pair: PairReplay, strategyId: string, trade: BacktestTrade): void;
}

export interface BacktestObserver {
  signal?(signal: Signal): void;
  /** An order filled, refused with its rejection, or (a resting entry) expired unfilled or withdrawn by its strategy. */
  order?(intent: OrderIntent, outcome: { filled: Fill } | { refused: OrderRejection } | { expired: number } | { cancelled: number }): void;
}

export interface PairReplayOptions {
  instrument: Instrument;
  strategies: readonly StrategyConfig[];
  /** Ask = bid + this many pips; null = the data's own ask. */
  spreadPips: number | null;
  fillModel: FillModelConfig;
  financing: FinancingRates;
  /** Per-pair risk limits checked on every order, as in the actor; null = none. */
  risk: RiskLimits | null;
  /** Candles closing before this only warm the strategies up: no orders. */
  tradeFromMs: number;
  observer?: BacktestObserver;
}

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

/** One strategy's money on the pair, and what its open position has been charged and reached. */
export interface StrategyLedger {
  readonly strategyId: string;
  realisedMicros: bigint;
  realisedCents: bigint;
  financingCents: bigint;
  /** The open position these figures are for (financing and peak size restart with a new one). */
  positionId: string | null;
  positionPeakUnits: number;
  positionFinancingCents: number;
  /** Next 17:00 New York roll the open position is charged at. */
  nextRollMs: number;
}

export class PairReplay {
  readonly instrument: Instrument;
  readonly symbol: string;
  /** The first watched timeframe of each strategy, in order (the portfolio marks equity at the shortest). */
  readonly timeframes: readonly Timeframe[];
  readonly ledgers: readonly StrategyLedger[];
  private readonly aggregator: CandleAggregator;
  /** A pair without strategies only prices currencies: its bars move its quote, nothing else. */
  private readonly pricesOnly: boolean;
  private readonly kernel: KernelConfig;
  private state: KernelState;
  /** Some open position has levels a quote can trigger: only then is each bar's quote path walked (kept per change, not asked per bar). */
  private watchingQuotes = false;
  /** Some strategy steps on every tick (onTick): every bar's quote path is walked. */
  private readonly ticking: boolean;
  private readonly spreadPoints: number | null;
  private pending: OrderIntent[] = [];
  /** Limit and stop entries resting until triggered or expired (as the paper broker keeps them). */
  private resting: OrderIntent[] = [];
  /** The earliest roll an open position is charged at. */
  private nextRollMs = Number.POSITIVE_INFINITY;
  private fillSeq = 0;
  private realisedTotalCents = 0;
  /** Moves whenever the pair's quote, positions or money may have: the portfolio values the account again only then. */
  version = 0;
  bars = 0;
  lastMs: number | null = null;
  private lastBarT = Number.NEGATIVE_INFINITY;
  // The pair's latest quote: a bar's close is kept as numbers (no object per bar), a quote on a bar's path as is.
  private closeBid = 0;
  private closeAsk = 0;
  private closeTs = Number.NaN;
  private pathQuote: Quote | null = null;
  private readonly scratch: Candle = { t: 0, bo: 0, bh: 0, bl: 0, bc: 0, ao: 0, ah: 0, al: 0, ac: 0, n: 0 };

  constructor(
    private readonly options: PairReplayOptions,
    private readonly desk: ReplayDesk,
  ) {
    const { instrument } = options;
    this.instrument = instrument;
    this.symbol = instrument.symbol;
    const runs = options.strategies.map((s) => startRun(s, instrument));
    this.kernel = { instrument, accountCurrency: desk.accountCurrency };
    this.state = emptyKernelState(runs);
    this.timeframes = runs.map((r) => r.memory.watch.timeframes[0] as Timeframe);
    this.ticking = runs.some((r) => r.memory.watch.ticks);
    const timeframes = [...new Set(runs.flatMap((r) => runTimeframes(r)))];
    this.pricesOnly = timeframes.length === 0;
    // (A prices-only pair never feeds its aggregator: the timeframe given it is never used.)
    this.aggregator = new CandleAggregator(undefined, this.pricesOnly ? ["1D"] : timeframes);
    this.ledgers = options.strategies.map((s) => ({ strategyId: s.id, realisedMicros: 0n, realisedCents: 0n, financingCents: 0n, positionId: null, positionPeakUnits: 0, positionFinancingCents: 0, nextRollMs: Number.POSITIVE_INFINITY }));
    const spreadPips = options.spreadPips;
    this.spreadPoints = spreadPips === null ? null : pipsToPoints(spreadPips, instrument);
    if (this.spreadPoints !== null && !(Number.isSafeInteger(this.spreadPoints) && this.spreadPoints >= 0)) {
      throw new RangeError(`spreadPips must give a whole, non-negative number of points, got ${spreadPips}`);
    }
  }

  /** One bar, in time order. The bar object may be reused by the caller after this returns. */
  onBar(bar: Candle, barEndMs: number): void {
    if (bar.t < this.lastBarT) throw new RangeError(`${this.symbol} bars out of order: ${bar.t} after ${this.lastBarT}`);
    this.bars++;
    this.version++;
    if (this.pricesOnly) {
      this.setClose(this.priced(bar), barEndMs);
      return;
    }
    // A candle whose period ended before this bar closes first: its decision fills at this bar's open.
    const ended = this.aggregator.closeDue(bar.t);
    if (ended.length > 0) this.onCandlesClosed(ended);
    if (bar.t >= this.nextRollMs) this.chargeFinancing(bar);
    if (this.pending.length > 0) this.sendPending(this.quoteAt(bar.t, bar.bo, bar.ao));
    if (this.watchingQuotes || this.resting.length > 0 || this.ticking) this.walkBar(bar, barEndMs);
    const priced = this.priced(bar);
    this.aggregator.addBar(priced);
    this.setClose(priced, barEndMs);
    const done = this.aggregator.closeDue(barEndMs);
    if (done.length > 0) this.onCandlesClosed(done);
  }

  /** The bar's close is the pair's quote now. */
  private setClose(priced: Candle, barEndMs: number): void {
    this.lastBarT = priced.t;
    this.lastMs = Math.max(barEndMs, priced.t);
    this.closeBid = priced.bc;
    this.closeAsk = priced.ac;
    this.closeTs = this.lastMs;
    this.pathQuote = null;
  }

  /**
   * The bar as the strategies' candles see it: with a fixed spread its ask
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

  /** The pair's latest quote (its ask priced with the configured spread): on a bar's path, else the last bar's close; null before its first bar. */
  get quote(): Quote | null {
    if (this.pathQuote !== null) return this.pathQuote;
    if (Number.isNaN(this.closeTs)) return null;
    // Made once per close asked for, kept until the next bar.
    this.pathQuote = { ts: this.closeTs, bid: this.closeBid, ask: this.closeAsk };
    return this.pathQuote;
  }

  get positions(): readonly Position[] {
    return this.state.positions;
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
      this.pathQuote = quote;
      this.version++;
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
    for (const c of closed) {
      const closeTs = bucketEnd(c.tf, c.candle.t);
      const signals = this.stepStrategies({ type: "candle", tf: c.tf, candle: c.candle, entries: this.resting, account: this.desk.account() }, closeTs);
      if (closeTs > this.options.tradeFromMs) for (const intent of this.ordersOf(signals)) this.pending.push(intent);
    }
  }

  /** Close the last candles (their decisions have no next quote: dropped, like a live order after the data ends). */
  closeCandles(): void {
    if (!this.pricesOnly) this.onCandlesClosed(this.aggregator.closeDue(Number.POSITIVE_INFINITY));
    this.pending = [];
  }

  /** Close every open position at the last quote (the end of the data): an accounting close, let through in any trading state. */
  closeOut(): void {
    const quote = this.quote;
    if (quote === null || this.lastMs === null) return;
    const closeTs = this.lastMs;
    for (const p of [...this.state.positions]) {
      const intent: OrderIntent = {
        clientOrderId: clientOrderId(this.symbol, p.strategyId, `end:${closeTs}`),
        pair: p.pair,
        strategyId: p.strategyId,
        side: p.side === "buy" ? "sell" : "buy",
        units: p.units,
        type: "market",
        reduceOnly: true,
        purpose: "flatten",
        createdAt: closeTs,
      };
      this.send(intent, { ...quote, ts: closeTs }, "end");
    }
  }

  private sendPending(quote: Quote): void {
    this.pathQuote = quote;
    this.version++;
    const orders = this.pending;
    this.pending = [];
    for (const intent of orders) this.send({ ...intent, createdAt: quote.ts }, quote, "signal");
  }

  /** The strategies' tick step; their orders go out at this very quote, as the live pair sends them on the tick that decided them. */
  private onTick(quote: Quote): void {
    const signals = this.stepStrategies({ type: "tick", quote, entries: this.resting, account: this.desk.account() }, quote.ts);
    if (quote.ts >= this.options.tradeFromMs) for (const intent of this.ordersOf(signals)) this.send({ ...intent, createdAt: quote.ts }, quote, "signal");
  }

  /** A candle or tick step of the strategies: a fault stops the backtest, withdrawn entries go at once; their signals. */
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
  private cancelEntry(id: string, atMs: number): void {
    const intent = this.resting.find((o) => o.clientOrderId === id);
    if (!intent) return;
    this.resting = this.resting.filter((o) => o !== intent);
    this.options.observer?.order?.(intent, { cancelled: atMs });
    this.desk.report(this, id, atMs);
  }

  /** An entry on a quote, as the paper broker takes it: gone when expired, else filled when triggered. Whether it is done. */
  private settleEntry(intent: OrderIntent, quote: Quote, phase: PendingPhase): boolean {
    if (expired(intent, quote)) {
      this.options.observer?.order?.(intent, { expired: quote.ts });
      this.desk.report(this, intent.clientOrderId, quote.ts);
      return true;
    }
    const fill = triggerPending(intent, quote, this.options.fillModel, this.instrument, this.fillSeq + 1, phase);
    if (!fill) return false;
    this.fillSeq++;
    this.book(intent, fill, "signal");
    return true;
  }

  /**
   * The order as the live pair takes it: the kernel's word (market, per-pair
   * risk, the portfolio's state), the portfolio's approval when it adds risk;
   * then a fill at `quote` as the paper broker would: a market order at once,
   * an entry when triggered.
   */
  private send(intent: OrderIntent, quote: Quote, exitReason: string): void {
    const context: OrderContext = { nowMs: quote.ts, quote, limits: this.options.risk, tradeable: true, brokerAvailable: true, tradingState: this.desk.status() };
    for (const decided of this.step({ type: "order", intent, context })) {
      const rejection = decided.type === "refused" ? decided.rejection : decided.type === "approve" ? this.desk.approve(decided.request, quote.ts) : null;
      if (rejection !== null) {
        this.desk.refused(this, intent, rejection, quote.ts);
        this.options.observer?.order?.(intent, { refused: rejection });
        return;
      }
    }
    this.step({ type: "order_sent", intent, nowMs: quote.ts });
    if (intent.type !== "market") {
      if (!this.settleEntry(intent, quote, "arrival")) this.resting.push(intent);
      return;
    }
    this.book(intent, fillMarket(intent, quote, this.options.fillModel, this.instrument, ++this.fillSeq), exitReason);
  }

  private ledger(strategyId: string): StrategyLedger {
    const ledger = this.ledgers.find((l) => l.strategyId === strategyId);
    if (!ledger) throw new Error(`backtest: ${this.symbol} has no strategy ${strategyId}`);
    return ledger;
  }

  /** A fill on its strategy's position: booked by the kernel; a closed trade recorded; the portfolio told. */
  private book(intent: OrderIntent, fill: Fill, exitReason: string): void {
    this.options.observer?.order?.(intent, { filled: fill });
    this.version++;
    const ledger = this.ledger(intent.strategyId);
    const rates = this.ratesNow();
    for (const effect of this.step({ type: "fill", intent, fill, rates })) {
      // A fill the backtest cannot book in full is a defect of its inputs: say so rather than trade on without it.
      if (effect.type === "unbooked" || effect.type === "protection_dropped") throw new Error(`backtest: fill ${fill.id} refused: ${JSON.stringify(effect.error)}`);
      if (effect.type === "closed") this.recordTrade(ledger, effect.position, fill.ts, toDecimal(fill.price, this.instrument), exitReason);
    }
    const next = this.state.positions.find((p) => p.strategyId === intent.strategyId) ?? null;
    if (next === null) {
      ledger.positionId = null;
      ledger.nextRollMs = Number.POSITIVE_INFINITY;
    } else {
      if (next.id !== ledger.positionId) {
        ledger.positionId = next.id;
        ledger.positionPeakUnits = 0;
        ledger.positionFinancingCents = 0;
        ledger.nextRollMs = bucketEnd("1D", fxDayStart(fill.ts));
      }
      ledger.positionPeakUnits = Math.max(ledger.positionPeakUnits, next.units);
    }
    this.nextRollMs = Math.min(...this.ledgers.map((l) => l.nextRollMs));
    this.desk.report(this, intent.clientOrderId, fill.ts);
  }

  private recordTrade(ledger: StrategyLedger, closed: Position, exitT: number, exitPrice: number, exitReason: string): void {
    ledger.realisedMicros += BigInt(closed.realisedPnlQuoteMicros);
    ledger.realisedCents += BigInt(closed.realisedPnlAccountCents);
    this.realisedTotalCents = this.sumRealised();
    this.desk.trade(this, ledger.strategyId, {
      side: closed.side,
      units: Math.max(ledger.positionPeakUnits, closed.units),
      entryT: closed.openedAt,
      entryPrice: averagePriceDecimal(closed.entryPrice, this.instrument),
      exitT,
      exitPrice,
      pnlQuoteMicros: closed.realisedPnlQuoteMicros,
      pnlAccountCents: closed.realisedPnlAccountCents,
      financingAccountCents: ledger.positionFinancingCents,
      exitReason,
    });
  }

  /** Every 17:00 New York roll passed since the last bar, for each position held over it. */
  private chargeFinancing(bar: Candle): void {
    const price = bar.bo;
    for (const ledger of this.ledgers) {
      const p = this.state.positions.find((q) => q.strategyId === ledger.strategyId);
      if (p === undefined) {
        ledger.nextRollMs = Number.POSITIVE_INFINITY;
        continue;
      }
      while (ledger.nextRollMs <= bar.t) {
        const micros = financingQuoteMicros(p.side, p.units, price, rolloverNights(ledger.nextRollMs), this.options.financing, this.instrument);
        if (micros !== 0) {
          const cents = convertQuoteMicrosToAccountCents(micros, this.instrument.quote, this.desk.accountCurrency, [{ instrument: this.instrument, points: price }, ...this.desk.rates(this)]);
          if (!cents.ok) throw new Error(`backtest: no ${this.desk.accountCurrency} rate for financing on ${p.pair}`);
          ledger.realisedMicros += BigInt(micros);
          ledger.financingCents += BigInt(cents.value);
          ledger.positionFinancingCents += cents.value;
          this.realisedTotalCents = this.sumRealised();
          this.version++;
        }
        ledger.nextRollMs = bucketEnd("1D", ledger.nextRollMs);
      }
    }
    this.nextRollMs = Math.min(...this.ledgers.map((l) => l.nextRollMs));
  }

  private ratesNow(): readonly ConversionRate[] {
    return this.instrument.quote === this.desk.accountCurrency ? [] : this.desk.rates(this);
  }

  /** Unrealised P&L of `strategyId`'s open position (every position when omitted) at the latest quote, account cents. */
  unrealisedCents(strategyId?: string): number {
    const quote = this.quote;
    if (quote === null) return 0;
    let cents = 0;
    for (const p of this.state.positions) {
      if (strategyId !== undefined && p.strategyId !== strategyId) continue;
      const mark = markToMarket(p, quote, { instrument: this.instrument, rates: this.ratesNow() });
      if (!mark.ok) throw new Error(`backtest: cannot value ${p.pair} in ${this.desk.accountCurrency} at ${new Date(quote.ts).toISOString()}: no conversion rate`);
      cents += mark.value.unrealisedPnlAccountCents;
    }
    return cents;
  }

  /** Realised P&L and financing of every strategy, account cents. */
  realisedCents(): number {
    return this.realisedTotalCents;
  }

  /** The ledgers' total, exact (BigInt), as a number: cents stay far inside 2^53. */
  private sumRealised(): number {
    let cents = 0n;
    for (const l of this.ledgers) cents += l.realisedCents + l.financingCents;
    return Number(cents);
  }

  /** Decimal mid of the latest quote; 0 before the first. */
  mid(): number {
    const quote = this.quote;
    return quote ? midDecimal(quote, this.instrument) : 0;
  }

  /** The pair's figures as the live pair reports them to the coordinator (financing counted as realised). */
  report(): PairReport {
    return {
      pair: this.symbol,
      netUnits: pairNetUnits(this.state.positions),
      openPositions: this.state.positions.length,
      mid: this.mid(),
      realisedCents: this.realisedCents(),
      unrealisedCents: this.unrealisedCents(),
    };
  }
}
