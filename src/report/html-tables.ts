/**
 * The table sections of the report page: settings, metrics, the trade
 * aggregates and the trade list. Every cell is plain text, escaped here.
 */
import type { BacktestMetrics, BacktestResult, BacktestTrade } from "../replay/result.ts";
import type { TradeAggregates, TradeStats } from "./aggregate.ts";
import {
  escapeHtml,
  formatDays,
  formatNumber,
  formatPct,
  formatQuoteMicros,
  formatRatioPct,
  formatAccountCents,
  formatUtcMinute,
  quoteCurrency,
} from "./format.ts";

/** Rows of the trade list beyond this are left to the JSON: a 50k-row table makes a browser crawl. */
export const TRADE_ROWS_MAX = 2_000;

/** A column: its header and whether it holds numbers (right-aligned). */
export type Col = [header: string, numeric: boolean];

export function table(cols: readonly Col[], rows: readonly (readonly string[])[]): string {
  const head = cols.map(([h, n]) => `<th${n ? ' class="num"' : ""}>${escapeHtml(h)}</th>`).join("");
  const body = rows
    .map((r) => `<tr>${r.map((c, i) => `<td${cols[i]?.[1] ? ' class="num"' : ""}>${escapeHtml(c)}</td>`).join("")}</tr>`)
    .join("\n");
  return `<table>\n<thead><tr>${head}</tr></thead>\n<tbody>\n${body}\n</tbody>\n</table>`;
}

/** Two-column label/value table. */
export function keyValues(rows: readonly (readonly [string, string])[]): string {
  return `<table class="kv">\n${rows.map(([k, v]) => `<tr><th>${escapeHtml(k)}</th><td>${escapeHtml(v)}</td></tr>`).join("\n")}\n</table>`;
}

export function settingsSection(r: BacktestResult): string {
  const s = r.settings;
  const params = Object.keys(s.strategy.params)
    .sort()
    .map((k) => `${k} = ${JSON.stringify(s.strategy.params[k]) ?? "undefined"}`)
    .join(", ");
  return keyValues([
    ["Pair", s.pair],
    ["Timeframe", r.timeframe],
    ["Strategy", `${s.strategy.id} (${s.strategy.kind})`],
    ["Units", formatNumber(s.strategy.units, 0)],
    ["Parameters", params === "" ? "none" : params],
    ["Requested range", `${formatUtcMinute(s.fromMs)} to ${formatUtcMinute(s.toMs)} (end exclusive)`],
    ["Data seen", r.firstMs === null || r.lastMs === null ? "none" : `${formatUtcMinute(r.firstMs)} to ${formatUtcMinute(r.lastMs)}`],
    ["Bars read / candles", `${formatNumber(r.bars, 0)} / ${formatNumber(r.candles, 0)}`],
    ["Spread", s.spreadPips === null ? "the data's own ask" : `${formatNumber(s.spreadPips, 2)} pips`],
    ["Slippage", `${formatNumber(s.slippagePips, 2)} pips`],
    ["Commission", `${formatNumber(s.commissionPerMillion, 2)} per million`],
    ["Financing long / short", `${formatPct(s.financingLongPct)} / ${formatPct(s.financingShortPct)} a year`],
    ["Initial balance", formatAccountCents(Math.round(s.initialBalanceUsd * 100))],
  ]);
}

/** Refusals by reason in one line ("none" without any). */
export function refusalsText(refusals: Readonly<Record<string, number>>): string {
  const text = Object.keys(refusals)
    .sort()
    .map((k) => `${k}: ${formatNumber(refusals[k] ?? 0, 0)}`)
    .join(", ");
  return text === "" ? "none" : text;
}

/** The metrics every backtest reports, as label/value rows. */
export function metricRows(m: BacktestMetrics): [string, string][] {
  return [
    ["Total return", formatPct(m.totalReturnPct)],
    ["CAGR", formatPct(m.cagrPct)],
    ["Sharpe (daily, annualised)", formatNumber(m.sharpe, 2)],
    ["Sortino (daily, annualised)", formatNumber(m.sortino, 2)],
    ["Max drawdown", `${formatAccountCents(m.maxDrawdownAccountCents)} (${formatPct(m.maxDrawdownPct)})`],
    ["Longest drawdown", formatDays(m.maxDrawdownDurationMs)],
    ["Trades (wins / losses)", `${formatNumber(m.tradeCount, 0)} (${formatNumber(m.wins, 0)} / ${formatNumber(m.losses, 0)})`],
    ["Win rate", formatRatioPct(m.winRate)],
    ["Profit factor", formatNumber(m.profitFactor, 2)],
    ["Average win / loss", `${formatAccountCents(m.avgWinAccountCents)} / ${formatAccountCents(m.avgLossAccountCents)}`],
    ["Gross profit / loss", `${formatAccountCents(m.grossProfitAccountCents)} / ${formatAccountCents(m.grossLossAccountCents)}`],
    ["Exposure", formatPct(m.exposurePct)],
  ];
}

