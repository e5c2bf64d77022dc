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
  balance: ChartSeries;
  /** Percent below the running peak of the balance (initial balance included), <= 0, four decimals. */
  drawdownPct: ChartSeries;
}

function round(value: number, decimals: number): number {
  const f = 10 ** decimals;
  return Math.round(value * f) / f;
}

export function chartData(result: Pick<BacktestResult, "metrics" | "equity" | "firstMs">): ChartData {
  const initialCents = result.metrics.initialBalanceAccountCents;
  const points = [...result.equity].sort((a, b) => a.t - b.t);
  // Start the curve at the initial balance when the data began before the
  // first candle closed, so the chart shows the first candle's move too.
  const first = points[0];
  if (first !== undefined && result.firstMs !== null && result.firstMs < first.t) points.unshift({ t: result.firstMs, accountCents: 0 });

  const balance: ChartSeries = { t: [], v: [] };
  const drawdownPct: ChartSeries = { t: [], v: [] };
  let peakCents = initialCents;
  for (const p of points) {
    const sec = Math.floor(p.t / 1000);
    const balanceCents = initialCents + p.accountCents;
    if (balanceCents > peakCents) peakCents = balanceCents;
    const dd = peakCents > 0 ? round(((balanceCents - peakCents) / peakCents) * 100, 4) : 0;
    // Two points in one second: keep the later one (the chart needs unique times).
    if (balance.t[balance.t.length - 1] === sec) {
      balance.t.pop();
      balance.v.pop();
      drawdownPct.t.pop();
      drawdownPct.v.pop();
    }
    balance.t.push(sec);
    balance.v.push(balanceCents / 100);
    drawdownPct.t.push(sec);
    drawdownPct.v.push(dd);
  }
  return { balance, drawdownPct };
}
