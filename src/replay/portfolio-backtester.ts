/**
 * The portfolio backtest engine: several pairs on one clock, each with its
 * strategies on the trading kernel (pair-replay.ts), one account, and the
 * portfolio's rules exactly as the Coordinator actor runs them
 * (PortfolioRules over a MemoryPortfolioStore): every risk-adding order is
 * approved against the book plus its reservations, every fill is reported,
 * a loss limit moves the trading state (REDUCING until the next 17:00 New
 * York roll, HALTED until the end), and the pairs see the state at once.
 *
 * Bars of every pair are pushed in one time order (bar-merge.ts: ties by pair
 * symbol). Money is valued in the account currency through the other pairs'
 * latest mids, as the live pair asks the pairs it is served with. Equity is
 * marked at each close of the shortest timeframe any strategy watches, for
 * the account, each pair and each strategy (metrics.ts), before anything of
 * the next bar happens.
 *
 * Memory is bounded whatever the range: no bar is kept; trades grow with
 * trading (listed up to TRADES_LISTED_MAX), every curve is thinned.
 */
import type { PortfolioLimits, PortfolioRejection } from "../../schemas/portfolio.ts";
import type { FillModelConfig, RiskLimits } from "../../schemas/trading.ts";
import type { StrategyConfig } from "../../schemas/strategy.ts";
import type { PortfolioBacktestRequest } from "../../schemas/backtest.ts";
import { TIMEFRAMES, type Candle, type Timeframe } from "../domain/candle.ts";
import { bucketEnd, bucketStart, HOUR_MS } from "../domain/fx-time.ts";
import type { Instrument } from "../domain/instruments.ts";
import { exposure, type PairBook } from "../domain/portfolio/exposure.ts";
import type { ApprovalRequest, TradingStatus } from "../domain/portfolio/messages.ts";
import { MemoryPortfolioStore, PortfolioRules } from "../domain/portfolio/portfolio-rules.ts";
import { reducingEndsAt, type StateChange } from "../domain/portfolio/trading-state.ts";
import type { StrategyAccount } from "../domain/strategy/api.ts";
import type { FinancingRates } from "../domain/trading/financing.ts";
import { centsToDecimal, conversionPairs, midRate, type ConversionRate } from "../domain/trading/money.ts";
import type { OrderIntent, OrderRejection } from "../domain/trading/types.ts";
import { pairNetUnits } from "../domain/trading/kernel.ts";
import { EquitySampler } from "./equity-sampler.ts";
import { MetricsTracker } from "./metrics.ts";
import { PairReplay, type BacktestObserver, type ReplayDesk, type StrategyLedger } from "./pair-replay.ts";
import type { ExposurePoint, PairFigures, PortfolioBacktestResult, PortfolioTrade, Refusal, StrategyFigures, TradingStateChange } from "./portfolio-result.ts";
import type { BacktestTrade } from "./result.ts";

/** Trades listed in a result; later ones still count in every total and metric (a 1-minute strategy over years can trade millions of times). */
export const TRADES_LISTED_MAX = 100_000;
/** Points of each pair's own P&L curve (the account's has EQUITY_POINTS_MAX). */
export const PAIR_EQUITY_POINTS_MAX = 2_000;
export const TRADING_STATE_CHANGES_MAX = 1_000;
export const REFUSALS_LISTED_MAX = 1_000;

const ACTIVE: TradingStatus = { state: "ACTIVE", reason: "", since: 0 };

export interface PortfolioPairOptions {
  instrument: Instrument;
  strategies: readonly StrategyConfig[];
  risk: RiskLimits | null;
  fillModel: FillModelConfig;
}

export interface PortfolioOptions {
  /** The request as run, kept in the result. */
  settings: PortfolioBacktestRequest;
  pairs: readonly PortfolioPairOptions[];
  /** Candles closing before this only warm the strategies up (walk-forward). Default: settings.from. */
  tradeFromMs?: number;
  /** Ask = bid + this many pips; null = the data's own ask. */
  spreadPips: number | null;
  financing: FinancingRates;
  accountCurrency: string;
  initialBalanceCents: number;
  /** The portfolio's limits; null = none (every risk-adding order approved, never REDUCING or HALTED). */
  limits: PortfolioLimits | null;
  /**
   * Rates that value a pair's quote currency, from outside the portfolio (a
   * single-pair backtest reads its conversion pair alongside); by default the
   * other pairs' latest mids.
   */
  externalRates?: () => readonly ConversionRate[];
  observer?: BacktestObserver;
  /**
   * Mark each pair's and strategy's equity and sample exposure (default true).
   * A single-pair backtest reports none of them and skips their cost.
   */
  breakdown?: boolean;
}