export function metricsSection(r: BacktestResult): string {
  const m = r.metrics;
  return keyValues([
    ...metricRows(m),
    ["P&L (quote)", formatQuoteMicros(r.pnlQuoteMicros, quoteCurrency(r.pair))],
    ["P&L (USD, incl. financing)", formatAccountCents(r.pnlAccountCents)],
    ["Financing", formatAccountCents(r.financingAccountCents)],
    ["Balance initial / final", `${formatAccountCents(m.initialBalanceAccountCents)} / ${formatAccountCents(m.finalBalanceAccountCents)}`],
    ["Orders refused by risk limits", refusalsText(r.rejections)],
  ]);
}

const STAT_COLS: readonly Col[] = [
  ["Trades", true],
  ["Win rate", true],
  ["P&L", true],
  ["Average", true],
  ["Profit factor", true],
  ["Financing", true],
];

function statCells(s: TradeStats): string[] {
  return [
    formatNumber(s.trades, 0),
    formatRatioPct(s.winRate),
    formatAccountCents(s.pnlAccountCents),
    formatAccountCents(s.avgPnlAccountCents),
    formatNumber(s.profitFactor, 2),
    formatAccountCents(s.financingAccountCents),
  ];
}

export function statTable<R extends TradeStats>(title: string, key: string, rows: readonly R[], label: (r: R) => string): string {
  const body = rows.length === 0 ? "<p>No trades.</p>" : table([[key, false], ...STAT_COLS], rows.map((r) => [label(r), ...statCells(r)]));
  return `<div>\n<h3>${escapeHtml(title)}</h3>\n${body}\n</div>`;
}

export function aggregatesSection(a: TradeAggregates): string {
  return [
    statTable("By month of exit", "Month", a.byMonth, (r) => r.month),
    statTable("By weekday of entry", "Weekday", a.byWeekday, (r) => r.weekdayName),
    statTable("By hour of entry", "Hour", a.byHour, (r) => `${String(r.hour).padStart(2, "0")}:00`),
    statTable("Long and short", "Direction", a.byDirection, (r) => r.direction),
    statTable("By strategy", "Strategy", a.byStrategy, (r) => r.strategyId),
    statTable("By pair", "Pair", a.byPair, (r) => r.pair),
  ].join("\n");
}

const TRADE_COLS: readonly Col[] = [
  ["#", true],
  ["Side", false],
  ["Units", true],
  ["Entry", false],
  ["Entry price", true],
  ["Exit", false],
  ["Exit price", true],
  ["Held", true],
  ["P&L (quote)", true],
  ["P&L", true],
  ["Financing", true],
  ["Exit reason", false],
];

/** The trade list; with `pairOf`, each trade's pair and strategy lead its row (a portfolio). */
export function tradeListSection<T extends BacktestTrade>(trades: readonly T[], tradeCount: number, pairOf: (t: T) => string, strategyOf?: (t: T) => string): string {
  if (trades.length === 0) return "<p>No trades.</p>";
  const rows = trades.slice(0, TRADE_ROWS_MAX).map((t, i) => [
    String(i + 1),
    ...(strategyOf ? [pairOf(t), strategyOf(t)] : []),
    t.side === "buy" ? "long" : "short",
    formatNumber(t.units, 0),
    formatUtcMinute(t.entryT),
    String(t.entryPrice),
    formatUtcMinute(t.exitT),
    String(t.exitPrice),
    `${formatNumber((t.exitT - t.entryT) / 3_600_000, 1)} h`,
    formatQuoteMicros(t.pnlQuoteMicros, quoteCurrency(pairOf(t))),
    formatAccountCents(t.pnlAccountCents),
    formatAccountCents(t.financingAccountCents),
    t.exitReason,
  ]);
  const cols: Col[] = strategyOf ? [TRADE_COLS[0] as Col, ["Pair", false], ["Strategy", false], ...TRADE_COLS.slice(1)] : [...TRADE_COLS];
  const listed = trades.length;
  const note =
    listed > TRADE_ROWS_MAX || tradeCount > listed
      ? `<p class="note">Showing the first ${formatNumber(Math.min(listed, TRADE_ROWS_MAX), 0)} of ${formatNumber(tradeCount, 0)} trades; the JSON report lists ${tradeCount > listed ? `the first ${formatNumber(listed, 0)}` : "all of them"}.</p>\n`
      : "";
  return `${note}<div class="scroll">\n${table(cols, rows)}\n</div>`;
}

export function tradesSection(r: BacktestResult): string {
  return tradeListSection(r.trades, r.tradeCount, () => r.pair);
}
