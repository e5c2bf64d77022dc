/**
 * Summary figures of a backtest, from its trades and equity curve. Money stays
 * in integer cents; ratios are plain floats (display only).
 */
export interface BacktestMetrics {
  /** Largest peak-to-trough fall of the equity curve (starting from 0), USD cents, >= 0. */
  maxDrawdownUsdCents: number;
  wins: number;
  losses: number;
  /** wins / trades, 0 when there are no trades. */
  winRate: number;
  grossProfitUsdCents: number;
  grossLossUsdCents: number;
  /** grossProfit / |grossLoss|; null when there is no loss. */
  profitFactor: number | null;
}

export function computeMetrics(trades: readonly { pnlUsdCents: number }[], equity: readonly { usdCents: number }[]): BacktestMetrics {
  let peak = 0;
  let maxDd = 0;
  for (const p of equity) {
    if (p.usdCents > peak) peak = p.usdCents;
    if (peak - p.usdCents > maxDd) maxDd = peak - p.usdCents;
  }
  let wins = 0;
  let losses = 0;
  let gp = 0;
  let gl = 0;
  for (const t of trades) {
    if (t.pnlUsdCents > 0) {
      wins++;
      gp += t.pnlUsdCents;
    } else if (t.pnlUsdCents < 0) {
      losses++;
      gl += t.pnlUsdCents;
    }
  }
  return {
    maxDrawdownUsdCents: maxDd,
    wins,
    losses,
    winRate: trades.length === 0 ? 0 : wins / trades.length,
    grossProfitUsdCents: gp,
    grossLossUsdCents: gl,
    profitFactor: gl === 0 ? null : gp / -gl,
  };
}
