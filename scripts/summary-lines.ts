/**
 * Pieces of the backtest CLI's terminal summary shared by one pair and a
 * portfolio (scripts/backtest.ts, scripts/portfolio-cli.ts): number and day
 * formats, the sweep table, the walk-forward folds and the report's paths,
 * each within 80 columns.
 */
import path from "node:path";
import type { SweepResult, WalkForwardResult } from "../src/replay/sweep.ts";

export const day = (ms: number): string => new Date(ms).toISOString().slice(0, 10);

export const fmt = (n: number | null, digits = 2): string => (n === null ? "-" : n.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits }));

/** The ten best combinations, P&L in `currency`. */
export function sweepLines(sweep: SweepResult, currency: string): string[] {
  const lines = ["", `sweep by ${sweep.objective} (best first):`, "params".padEnd(34) + "trades".padStart(7) + `P&L ${currency}`.padStart(14) + "Sharpe".padStart(9) + "maxDD%".padStart(8)];
  for (const row of sweep.rows.slice(0, 10)) {
    lines.push(JSON.stringify(row.params).slice(0, 33).padEnd(34) + String(row.tradeCount).padStart(7) + fmt(row.pnlAccount).padStart(14) + fmt(row.sharpe).padStart(9) + fmt(row.maxDrawdownPct).padStart(8));
  }
  if (sweep.invalid.length > 0) lines.push(`${sweep.invalid.length} invalid combination(s) skipped: ${sweep.invalid[0]?.reason ?? ""}`.slice(0, 80));
  return lines;
}

/** Each fold's out-of-sample window, winner and result, then their total. */
export function walkForwardLines(wf: WalkForwardResult, currency: string): string[] {
  const lines = ["", `walk-forward by ${wf.objective}:`, "fold".padEnd(5) + "out-of-sample".padEnd(24) + "best params".padEnd(26) + "trades".padStart(7) + `P&L ${currency}`.padStart(12)];
  for (const f of wf.folds) {
    lines.push(String(f.fold).padEnd(5) + `${day(f.outOfSampleFromMs)}..${day(f.outOfSampleToMs)}`.padEnd(24) + JSON.stringify(f.bestParams).slice(0, 25).padEnd(26) + String(f.outOfSample.tradeCount).padStart(7) + fmt(f.outOfSample.pnlAccount).padStart(12));
  }
  lines.push(`out-of-sample total: ${wf.outOfSampleTradeCount} trades, ${fmt(wf.outOfSamplePnlAccount)} ${currency}`);
  return lines;
}

/** The report's files, one per line (paths can be long; the rest of the table keeps to 80 columns). */
export function reportLines(report: { json: string; html: string } | null): string[] {
  return report ? ["", "report (HTML, JSON; also in R2 under reports/):", `  ${displayPath(report.html)}`, `  ${displayPath(report.json)}`] : [];
}

/** Relative to the working directory when the file is under it; otherwise absolute (a chain of ../ helps no one). */
function displayPath(file: string): string {
  const relative = path.relative(process.cwd(), file);
  return relative.startsWith("..") || path.isAbsolute(relative) ? path.resolve(file) : relative;
}
