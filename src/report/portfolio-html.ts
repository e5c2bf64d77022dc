/**
 * A portfolio backtest's report page, self-contained like the single-pair one
 * (html.ts: its styles, chart script and inlined chart library): the account's
 * metrics, equity and drawdown, the pairs and strategies side by side, the
 * refusals and trading states the limits caused, exposure per currency, the
 * trade tables, and each pair on its own (a drill-down per pair).
 */
import type { PortfolioBacktestResult } from "../replay/portfolio-result.ts";
import type { TradeAggregates } from "./aggregate.ts";
import { escapeHtml, formatAccountCents, formatDays, formatNumber, formatPct, formatUtcDate, formatUtcMinute } from "./format.ts";
import { aggregatesSection, type Col, keyValues, metricRows, refusalsText, table, tradeListSection } from "./html-tables.ts";
import { equityCharts, extraSection, reportPage } from "./html.ts";
import { chartData } from "./series.ts";

export interface PortfolioReportInput {
  result: PortfolioBacktestResult;
  aggregates: TradeAggregates;
  sweep?: unknown;
  walkForward?: unknown;
}

/** Rows of a pair's own trade list in its drill-down. */
const PAIR_TRADE_ROWS_MAX = 500;
const STATE_ROWS_MAX = 200;
const REFUSAL_ROWS_MAX = 200;

/** "max_open_positions (limit 1, actual 2)": a rejection's type and its figures, no JSON. */
function rejectionText(rejection: Record<string, unknown>): string {
  const { type, ...rest } = rejection;
  const figures = Object.entries(rest).map(([k, v]) => `${k} ${typeof v === "number" ? formatNumber(v, Number.isInteger(v) ? 0 : 2) : String(v)}`);
  return figures.length === 0 ? String(type) : `${String(type)} (${figures.join(", ")})`;
}

function title(r: PortfolioBacktestResult): string {
  const last = Math.max(r.settings.from, r.settings.to - 1);
  return `Portfolio · ${r.pairs.map((p) => p.pair).join(", ")} · ${formatUtcDate(r.settings.from)} to ${formatUtcDate(last)}`;
}

function settingsSection(r: PortfolioBacktestResult): string {
  const s = r.settings;
  const limits = s.limits
    ? Object.entries(s.limits)
        .map(([k, v]) => `${k} ${formatNumber(v, 0)}`)
        .join(", ")
    : "none";
  return keyValues([
    ["Account", `${r.accountCurrency}, initial ${formatAccountCents(Math.round(s.initialBalance * 100))}`],
    ["Portfolio limits", limits],
    ["Pairs and strategies", s.pairs.map((p) => `${p.pair}: ${p.strategies.map((x) => `${x.id} (${x.kind}, ${formatNumber(x.units, 0)})`).join(", ") || "prices only"}`).join("; ")],
    ["Requested range", `${formatUtcMinute(s.from)} to ${formatUtcMinute(s.to)} (end exclusive)`],
    ["Data seen", r.firstMs === null || r.lastMs === null ? "none" : `${formatUtcMinute(r.firstMs)} to ${formatUtcMinute(r.lastMs)}`],
    ["Bars read / equity marks", `${formatNumber(r.bars, 0)} / ${formatNumber(r.marks, 0)} (${r.timeframe})`],
    ["Spread", s.spreadPips === undefined ? (s.data === "ticks" ? "the data's own ask" : "1.00 pips") : s.spreadPips === null ? "the data's own ask" : `${formatNumber(s.spreadPips, 2)} pips`],
    ["Financing long / short", `${formatPct(s.financingLongPct)} / ${formatPct(s.financingShortPct)} a year`],
  ]);
}

function accountSection(r: PortfolioBacktestResult): string {
  const states = r.tradingStates;
  return keyValues([
    ...metricRows(r.metrics),
    ["P&L (incl. financing)", formatAccountCents(r.pnlAccountCents)],
    ["Financing", formatAccountCents(r.financingAccountCents)],
    ["Orders refused", refusalsText(r.refusals)],
    ["Time REDUCING / HALTED", `${formatDays(states.reducingMs)} / ${formatDays(states.haltedMs)}`],
  ]);
}

const PART_COLS: readonly Col[] = [["Trades", true], ["P&L", true], ["Return", true], ["Sharpe", true], ["Max drawdown", true], ["Refused", false]];

function partCells(p: PortfolioBacktestResult["pairs"][number] | PortfolioBacktestResult["pairs"][number]["strategies"][number]): string[] {
  return [formatNumber(p.tradeCount, 0), formatAccountCents(p.pnlAccountCents), formatPct(p.metrics.totalReturnPct), formatNumber(p.metrics.sharpe, 2), `${formatAccountCents(p.metrics.maxDrawdownAccountCents)} (${formatPct(p.metrics.maxDrawdownPct)})`, refusalsText(p.refusals)];
}

function partsSection(r: PortfolioBacktestResult): string {
  const pairs = table([["Pair", false], ...PART_COLS], r.pairs.map((p) => [p.pair, ...partCells(p)]));
  const strategies = table(
    [["Pair", false], ["Strategy", false], ["Timeframe", false], ...PART_COLS],
    r.pairs.flatMap((p) => p.strategies.map((s) => [p.pair, `${s.strategyId} (${s.kind})`, s.timeframe, ...partCells(s)])),
  );
  return `<h3>Pairs</h3>\n<div class="scroll">\n${pairs}\n</div>\n<h3>Strategies</h3>\n<div class="scroll">\n${strategies}\n</div>`;
}