/** A part of the portfolio (the account, a pair, a strategy): its money, trades, refusals and metrics. */
class Part {
  readonly metrics: MetricsTracker;
  readonly refusals = new Map<string, number>();
  tradeCount = 0;
  /** Time with a position open: summed trade by trade (a strategy) or counted while any is open (a pair, the account). */
  exposureMs = 0;
  private open = 0;
  private openSince = 0;

  constructor(initialCents: number) {
    this.metrics = new MetricsTracker(initialCents);
  }

  refused(type: string): void {
    this.refusals.set(type, (this.refusals.get(type) ?? 0) + 1);
  }

  /** Open positions now (a pair, the account): the time any is open is its exposure. */
  openPositions(count: number, atMs: number): void {
    if (this.open === 0 && count > 0) this.openSince = atMs;
    if (this.open > 0 && count === 0) this.exposureMs += atMs - this.openSince;
    this.open = count;
  }

  refusalsObject(): Record<string, number> {
    return Object.fromEntries([...this.refusals].sort((a, b) => (a[0] < b[0] ? -1 : 1)));
  }
}

interface PairEntry {
  replay: PairReplay;
  part: Part;
  equity: EquitySampler;
  strategies: { ledger: StrategyLedger; config: StrategyConfig; timeframe: Timeframe; part: Part }[];
}

export class PortfolioBacktester implements ReplayDesk {
  readonly accountCurrency: string;
  private readonly pairs: PairEntry[];
  private readonly bySymbol = new Map<string, PairEntry>();
  private lastEntry: PairEntry | null = null;
  private equityVersion = -1;
  private equityCached = 0;
  private readonly rules: PortfolioRules | null;
  private readonly account_: Part;
  private readonly equity = new EquitySampler();
  private readonly exposureSeries = new EquitySampler<ExposurePoint>();
  private readonly trades: PortfolioTrade[] = [];
  private readonly refusalsListed: Refusal[] = [];
  private readonly markTf: Timeframe;
  /** End of the mark period the last bar fell in: the first bar at or after it marks equity there (-Infinity before the first bar). */
  private markEndMs = Number.NEGATIVE_INFINITY;
  private nextExposureMs = Number.NEGATIVE_INFINITY;
  private marks = 0;
  private firstMs: number | null = null;
  private bars = 0;
  private lastBarT = Number.NEGATIVE_INFINITY;
  private readonly initialCents: number;
  // Trading states: the current one, when it began, time spent in each, the changes.
  private stateBefore: TradingStatus["state"] = "ACTIVE";
  private stateSinceMs = 0;
  private reducingMs = 0;
  private haltedMs = 0;
  private readonly changes: TradingStateChange[] = [];
  private changeCount = 0;
  /** When a REDUCING state's FX day ends (checked on every bar): +Infinity when not REDUCING. */
  private reducingEndsMs = Number.POSITIVE_INFINITY;

  constructor(private readonly options: PortfolioOptions) {
    this.accountCurrency = options.accountCurrency;
    this.initialCents = options.initialBalanceCents;
    if (!(Number.isSafeInteger(this.initialCents) && this.initialCents > 0)) throw new RangeError(`initial balance must be positive whole cents, got ${this.initialCents}`);
    this.account_ = new Part(this.initialCents);
    this.rules = options.limits === null ? null : new PortfolioRules(new MemoryPortfolioStore(options.limits), options.accountCurrency);
    const tradeFromMs = options.tradeFromMs ?? options.settings.from;
    // Pairs in symbol order: the order ties are broken in, and the order they are reported in.
    const sorted = [...options.pairs].sort((a, b) => (a.instrument.symbol < b.instrument.symbol ? -1 : 1));
    this.pairs = sorted.map((p) => {
      const replay = new PairReplay(
        { instrument: p.instrument, strategies: p.strategies, spreadPips: options.spreadPips, fillModel: p.fillModel, financing: options.financing, risk: p.risk, tradeFromMs, ...(options.observer ? { observer: options.observer } : {}) },
        this,
      );
      const entry: PairEntry = {
        replay,
        part: new Part(this.initialCents),
        equity: new EquitySampler(PAIR_EQUITY_POINTS_MAX),
        strategies: p.strategies.map((config, i) => ({ ledger: replay.ledgers[i] as StrategyLedger, config, timeframe: replay.timeframes[i] as Timeframe, part: new Part(this.initialCents) })),
      };
      this.bySymbol.set(p.instrument.symbol, entry);
      return entry;
    });
    const timeframes = this.pairs.flatMap((p) => p.strategies.map((s) => s.timeframe));
    if (timeframes.length === 0) throw new RangeError("a portfolio backtest needs at least one strategy");
    this.markTf = TIMEFRAMES.find((tf) => timeframes.includes(tf)) as Timeframe;
  }

