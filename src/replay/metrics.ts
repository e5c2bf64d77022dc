/**
 * Summary figures of a backtest, accumulated as the equity curve is produced
 * (one point per strategy candle), so a ten-year one-minute run needs no
 * stored curve to compute them. Money stays in integer cents; ratios are
 * plain floats (display only), computed in a fixed order so reruns are
 * byte-identical.
 */
import { bucketEnd, fxDayStart } from "../domain/fx-time.ts";
import type { BacktestMetrics, BacktestTrade } from "./result.ts";

/** Trading days per year for annualising daily Sharpe and Sortino (the common convention, as in LEAN). */
export const TRADING_DAYS_PER_YEAR = 252;
const YEAR_MS = 365.25 * 86_400_000;

export class MetricsTracker {
  private peakCents: number;
  private peakT: number | null = null;
  private maxDdCents = 0;
  private maxDdPct = 0;
  private maxDdDurationMs = 0;
  private lastT: number | null = null;
  private lastCents: number;
  // Daily returns on FX days (17:00 New York to 17:00).
  private dayEndMs = Number.NEGATIVE_INFINITY;
  private dayStartBalance: number;
  private readonly dailyReturns: number[] = [];
  private trades = 0;
  private wins = 0;
  private losses = 0;
  private grossProfitCents = 0;
  private grossLossCents = 0;

  constructor(readonly initialCents: number) {
    this.peakCents = initialCents;
    this.lastCents = initialCents;
    this.dayStartBalance = initialCents;
  }

  /** Equity (initial balance + P&L, cents) at time `t`, in time order. */
  onEquity(t: number, balanceCents: number): void {
    if (t > this.dayEndMs) {
      // A new FX day: the previous one ended at the last point before it.
      if (this.lastT !== null) this.closeDay();
      // Points are candle close times (exclusive ends): one at the roll belongs to the day before it.
      this.dayEndMs = bucketEnd("1D", fxDayStart(t - 1));
    }
    if (this.peakT === null) this.peakT = t;
    if (balanceCents >= this.peakCents) {
      this.maxDdDurationMs = Math.max(this.maxDdDurationMs, t - this.peakT);
      this.peakCents = balanceCents;
      this.peakT = t;
    } else {
      const dd = this.peakCents - balanceCents;
      if (dd > this.maxDdCents) this.maxDdCents = dd;
      if (this.peakCents > 0) this.maxDdPct = Math.max(this.maxDdPct, (dd / this.peakCents) * 100);
    }
    this.lastT = t;
    this.lastCents = balanceCents;
  }

  /** A closed trade (P&L including its financing). */
  onTrade(trade: Pick<BacktestTrade, "pnlAccountCents" | "financingAccountCents">): void {
    const pnl = trade.pnlAccountCents + trade.financingAccountCents;
    this.trades++;
    if (pnl > 0) {
      this.wins++;
      this.grossProfitCents += pnl;
    } else if (pnl < 0) {
      this.losses++;
      this.grossLossCents += pnl;
    }
  }

  private closeDay(): void {
    if (this.dayStartBalance > 0) this.dailyReturns.push(this.lastCents / this.dayStartBalance - 1);
    this.dayStartBalance = this.lastCents;
  }

  finish(finalCents: number, spanMs: number, exposureMs: number): BacktestMetrics {
    if (this.lastT !== null) {
      this.lastCents = finalCents;
      this.closeDay();
      // Still under water at the end: that stretch counts too.
      if (finalCents < this.peakCents && this.peakT !== null) this.maxDdDurationMs = Math.max(this.maxDdDurationMs, this.lastT - this.peakT);
    }
    const r = this.dailyReturns;
    const mean = r.length > 0 ? r.reduce((a, b) => a + b, 0) / r.length : 0;
    const variance = r.length > 1 ? r.reduce((a, b) => a + (b - mean) ** 2, 0) / (r.length - 1) : 0;
    const downside = r.length > 0 ? Math.sqrt(r.reduce((a, b) => a + Math.min(b, 0) ** 2, 0) / r.length) : 0;
    const annual = Math.sqrt(TRADING_DAYS_PER_YEAR);
    const years = spanMs / YEAR_MS;
    const growth = finalCents / this.initialCents;
    const { trades, wins, losses, grossProfitCents: gp, grossLossCents: gl } = this;
    return {
      initialBalanceAccountCents: this.initialCents,
      finalBalanceAccountCents: finalCents,
      totalReturnPct: (growth - 1) * 100,
      // exp/log rather than `**`: V8 versions disagree in the last digit of pow (Node and workerd would
      // print different CAGRs), while their fdlibm-derived exp and log agree.
      cagrPct: spanMs >= 86_400_000 && growth > 0 ? (Math.exp(Math.log(growth) / years) - 1) * 100 : null,
      sharpe: r.length > 1 && variance > 0 ? (mean / Math.sqrt(variance)) * annual : null,
      sortino: downside > 0 ? (mean / downside) * annual : null,
      maxDrawdownAccountCents: this.maxDdCents,
      maxDrawdownPct: this.maxDdPct,
      maxDrawdownDurationMs: this.maxDdDurationMs,
      tradeCount: trades,
      wins,
      losses,
      winRate: trades === 0 ? 0 : wins / trades,
      grossProfitAccountCents: gp,
      grossLossAccountCents: gl,
      profitFactor: gl === 0 ? null : gp / -gl,
      avgWinAccountCents: wins === 0 ? 0 : Math.round(gp / wins),
      avgLossAccountCents: losses === 0 ? 0 : Math.round(gl / losses),
      exposurePct: spanMs > 0 ? (exposureMs / spanMs) * 100 : 0,
    };
  }
}
