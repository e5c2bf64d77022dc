/**
 * The backtest report as one self-contained HTML page: it must open from a
 * file:// URL with no network, so the chart library is inlined, not linked.
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import type { BacktestResult } from "../replay/result.ts";
import type { TradeAggregates } from "./aggregate.ts";
import { escapeHtml, formatUtcDate, jsonForScript } from "./format.ts";
import { aggregatesSection, metricsSection, settingsSection, tradesSection } from "./html-tables.ts";
import { chartData, type ChartData } from "./series.ts";

export interface ReportInput {
  result: BacktestResult;
  aggregates: TradeAggregates;
  sweep?: unknown;
  walkForward?: unknown;
}

let chartsLibrary: string | undefined;

/** lightweight-charts' standalone build (defines window.LightweightCharts), read once per process. */
function chartsLibrarySource(): string {
  if (chartsLibrary === undefined) {
    // The package's "exports" hide dist/, but do export package.json: find the folder through it.
    const pkg = createRequire(import.meta.url).resolve("lightweight-charts/package.json");
    const text = readFileSync(path.join(path.dirname(pkg), "dist", "lightweight-charts.standalone.production.js"), "utf8");
    // Inside <script> only "</script" and "<!--" mean anything to the HTML
    // parser; the build has neither today, and "<\/" is the same text to JS.
    chartsLibrary = text.replace(/<(\/script|!--)/gi, "<\\$1");
  }
  return chartsLibrary;
}

/** Draws the two charts from the JSON block; plain ES5-ish so any browser runs it. */
const CHART_SCRIPT = `(function () {
  "use strict";
  var LC = window.LightweightCharts;
  var data = JSON.parse(document.getElementById("chart-data").textContent);
  if (!LC || data.balance.t.length === 0) return;
  function points(s) {
    var out = [];
    for (var i = 0; i < s.t.length; i++) out.push({ time: s.t[i], value: s.v[i] });
    return out;
  }
  function chart(id) {
    return LC.createChart(document.getElementById(id), {
      autoSize: true,
      layout: { background: { type: LC.ColorType.Solid, color: "#ffffff" }, textColor: "#1f2328" },
      grid: { vertLines: { color: "#eef0f2" }, horzLines: { color: "#eef0f2" } },
      timeScale: { timeVisible: true, secondsVisible: false },
    });
  }
  var equity = chart("equity-chart");
  equity.addSeries(LC.LineSeries, {
    color: "#1f6feb", lineWidth: 2, priceFormat: { type: "price", precision: 2, minMove: 0.01 },
  }).setData(points(data.balance));
  var drawdown = chart("drawdown-chart");
  drawdown.addSeries(LC.AreaSeries, {
    lineColor: "#cf222e", topColor: "rgba(207, 34, 46, 0.05)", bottomColor: "rgba(207, 34, 46, 0.4)",
    invertFilledArea: true, lineWidth: 1,
    priceFormat: { type: "custom", minMove: 0.01, formatter: function (v) { return v.toFixed(2) + " %"; } },
  }).setData(points(data.drawdownPct));
  equity.timeScale().fitContent();
  drawdown.timeScale().fitContent();
  // Both series have the same times, so their logical ranges line up: scrolling one scrolls the other.
  var syncing = false;
  function follow(a, b) {
    a.timeScale().subscribeVisibleLogicalRangeChange(function (range) {
      if (syncing || range === null) return;
      syncing = true;
      b.timeScale().setVisibleLogicalRange(range);
      syncing = false;
    });
  }
  follow(equity, drawdown);
  follow(drawdown, equity);
})();`;

const CSS = `
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1f2328; margin: 0 auto; padding: 16px 24px 48px; max-width: 1200px; }
h1 { font-size: 22px; margin: 8px 0 4px; }
h2 { font-size: 18px; margin: 28px 0 8px; border-bottom: 1px solid #d0d7de; padding-bottom: 4px; }
h3 { font-size: 15px; margin: 18px 0 6px; }
.sub, .note { color: #59636e; }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(360px, 1fr)); gap: 0 32px; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; }
th, td { padding: 3px 10px; border-bottom: 1px solid #eaeef2; text-align: left; white-space: nowrap; }
thead th { background: #f6f8fa; }
table.kv th { font-weight: normal; color: #59636e; }
table.kv td { white-space: normal; }
.num { text-align: right; }
.grid > *, .scroll { overflow-x: auto; }
.chart { height: 320px; margin: 8px 0 16px; }
.chart.small { height: 200px; }
pre { background: #f6f8fa; padding: 8px; overflow: auto; max-height: 480px; }
`;

function title(r: BacktestResult): string {
  // toMs is exclusive: the last day covered is the one before it.
  const last = Math.max(r.settings.fromMs, r.settings.toMs - 1);
  return `${r.pair} · ${r.strategyId} · ${formatUtcDate(r.settings.fromMs)} to ${formatUtcDate(last)}`;
}

export function extraSection(name: string, value: unknown): string {
  if (value === undefined) return "";
  return `<h2>${escapeHtml(name)}</h2>\n<details><summary>JSON</summary><pre>${escapeHtml(JSON.stringify(value, null, 2) ?? "")}</pre></details>\n`;
}

export function renderReportHtml(report: ReportInput): string {
  const r = report.result;
  const charts = chartData(r);
  const body = `<div class="grid">
<section><h2>Metrics</h2>
${metricsSection(r)}
</section>
<section><h2>Settings</h2>
${settingsSection(r)}
</section>
</div>
<h2>Equity</h2>
${equityCharts(charts, "USD")}
<h2>Trades by period, direction, strategy and pair</h2>
<div class="grid">
${aggregatesSection(report.aggregates)}
</div>
${extraSection("Parameter sweep", report.sweep)}${extraSection("Walk-forward", report.walkForward)}<h2>Trades</h2>
${tradesSection(r)}`;
  return reportPage(title(r), `${r.settings.strategy.kind} on ${r.timeframe} candles · ${r.tradeCount} trades · times in UTC`, body, charts);
}

/** The balance and drawdown charts' places (drawn by CHART_SCRIPT from the page's chart data). */
export function equityCharts(charts: ChartData, currency: string): string {
  if (charts.balance.t.length === 0) return "<p>No equity points.</p>";
  return `<h3>Balance (${escapeHtml(currency)})</h3>\n<div id="equity-chart" class="chart"></div>\n<h3>Drawdown (% below the running peak)</h3>\n<div id="drawdown-chart" class="chart small"></div>`;
}

/** A whole report page around `body` (HTML already escaped): styles, heading, the chart data, the inlined chart library and script. */
export function reportPage(heading: string, sub: string, body: string, charts: ChartData): string {
  const h = escapeHtml(heading);
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${h}</title>
<style>${CSS}</style>
</head>
<body>
<h1>${h}</h1>
<p class="sub">${escapeHtml(sub)}</p>
${body}
<p class="note">Charts drawn with TradingView Lightweight Charts (Apache-2.0), inlined below.</p>
<script type="application/json" id="chart-data">${jsonForScript(charts)}</script>
<script>
${chartsLibrarySource()}
</script>
<script>
${CHART_SCRIPT}
</script>
</body>
</html>
`;
}
