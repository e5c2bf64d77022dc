/**
 * What a backtest produces, the same object from the CLI, the HTTP API and the
 * sweeps. Money is integer (quote micros, USD cents) with decimal copies for
 * reading; ratios are plain floats (display only). Times are epoch ms UTC.
 */
import type { Side } from "../domain/trading/types.ts";

export interface BacktestTrade {
  side: Side;
  /** Largest size the position reached. */
  units: number;
  /** Entry fill time: the open of the bar after the decision. */
  entryT: number;
  /** Average entry, decimal price. */
  entryPrice: number;
  exitT: number;
  exitPrice: number;
  /** Realised P&L in the quote currency (after commission), micros. */
  pnlQuoteMicros: number;
  /** Realised P&L in USD (after commission, before financing), cents. */
  pnlAccountCents: number;
  /** Financing charged while the position was held (negative = paid), USD cents. */
  financingAccountCents: number;
  /** Why it closed: "signal" (reversed or closed by the strategy), "stop_loss" | "take_profit" | "trailing_stop", or "end" (closed at the last bar). */
  exitReason: string;
}

export interface EquityPoint {
  /** Close time of a strategy candle, epoch ms. */
  t: number;
  /** Realised + unrealised P&L (marked at the price the position would exit at) + financing, USD cents. Excludes the initial balance. */
  accountCents: number;
}

export interface BacktestMetrics {
  initialBalanceAccountCents: number;
  finalBalanceAccountCents: number;
  /** (final - initial) / initial, percent. */
  totalReturnPct: number;
  /** Compound annual growth over the calendar span of the data, percent; null for spans under a day. */
  cagrPct: number | null;
  /** Mean / standard deviation of daily returns (FX days, 17:00 New York), times sqrt(252); null with fewer than 2 days or no variance. */
  sharpe: number | null;
  /** Mean daily return / downside deviation, times sqrt(252); null when no day lost. */
  sortino: number | null;
  /** Largest peak-to-trough fall of equity (initial balance included), USD cents, >= 0. */
  maxDrawdownAccountCents: number;
  /** The same fall as a percent of the peak it fell from. */
  maxDrawdownPct: number;
  /** Longest time equity spent below a previous peak (until recovered, or the end), ms. */
  maxDrawdownDurationMs: number;
  tradeCount: number;
  wins: number;
  losses: number;
  /** wins / trades, 0 when there are no trades. */
  winRate: number;
  grossProfitAccountCents: number;
  grossLossAccountCents: number;
  /** grossProfit / |grossLoss|; null when there is no loss. */
  profitFactor: number | null;
  /** Mean P&L of winning / losing trades, USD cents (0 when none). */
  avgWinAccountCents: number;
  avgLossAccountCents: number;
  /** Share of the data's time span with a position open, percent. */
  exposurePct: number;
}

export interface BacktestSettings {
  pair: string;
  /** Inclusive start, exclusive end, epoch ms (what was asked for, not what the data had). */
  fromMs: number;
  toMs: number;
  strategy: { id: string; kind: string; units: number; params: Record<string, unknown> };
  /** Spread added to the bid for the ask, pips; null = the data's own ask. */
  spreadPips: number | null;
  slippagePips: number;
  commissionPerMillion: number;
  /** Annual financing rates charged on the notional per night held (Wednesday counts 3), percent; negative = credited. */
  financingLongPct: number;
  financingShortPct: number;
  initialBalanceUsd: number;
}

export interface BacktestResult {
  settings: BacktestSettings;
  pair: string;
  strategyId: string;
  timeframe: string;
  /** Input bars (1-minute candles or ticks) read. */
  bars: number;
  /** Strategy-timeframe candles closed. */
  candles: number;
  /** First bar open and last candle close seen, epoch ms (null without data). */
  firstMs: number | null;
  lastMs: number | null;
  /** The first TRADES_LISTED_MAX trades (backtester.ts); tradeCount and the metrics count them all. */
  trades: BacktestTrade[];
  tradeCount: number;
  tradesOmitted: number;
  /** Realised P&L + financing, quote currency micros and USD cents; decimal copies below. */
  pnlQuoteMicros: number;
  pnlAccountCents: number;
  pnlQuote: number;
  pnlAccount: number;
  financingAccountCents: number;
  /** Orders refused by the per-pair risk limits (when configured), by reason. */
  rejections: Record<string, number>;
  /** At most EQUITY_POINTS_MAX points: thinned evenly (every 2nd, then 4th...) on long runs. */
  equity: EquityPoint[];
  metrics: BacktestMetrics;
}
