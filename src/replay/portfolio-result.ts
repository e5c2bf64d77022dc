/**
 * What a portfolio backtest produces: the whole account, then each pair and
 * each strategy on it. Money is integer cents of the account currency (with
 * decimal copies for reading), ratios plain floats, times epoch ms UTC. Same
 * inputs, byte-identical JSON.
 */
import type { PortfolioBacktestRequest } from "../../schemas/backtest.ts";
import type { TradingState } from "../../schemas/portfolio.ts";
import type { OrderRejection } from "../domain/trading/types.ts";
import type { BacktestMetrics, BacktestTrade, EquityPoint } from "./result.ts";

export interface PortfolioTrade extends BacktestTrade {
  pair: string;
  strategyId: string;
}

/** Figures of a part of the portfolio (a pair, a strategy), its metrics against the account's initial balance. */
export interface PartFigures {
  tradeCount: number;
  /** Realised P&L + financing, account cents. */
  pnlAccountCents: number;
  pnlAccount: number;
  financingAccountCents: number;
  /** Orders refused, by reason (per-pair risk and the portfolio's rules alike). */
  refusals: Record<string, number>;
  metrics: BacktestMetrics;
}

export interface StrategyFigures extends PartFigures {
  strategyId: string;
  kind: string;
  /** The strategy's first watched timeframe. */
  timeframe: string;
  /** Realised P&L + financing in the pair's quote currency, micros. */
  pnlQuoteMicros: number;
}

export interface PairFigures extends PartFigures {
  pair: string;
  /** Input bars (1-minute candles or ticks) read. */
  bars: number;
  /** The pair's P&L over time (at most PAIR_EQUITY_POINTS_MAX points). */
  equity: EquityPoint[];
  strategies: StrategyFigures[];
}

/** Net exposure per currency (signed, account currency) and gross, at a mark. */
export interface ExposurePoint {
  t: number;
  gross: number;
  perCurrency: Record<string, number>;
}

/** An order refused, with its typed reason (per-pair risk or the portfolio's rules). */
export interface Refusal {
  t: number;
  pair: string;
  strategyId: string;
  side: "buy" | "sell";
  units: number;
  rejection: OrderRejection;
}

export interface TradingStateChange {
  t: number;
  state: TradingState;
  reason: string;
}

export interface PortfolioBacktestResult {
  kind: "portfolio";
  /** The request as run: defaults filled in, dates as epoch ms. */
  settings: PortfolioBacktestRequest;
  accountCurrency: string;
  /** The shortest timeframe any strategy watches: equity is marked at its closes. */
  timeframe: string;
  /** Input bars of every pair. */
  bars: number;
  /** Equity marks taken (closes of `timeframe` with data). */
  marks: number;
  firstMs: number | null;
  lastMs: number | null;
  /** The first TRADES_LISTED_MAX trades in time order; tradeCount and the metrics count them all. */
  trades: PortfolioTrade[];
  tradeCount: number;
  tradesOmitted: number;
  pnlAccountCents: number;
  pnlAccount: number;
  financingAccountCents: number;
  refusals: Record<string, number>;
  /** The first REFUSALS_LISTED_MAX refused orders, in time order; `refusals` counts them all. */
  refusalsListed: Refusal[];
  equity: EquityPoint[];
  metrics: BacktestMetrics;
  pairs: PairFigures[];
  /** Sampled at most hourly, thinned like the equity curve. */
  exposure: ExposurePoint[];
  tradingStates: {
    reducingMs: number;
    haltedMs: number;
    /** The first TRADING_STATE_CHANGES_MAX changes. */
    changes: TradingStateChange[];
    changeCount: number;
  };
}