  /** One bar of `pair`, in time order across pairs. The bar object may be reused by the caller after this returns. */
  onBar(pair: string, bar: Candle, barEndMs: number): void {
    // Bars come in runs of one pair (one pair always): the last lookup is kept.
    let entry = this.lastEntry;
    if (entry === null || entry.replay.symbol !== pair) {
      entry = this.bySymbol.get(pair) ?? null;
      if (entry === null) throw new RangeError(`${pair} is not in this portfolio`);
      this.lastEntry = entry;
    }
    if (bar.t < this.lastBarT) throw new RangeError(`bars out of order: ${pair} at ${bar.t} after ${this.lastBarT}`);
    this.lastBarT = bar.t;
    this.bars++;
    if (bar.t >= this.markEndMs) {
      if (this.firstMs === null) this.firstMs = bucketStart(this.markTf, bar.t);
      else this.mark(this.markEndMs);
      this.markEndMs = bucketEnd(this.markTf, bucketStart(this.markTf, bar.t));
    }
    if (bar.t >= this.reducingEndsMs) this.newDay(bar.t);
    entry.replay.onBar(bar, barEndMs);
  }

  // ---- the desk: what the pairs ask of the portfolio ---------------------------------

  account(): StrategyAccount {
    return { currency: this.accountCurrency, equity: this.equityCents() / 100 };
  }

  rates(pair: PairReplay): readonly ConversionRate[] {
    if (this.options.externalRates) return this.options.externalRates();
    const rates: ConversionRate[] = [];
    for (const symbol of conversionPairs(pair.instrument.quote, this.accountCurrency)) {
      const other = this.bySymbol.get(symbol)?.replay;
      // This pair's own price is the fill price, which the position code uses first.
      if (other === undefined || other === pair || other.quote === null) continue;
      rates.push(midRate(other.instrument, other.quote));
    }
    return rates;
  }

  status(): TradingStatus {
    return this.rules?.status() ?? ACTIVE;
  }

  approve(request: ApprovalRequest, nowMs: number): PortfolioRejection | null {
    const rules = this.rules;
    if (rules === null) return null;
    // As the coordinator: the pairs that value the book's currencies and hold no position are priced first.
    const mids: Record<string, number> = {};
    for (const symbol of rules.pairsToPrice(request, [...this.bySymbol.keys()])) {
      const mid = this.bySymbol.get(symbol)?.replay.mid() ?? 0;
      if (mid > 0) mids[symbol] = mid;
    }
    if (Object.keys(mids).length > 0) rules.addReferenceMids(mids);
    const answer = rules.approve(request, nowMs);
    return answer.approved ? null : answer.rejection;
  }

  report(pair: PairReplay, clientOrderId: string | undefined, nowMs: number): void {
    const entry = this.bySymbol.get(pair.symbol) as PairEntry;
    entry.part.openPositions(pair.positions.length, nowMs);
    let open = 0;
    for (const p of this.pairs) open += p.replay.positions.length;
    this.account_.openPositions(open, nowMs);
    if (this.rules === null) return;
    const move = this.rules.report(pair.report(), clientOrderId, nowMs);
    if (move) this.recordChange(this.rules.changeState(move.state, move.reason, nowMs), nowMs);
  }