function limitsSection(r: PortfolioBacktestResult): string {
  const refusals = Object.keys(r.refusals).sort();
  const refusalTable = refusals.length === 0 ? "<p>No order was refused.</p>" : table([["Reason", false], ["Orders", true]], refusals.map((k) => [k, formatNumber(r.refusals[k] ?? 0, 0)]));
  const changes = r.tradingStates.changes.slice(0, STATE_ROWS_MAX);
  const stateTable = changes.length === 0 ? "<p>Trading stayed ACTIVE throughout.</p>" : table([["At", false], ["State", false], ["Why", false]], changes.map((c) => [formatUtcMinute(c.t), c.state, c.reason]));
  const more = r.tradingStates.changeCount > changes.length ? `<p class="note">The first ${changes.length} of ${formatNumber(r.tradingStates.changeCount, 0)} changes; the JSON lists up to 1,000.</p>\n` : "";
  const listed = r.refusalsListed.slice(0, REFUSAL_ROWS_MAX);
  const list =
    listed.length === 0
      ? ""
      : `\n<h3>Refused orders${r.refusalsListed.length > listed.length ? ` (the first ${listed.length})` : ""}</h3>\n<div class="scroll">\n${table(
          [["At", false], ["Pair", false], ["Strategy", false], ["Side", false], ["Units", true], ["Reason", false]],
          listed.map((x) => [formatUtcMinute(x.t), x.pair, x.strategyId, x.side, formatNumber(x.units, 0), rejectionText(x.rejection)]),
        )}\n</div>`;
  return `<div class="grid">\n<div>\n<h3>Refusals by reason</h3>\n${refusalTable}\n</div>\n<div>\n<h3>Trading state changes</h3>\n${more}${stateTable}\n</div>\n</div>${list}`;
}

/** Per currency: the largest long and short net exposure seen, and the peak gross. */
function exposureSection(r: PortfolioBacktestResult): string {
  if (r.exposure.length === 0) return "<p>No exposure points.</p>";
  const extremes = new Map<string, { long: number; short: number }>();
  let gross = 0;
  for (const p of r.exposure) {
    gross = Math.max(gross, p.gross);
    for (const [currency, amount] of Object.entries(p.perCurrency)) {
      const e = extremes.get(currency) ?? { long: 0, short: 0 };
      extremes.set(currency, { long: Math.max(e.long, amount), short: Math.min(e.short, amount) });
    }
  }
  const rows = [...extremes].sort((a, b) => (a[0] < b[0] ? -1 : 1)).map(([c, e]) => [c, formatNumber(e.long, 0), formatNumber(e.short, 0)]);
  return `<p class="sub">Net amount per currency in ${escapeHtml(r.accountCurrency)}, sampled hourly (${formatNumber(r.exposure.length, 0)} points in the JSON); peak gross ${formatNumber(gross, 0)}.</p>\n${table([["Currency", false], ["Largest long", true], ["Largest short", true]], rows)}`;
}

function pairDrillDown(r: PortfolioBacktestResult): string {
  return r.pairs
    .map((p) => {
      const trades = r.trades.filter((t) => t.pair === p.pair).slice(0, PAIR_TRADE_ROWS_MAX);
      return `<details>\n<summary>${escapeHtml(`${p.pair}: ${p.tradeCount} trades, ${formatAccountCents(p.pnlAccountCents)}`)}</summary>\n<div class="grid">\n<section>${keyValues([...metricRows(p.metrics), ["Financing", formatAccountCents(p.financingAccountCents)], ["Orders refused", refusalsText(p.refusals)], ["Bars read", formatNumber(p.bars, 0)]])}</section>\n</div>\n${tradeListSection(trades, p.tradeCount, (t) => t.pair, (t) => t.strategyId)}\n</details>`;
    })
    .join("\n");
}

export function renderPortfolioHtml(report: PortfolioReportInput): string {
  const r = report.result;
  const charts = chartData(r);
  const body = `<div class="grid">
<section><h2>Account</h2>
${accountSection(r)}
</section>
<section><h2>Settings</h2>
${settingsSection(r)}
</section>
</div>
<h2>Equity</h2>
${equityCharts(charts, r.accountCurrency)}
<h2>Pairs and strategies</h2>
${partsSection(r)}
<h2>Limits at work</h2>
${limitsSection(r)}
<h2>Exposure</h2>
${exposureSection(r)}
<h2>Trades by period, direction, strategy and pair</h2>
<div class="grid">
${aggregatesSection(report.aggregates)}
</div>
${extraSection("Parameter sweep", report.sweep)}${extraSection("Walk-forward", report.walkForward)}<h2>Each pair</h2>
${pairDrillDown(r)}
<h2>Trades</h2>
${tradeListSection(r.trades, r.tradeCount, (t) => t.pair, (t) => t.strategyId)}`;
  return reportPage(title(r), `${r.pairs.length} pairs · ${r.tradeCount} trades · money in ${r.accountCurrency} · times in UTC`, body, charts);
}
