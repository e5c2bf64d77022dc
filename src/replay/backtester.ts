/**
 * The single-pair backtest: one strategy on one pair, as the request and the
 * results have always had it. It is a portfolio of that one pair with no
 * portfolio limits (portfolio-backtester.ts, over the same kernel adapter,
 * pair-replay.ts), its P&L in USD, and a cross valued through the rates its
 * caller reads alongside (lake-run.ts).
 *
 * Bars are pushed in time order: 1-minute candles (`barEndMs` = t + 60 s) or
 * ticks as one-point bars (`barEndMs` = t). A position still open after the
 * last bar is closed at its close.
 */
import type { FillModelConfig, RiskLimits } from "../../schemas/trading.ts";
import type { StrategyConfig } from "../../schemas/strategy.ts";
import type { Candle } from "../domain/candle.ts";
import type { Instrument } from "../domain/instruments.ts";
import { NO_FINANCING, type FinancingRates } from "../domain/trading/financing.ts";
import { DEFAULT_ACCOUNT_CURRENCY, microsToDecimal, type ConversionRate } from "../domain/trading/money.ts";
import type { BacktestObserver } from "./pair-replay.ts";
import { PortfolioBacktester } from "./portfolio-backtester.ts";
import type { BacktestResult, BacktestSettings } from "./result.ts";

export { StrategyFaultError, type BacktestObserver } from "./pair-replay.ts";
export { TRADES_LISTED_MAX } from "./portfolio-backtester.ts";

export interface BacktestOptions {
  instrument: Instrument;
  strategy: StrategyConfig;
  /** Requested range, epoch ms (recorded in the settings; bars outside it are the caller's to skip). */
  fromMs: number;
  toMs: number;
  /**
   * Candles closing before this only warm the strategy up: no orders
   * (walk-forward out-of-sample runs start warm). Default: fromMs.
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

export const DEFAULT_INITIAL_BALANCE_USD = 100_000;

export class Backtester {
  private readonly engine: PortfolioBacktester;
  private readonly settings: BacktestSettings;

  constructor(private readonly options: BacktestOptions) {
    const { instrument, strategy } = options;
    const spreadPips = options.spreadPips === undefined ? 1.0 : options.spreadPips;
    const fillModel = options.fillModel ?? { slippagePips: 0, commissionPerMillion: 0 };
    const financing = options.financing ?? NO_FINANCING;
    const initialBalanceUsd = options.initialBalanceUsd ?? DEFAULT_INITIAL_BALANCE_USD;
    if (!(Number.isSafeInteger(initialBalanceUsd * 100) && initialBalanceUsd > 0)) throw new RangeError(`initialBalanceUsd must be positive whole cents, got ${initialBalanceUsd}`);
    this.settings = {
      pair: instrument.symbol,
      fromMs: options.fromMs,
      toMs: options.toMs,
      strategy: { id: strategy.id, kind: strategy.kind, units: strategy.units, params: { ...strategy.params } },
      spreadPips,
      slippagePips: fillModel.slippagePips,
      commissionPerMillion: fillModel.commissionPerMillion,
      financingLongPct: financing.longPct,
      financingShortPct: financing.shortPct,
      initialBalanceUsd,
    };
    this.engine = new PortfolioBacktester({
      settings: {
        from: options.fromMs,
        to: options.toMs,
        pairs: [{ pair: instrument.symbol, strategies: [strategy], fillModel, ...(options.risk ? { risk: options.risk } : {}) }],
        accountCurrency: DEFAULT_ACCOUNT_CURRENCY,
        initialBalance: initialBalanceUsd,
        data: "candles",
        spreadPips,
        financingLongPct: financing.longPct,
        financingShortPct: financing.shortPct,
      },
      pairs: [{ instrument, strategies: [strategy], risk: options.risk ?? null, fillModel }],
      ...(options.tradeFromMs !== undefined ? { tradeFromMs: options.tradeFromMs } : {}),
      spreadPips,
      financing,
      accountCurrency: DEFAULT_ACCOUNT_CURRENCY,
      initialBalanceCents: Math.round(initialBalanceUsd * 100),
      limits: null,
      externalRates: () => options.conversionRates?.() ?? [],
      breakdown: false,
      ...(options.observer ? { observer: options.observer } : {}),
    });
  }

  /** One bar, in time order. The bar object may be reused by the caller after this returns. */
  onBar(bar: Candle, barEndMs: number): void {
    this.engine.onBar(this.settings.pair, bar, barEndMs);
  }

  /** Close the last candle and any open position; the result. Call once. */
  finish(): BacktestResult {
    const r = this.engine.finish();
    const pair = r.pairs[0];
    const strategy = pair?.strategies[0];
    if (!pair || !strategy) throw new Error("backtest: the portfolio lost its pair");
    return {
      settings: this.settings,
      pair: this.settings.pair,
      strategyId: this.options.strategy.id,
      timeframe: strategy.timeframe,
      bars: r.bars,
      candles: r.marks,
      firstMs: r.firstMs,
      lastMs: r.lastMs,
      trades: r.trades.map(({ pair: _pair, strategyId: _id, ...trade }) => trade),
      tradeCount: r.tradeCount,
      tradesOmitted: r.tradesOmitted,
      pnlQuoteMicros: strategy.pnlQuoteMicros,
      pnlAccountCents: r.pnlAccountCents,
      pnlQuote: microsToDecimal(strategy.pnlQuoteMicros),
      pnlAccount: r.pnlAccount,
      financingAccountCents: r.financingAccountCents,
      rejections: r.refusals,
      equity: r.equity,
      metrics: r.metrics,
    };
  }
}