  refused(pair: PairReplay, intent: OrderIntent, rejection: OrderRejection, nowMs: number): void {
    const entry = this.bySymbol.get(pair.symbol) as PairEntry;
    if (this.refusalsListed.length < REFUSALS_LISTED_MAX) this.refusalsListed.push({ t: nowMs, pair: pair.symbol, strategyId: intent.strategyId, side: intent.side, units: intent.units, rejection });
    this.account_.refused(rejection.type);
    entry.part.refused(rejection.type);
    entry.strategies.find((s) => s.config.id === intent.strategyId)?.part.refused(rejection.type);
  }

  trade(pair: PairReplay, strategyId: string, trade: BacktestTrade): void {
    const entry = this.bySymbol.get(pair.symbol) as PairEntry;
    const strategy = entry.strategies.find((s) => s.config.id === strategyId);
    for (const part of [this.account_, entry.part, strategy?.part]) {
      if (!part) continue;
      part.tradeCount++;
      part.metrics.onTrade(trade);
    }
    if (strategy) strategy.part.exposureMs += trade.exitT - trade.entryT;
    if (this.trades.length < TRADES_LISTED_MAX) this.trades.push({ pair: pair.symbol, strategyId, ...trade });
  }

  // ---- trading state -------------------------------------------------------------------

  /** A move of the rules' trading state: timed and recorded when it changed the state. */
  private recordChange(change: StateChange | null | undefined, nowMs: number): void {
    if (!change?.changed) return;
    this.addStateTime(this.stateBefore, nowMs);
    const status = change.next;
    this.stateBefore = status.state;
    this.reducingEndsMs = reducingEndsAt(status);
    this.changeCount++;
    if (this.changes.length < TRADING_STATE_CHANGES_MAX) this.changes.push({ t: nowMs, state: status.state, reason: status.reason });
  }

  private addStateTime(state: TradingStatus["state"], untilMs: number): void {
    if (state === "REDUCING") this.reducingMs += untilMs - this.stateSinceMs;
    if (state === "HALTED") this.haltedMs += untilMs - this.stateSinceMs;
    this.stateSinceMs = untilMs;
  }

  private newDay(nowMs: number): void {
    this.recordChange(this.rules?.newDay(nowMs), nowMs);
  }

  // ---- marks ---------------------------------------------------------------------------

  /**
   * Initial balance + every pair's realised P&L, financing and open positions
   * at their latest quotes; valued again only when some pair moved (a
   * candle's step and the mark after it see the same account).
   */
  private equityCents(): number {
    let version = 0;
    for (const p of this.pairs) version += p.replay.version;
    if (version === this.equityVersion) return this.equityCached;
    let cents = this.initialCents;
    for (const p of this.pairs) cents += p.replay.realisedCents() + p.replay.unrealisedCents();
    this.equityVersion = version;
    this.equityCached = cents;
    return cents;
  }

  /** Equity of the account, each pair and each strategy at `t` (a close of the mark timeframe); exposure at most hourly. */
  private mark(t: number): void {
    this.marks++;
    if (this.options.breakdown === false) {
      const equity = this.equityCents();
      this.equity.push({ t, accountCents: equity - this.initialCents });
      this.account_.metrics.onEquity(t, equity);
      return;
    }
    let total = 0;
    for (const p of this.pairs) {
      let pairPnl = 0;
      for (const s of p.strategies) {
        const pnl = Number(s.ledger.realisedCents + s.ledger.financingCents) + p.replay.unrealisedCents(s.config.id);
        s.part.metrics.onEquity(t, this.initialCents + pnl);
        pairPnl += pnl;
      }
      p.part.metrics.onEquity(t, this.initialCents + pairPnl);
      p.equity.push({ t, accountCents: pairPnl });
      total += pairPnl;
    }
    this.equity.push({ t, accountCents: total });
    this.account_.metrics.onEquity(t, this.initialCents + total);
    if (t >= this.nextExposureMs) {
      this.nextExposureMs = t + HOUR_MS;
      const point = this.exposureAt(t);
      if (point) this.exposureSeries.push(point);
    }
  }

  private exposureAt(t: number): ExposurePoint | null {
    const book: Record<string, PairBook> = {};
    for (const p of this.pairs) {
      const mid = p.replay.mid();
      if (mid > 0) book[p.replay.symbol] = { netUnits: pairNetUnits(p.replay.positions), mid };
    }
    const exp = exposure(book, this.accountCurrency);
    if (!exp.ok) return null;
    const perCurrency: Record<string, number> = {};
    for (const currency of Object.keys(exp.value.perCurrency).sort()) perCurrency[currency] = round2(exp.value.perCurrency[currency] as number);
    return { t, gross: round2(exp.value.gross), perCurrency };
  }

