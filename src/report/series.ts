/**
 * The two chart series of the report (balance in USD, drawdown in percent),
 * computed here rather than in the page so they are tested and the page's
 * script only draws.
 */
import type { BacktestResult } from "../replay/result.ts";

/** Column form ({t: [...], v: [...]}) keeps the embedded JSON about half the size of [{time, value}] objects. */
export interface ChartSeries {
  /** Epoch seconds UTC, strictly ascending (lightweight-charts rejects equal or falling times). */
  t: number[];
  v: number[];
}

export interface ChartData {
  /** Initial balance + equity P&L, USD (two decimals). */
  balanceUsd: ChartSeries;
  /** Percent below the running peak of the balance (initial balance included), <= 0, four decimals. */
  drawdownPct: ChartSeries;
}

function round(value: number, decimals: number): number {
  const f = 10 ** decimals;
  return Math.round(value * f) / f;
}

export function chartData(result: BacktestResult): ChartData {
  const initialCents = result.metrics.initialBalanceUsdCents;
  const points = [...result.equity].sort((a, b) => a.t - b.t);
  // Start the curve at the initial balance when the data began before the
  // first candle closed, so the chart shows the first candle's move too.
  const first = points[0];
  if (first !== undefined && result.firstMs !== null && result.firstMs < first.t) points.unshift({ t: result.firstMs, usdCents: 0 });

  const balanceUsd: ChartSeries = { t: [], v: [] };
  const drawdownPct: ChartSeries = { t: [], v: [] };
  let peakCents = initialCents;
  for (const p of points) {
    const sec = Math.floor(p.t / 1000);
    const balanceCents = initialCents + p.usdCents;
    if (balanceCents > peakCents) peakCents = balanceCents;
    const dd = peakCents > 0 ? round(((balanceCents - peakCents) / peakCents) * 100, 4) : 0;
    // Two points in one second: keep the later one (the chart needs unique times).
    if (balanceUsd.t[balanceUsd.t.length - 1] === sec) {
      balanceUsd.t.pop();
      balanceUsd.v.pop();
      drawdownPct.t.pop();
      drawdownPct.v.pop();
    }
    balanceUsd.t.push(sec);
    balanceUsd.v.push(balanceCents / 100);
    drawdownPct.t.push(sec);
    drawdownPct.v.push(dd);
  }
  return { balanceUsd, drawdownPct };
}