  // ---- the end -------------------------------------------------------------------------

  /** Close the last candles, mark the last period, close every open position at its pair's last quote; the result. Call once. */
  finish(): PortfolioBacktestResult {
    for (const p of this.pairs) p.replay.closeCandles();
    if (this.firstMs !== null) this.mark(this.markEndMs);
    const open = this.pairs.some((p) => p.replay.positions.length > 0);
    // Each pair at its own last quote, the account's trades in time order (ties by symbol).
    for (const p of [...this.pairs].sort((a, b) => (a.replay.lastMs ?? 0) - (b.replay.lastMs ?? 0))) p.replay.closeOut();
    const lastMs = this.pairs.reduce<number | null>((m, p) => (p.replay.lastMs === null ? m : Math.max(m ?? p.replay.lastMs, p.replay.lastMs)), null);
    if (open) {
      this.equity.amendLast((last) => ({ t: last.t, accountCents: this.pnlCents() }));
      for (const p of this.pairs) p.equity.amendLast((last) => ({ t: last.t, accountCents: p.replay.realisedCents() }));
    }
    if (lastMs !== null) this.addStateTime(this.stateBefore, Math.max(lastMs, this.stateSinceMs));
    const span = this.firstMs !== null && lastMs !== null ? lastMs - this.firstMs : 0;
    const pnl = this.pnlCents();
    const financing = this.pairs.reduce((sum, p) => sum + p.strategies.reduce((s, x) => s + Number(x.ledger.financingCents), 0), 0);
    return {
      kind: "portfolio",
      settings: this.options.settings,
      accountCurrency: this.accountCurrency,
      timeframe: this.markTf,
      bars: this.bars,
      marks: this.marks,
      firstMs: this.firstMs,
      lastMs,
      trades: this.trades,
      tradeCount: this.account_.tradeCount,
      tradesOmitted: this.account_.tradeCount - this.trades.length,
      pnlAccountCents: pnl,
      pnlAccount: centsToDecimal(pnl),
      financingAccountCents: financing,
      refusals: this.account_.refusalsObject(),
      refusalsListed: this.refusalsListed,
      equity: this.equity.points(),
      metrics: this.account_.metrics.finish(this.initialCents + pnl, span, this.account_.exposureMs),
      pairs: this.pairs.map((p) => this.pairFigures(p, span)),
      exposure: this.exposureSeries.points(),
      tradingStates: { reducingMs: this.reducingMs, haltedMs: this.haltedMs, changes: this.changes, changeCount: this.changeCount },
    };
  }

  /** Realised P&L and financing of every pair, account cents (every position is closed by now). */
  private pnlCents(): number {
    return this.pairs.reduce((sum, p) => sum + p.replay.realisedCents(), 0);
  }

  private pairFigures(p: PairEntry, span: number): PairFigures {
    const strategies: StrategyFigures[] = p.strategies.map((s) => {
      const pnl = Number(s.ledger.realisedCents + s.ledger.financingCents);
      return {
        strategyId: s.config.id,
        kind: s.config.kind,
        timeframe: s.timeframe,
        tradeCount: s.part.tradeCount,
        pnlAccountCents: pnl,
        pnlAccount: centsToDecimal(pnl),
        pnlQuoteMicros: Number(s.ledger.realisedMicros),
        financingAccountCents: Number(s.ledger.financingCents),
        refusals: s.part.refusalsObject(),
        metrics: s.part.metrics.finish(this.initialCents + pnl, span, s.part.exposureMs),
      };
    });
    const pnl = p.replay.realisedCents();
    return {
      pair: p.replay.symbol,
      bars: p.replay.bars,
      tradeCount: p.part.tradeCount,
      pnlAccountCents: pnl,
      pnlAccount: centsToDecimal(pnl),
      financingAccountCents: strategies.reduce((sum, s) => sum + s.financingAccountCents, 0),
      refusals: p.part.refusalsObject(),
      metrics: p.part.metrics.finish(this.initialCents + pnl, span, p.part.exposureMs),
      equity: p.equity.points(),
      strategies,
    };
  }
}

function round2(x: number): number {
  return Math.round(x * 100) / 100;
}
