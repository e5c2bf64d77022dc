/**
 * The backtest report: trade aggregates (arquero) checked against figures
 * worked out by hand from six trades, the JSON's determinism, and the HTML
 * page's content and escaping. Rendering in a real browser is optional and
 * only runs when a system chromium and playwright-core are both present.
 */
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import type { BacktestResult, BacktestTrade } from "../../src/replay/result.ts";
import { aggregateTrades } from "../../src/report/aggregate.ts";
import { TRADE_ROWS_MAX } from "../../src/report/html-tables.ts";
import { buildReport, writeReport } from "../../src/report/report.ts";
import { chartData } from "../../src/report/series.ts";

const utc = (y: number, mon: number, d: number, h = 0): number => Date.UTC(y, mon - 1, d, h);

/** EUR_USD: quote is USD, so quote micros = cents x 10,000. */
function trade(side: "buy" | "sell", entryT: number, exitT: number, pnlAccountCents: number, financingAccountCents: number): BacktestTrade {
  return {
    side,
    units: 100_000,
    entryT,
    entryPrice: 1.0912,
    exitT,
    exitPrice: 1.0935,
    pnlQuoteMicros: pnlAccountCents * 10_000,
    pnlAccountCents,
    financingAccountCents,
    exitReason: pnlAccountCents > 0 ? "take_profit" : "stop_loss",
  };
}

// 2024-01-01 was a Monday. Entry weekday / hour, exit month in the comments.
const TRADES: BacktestTrade[] = [
  trade("buy", utc(2024, 1, 8, 9), utc(2024, 1, 9, 13), 12_345, -120), // Mon 09, Jan
  trade("sell", utc(2024, 1, 17, 14), utc(2024, 1, 18, 10), -4_560, -35), // Wed 14, Jan
  trade("buy", utc(2024, 1, 31, 21), utc(2024, 2, 1, 3), 7_800, -60), // Wed 21, Feb
  trade("sell", utc(2024, 2, 12, 9), utc(2024, 2, 12, 18), -2_210, 0), // Mon 09, Feb
  trade("buy", utc(2024, 3, 5, 14), utc(2024, 3, 7, 9), -9_999, -150), // Tue 14, Mar
  trade("sell", utc(2024, 3, 22, 9), utc(2024, 3, 25, 7), 15_001, -410), // Fri 09, Mar
];

const INITIAL_CENTS = 10_000_000;

function sampleResult(overrides: { pair?: string; strategyId?: string; params?: Record<string, unknown>; trades?: BacktestTrade[] } = {}): BacktestResult {
  const pair = overrides.pair ?? "EUR_USD";
  const strategyId = overrides.strategyId ?? "sma-20-50";
  const trades = overrides.trades ?? TRADES;
  return {
    settings: {
      pair,
      fromMs: utc(2024, 1, 1),
      toMs: utc(2024, 4, 1),
      strategy: { id: strategyId, kind: "sma-cross", units: 100_000, params: overrides.params ?? { timeframe: "1h", fast: 20, slow: 50 } },
      spreadPips: 1,
      slippagePips: 0.2,
      commissionPerMillion: 25,
      financingLongPct: -1.5,
      financingShortPct: 0.5,
      initialBalanceUsd: 100_000,
    },
    pair,
    strategyId,
    timeframe: "1h",
    bars: 130_000,
    candles: 2_150,
    firstMs: utc(2024, 1, 1, 22),
    lastMs: utc(2024, 3, 29, 21),
    trades,
    tradeCount: trades.length,
    tradesOmitted: 0,
    // Realised 18,377 + financing -775.
    pnlQuoteMicros: 176_020_000,
    pnlAccountCents: 17_602,
    pnlQuote: 176.02,
    pnlAccount: 176.02,
    financingAccountCents: -775,
    rejections: { max_position_units: 2 },
    equity: [
      { t: utc(2024, 1, 8, 12), accountCents: 2_000 },
      { t: utc(2024, 1, 9, 13), accountCents: 12_225 },
      { t: utc(2024, 1, 18, 10), accountCents: 7_630 },
      { t: utc(2024, 2, 1, 3), accountCents: 15_370 },
      { t: utc(2024, 2, 12, 18), accountCents: 13_160 },
      { t: utc(2024, 3, 6, 0), accountCents: 5_000 },
      { t: utc(2024, 3, 7, 9), accountCents: 3_011 },
      { t: utc(2024, 3, 25, 7), accountCents: 17_602 },
    ],
    metrics: {
      initialBalanceAccountCents: INITIAL_CENTS,
      finalBalanceAccountCents: INITIAL_CENTS + 17_602,
      totalReturnPct: 0.17602,
      cagrPct: 0.7123,
      sharpe: 1.23456,
      sortino: null,
      maxDrawdownAccountCents: 12_359,
      maxDrawdownPct: (12_359 / 10_015_370) * 100,
      maxDrawdownDurationMs: utc(2024, 3, 25, 7) - utc(2024, 2, 1, 3),
      tradeCount: 6,
      wins: 3,
      losses: 3,
      winRate: 0.5,
      grossProfitAccountCents: 35_146,
      grossLossAccountCents: -16_769,
      profitFactor: 35_146 / 16_769,
      avgWinAccountCents: 11_715,
      avgLossAccountCents: -5_590,
      exposurePct: 12.5,
    },
  };
}

/** The stats columns in their JSON order, to keep the expectations below readable. */
function stats(trades: number, wins: number, losses: number, pnl: number, fin: number, avg: number, gp: number, gl: number) {
  return {
    trades,
    wins,
    losses,
    winRate: wins / trades,
    pnlAccountCents: pnl,
    financingAccountCents: fin,
    avgPnlAccountCents: avg,
    grossProfitAccountCents: gp,
    grossLossAccountCents: gl,
    profitFactor: gl === 0 ? null : gp / -gl,
  };
}

describe("aggregateTrades", () => {
  const a = aggregateTrades([sampleResult()]);

  it("sums by UTC month of exit", () => {
    expect(a.byMonth).toEqual([
      { month: "2024-01", ...stats(2, 1, 1, 7_785, -155, 3_893, 12_345, -4_560) },
      { month: "2024-02", ...stats(2, 1, 1, 5_590, -60, 2_795, 7_800, -2_210) },
      { month: "2024-03", ...stats(2, 1, 1, 5_002, -560, 2_501, 15_001, -9_999) },
    ]);
    expect(a.byMonth[0]?.winRate).toBe(0.5);
  });

  it("groups by UTC weekday and hour of entry, Monday first; averages round halves up", () => {
    expect(a.byWeekday).toEqual([
      { weekday: 1, weekdayName: "Monday", ...stats(2, 1, 1, 10_135, -120, 5_068, 12_345, -2_210) },
      { weekday: 2, weekdayName: "Tuesday", ...stats(1, 0, 1, -9_999, -150, -9_999, 0, -9_999) },
      { weekday: 3, weekdayName: "Wednesday", ...stats(2, 1, 1, 3_240, -95, 1_620, 7_800, -4_560) },
      { weekday: 5, weekdayName: "Friday", ...stats(1, 1, 0, 15_001, -410, 15_001, 15_001, 0) },
    ]);
    expect(a.byHour).toEqual([
      { hour: 9, ...stats(3, 2, 1, 25_136, -530, 8_379, 27_346, -2_210) },
      // -14,559 / 2 = -7,279.5 rounds to -7,279 (Math.round: halves toward +infinity).
      { hour: 14, ...stats(2, 0, 2, -14_559, -185, -7_279, 0, -14_559) },
      { hour: 21, ...stats(1, 1, 0, 7_800, -60, 7_800, 7_800, 0) },
    ]);
    expect(a.byHour[0]?.winRate).toBe(2 / 3);
    expect(a.byWeekday[1]?.profitFactor).toBe(0);
    expect(a.byWeekday[3]?.profitFactor).toBeNull();
  });

  it("splits long and short and totals per strategy and pair", () => {
    expect(a.byDirection).toEqual([
      { direction: "long", ...stats(3, 2, 1, 10_146, -330, 3_382, 20_145, -9_999) },
      { direction: "short", ...stats(3, 1, 2, 8_231, -445, 2_744, 15_001, -6_770) },
    ]);
    const total = stats(6, 3, 3, 18_377, -775, 3_063, 35_146, -16_769);
    expect(a.byStrategy).toEqual([{ strategyId: "sma-20-50", ...total }]);
    expect(a.byPair).toEqual([{ pair: "EUR_USD", ...total }]);
    // The same figures the metrics carry.
    expect(total.profitFactor).toBe(sampleResult().metrics.profitFactor);
  });

  it("combines several results, sorts keys, counts a zero P&L trade as neither win nor loss", () => {
    const jpy = sampleResult({ pair: "USD_JPY", strategyId: "breakout", trades: [trade("buy", utc(2024, 1, 10, 9), utc(2024, 4, 2, 9), 0, -40)] });
    const aud = sampleResult({ pair: "AUD_USD", trades: [TRADES[0]!] });
    const c = aggregateTrades([sampleResult(), jpy, aud]);
    const flat = stats(1, 0, 0, 0, -40, 0, 0, 0);
    expect(c.byPair).toEqual([
      { pair: "AUD_USD", ...stats(1, 1, 0, 12_345, -120, 12_345, 12_345, 0) },
      { pair: "EUR_USD", ...stats(6, 3, 3, 18_377, -775, 3_063, 35_146, -16_769) },
      { pair: "USD_JPY", ...flat },
    ]);
    expect(c.byStrategy).toEqual([
      { strategyId: "breakout", ...flat },
      { strategyId: "sma-20-50", ...stats(7, 4, 3, 30_722, -895, 4_389, 47_491, -16_769) },
    ]);
    expect(flat.winRate).toBe(0);
    expect(c.byMonth.map((r) => [r.month, r.trades])).toEqual([
      ["2024-01", 3],
      ["2024-02", 2],
      ["2024-03", 2],
      ["2024-04", 1],
    ]);
  });

  it("is independent of trade order and gives empty tables for no trades", () => {
    const shuffled = sampleResult({ trades: [...TRADES].reverse() });
    expect(JSON.stringify(aggregateTrades([shuffled]))).toBe(JSON.stringify(a));
    expect(aggregateTrades([sampleResult({ trades: [] })])).toEqual({
      byMonth: [],
      byWeekday: [],
      byHour: [],
      byStrategy: [],
      byPair: [],
      byDirection: [],
    });
    expect(aggregateTrades([])).toEqual(aggregateTrades([sampleResult({ trades: [] })]));
  });
});

describe("chartData", () => {
  it("starts at the initial balance, in USD, with the drawdown below the running peak", () => {
    const c = chartData(sampleResult());
    const sec = (ms: number): number => ms / 1000;
    expect(c.balance.t[0]).toBe(sec(utc(2024, 1, 1, 22)));
    expect(c.balance.v).toEqual([100_000, 100_020, 100_122.25, 100_076.3, 100_153.7, 100_131.6, 100_050, 100_030.11, 100_176.02]);
    expect(c.drawdownPct.t).toEqual(c.balance.t);
    // Peak 10,015,370 cents (1 Feb); the trough 10,003,011 is 0.1234 % below it.
    expect(c.drawdownPct.v).toEqual([0, 0, 0, -0.0459, 0, -0.0221, -0.1035, -0.1234, 0]);
  });

  it("keeps one point per second, the later one", () => {
    const r = sampleResult();
    r.equity = [
      { t: 1_000_100, accountCents: 5 },
      { t: 1_000_900, accountCents: 7 },
      { t: 2_000_000, accountCents: 9 },
    ];
    r.firstMs = 1_000_000;
    const c = chartData(r);
    expect(c.balance.t).toEqual([1_000, 2_000]);
    expect(c.balance.v).toEqual([100_000.07, 100_000.09]);
  });
});

describe("buildReport", () => {
  const result = sampleResult();
  const report = buildReport(result);

  it("is deterministic and carries the result, the aggregates and the extras", () => {
    const again = buildReport(structuredClone(result));
    expect(again.json).toBe(report.json);
    expect(again.html).toBe(report.html);
    const parsed = JSON.parse(report.json) as Record<string, unknown>;
    expect(Object.keys(parsed)).toEqual(["result", "aggregates", "generatedBy"]);
    expect(parsed["result"]).toEqual(result);
    expect(parsed["aggregates"]).toEqual(aggregateTrades([result]));
    expect(parsed["generatedBy"]).toBe("fxrt");

    const withSweep = buildReport(result, { sweep: { best: { fast: 10, slow: 40 }, note: "<i>" } });
    expect(Object.keys(JSON.parse(withSweep.json) as object)).toEqual(["result", "aggregates", "generatedBy", "sweep"]);
    expect(withSweep.html).toContain("Parameter sweep");
    expect(withSweep.html).toContain("&quot;note&quot;: &quot;&lt;i&gt;&quot;");
  });

  it("renders the title, settings, formatted metrics and tables", () => {
    const html = report.html;
    expect(html.startsWith("<!DOCTYPE html>")).toBe(true);
    expect(html).toContain("<title>EUR_USD · sma-20-50 · 2024-01-01 to 2024-03-31</title>");
    expect(html).toContain("<h1>EUR_USD · sma-20-50 · 2024-01-01 to 2024-03-31</h1>");
    const kv = (k: string, v: string): string => `<tr><th>${k}</th><td>${v}</td></tr>`;
    expect(html).toContain(kv("Total return", "0.18 %"));
    expect(html).toContain(kv("CAGR", "0.71 %"));
    expect(html).toContain(kv("Sharpe (daily, annualised)", "1.23"));
    expect(html).toContain(kv("Sortino (daily, annualised)", "n/a"));
    expect(html).toContain(kv("Max drawdown", "$123.59 (0.12 %)"));
    expect(html).toContain(kv("Longest drawdown", "53.2 days"));
    expect(html).toContain(kv("Trades (wins / losses)", "6 (3 / 3)"));
    expect(html).toContain(kv("Win rate", "50.0 %"));
    expect(html).toContain(kv("Profit factor", "2.10"));
    expect(html).toContain(kv("Average win / loss", "$117.15 / -$55.90"));
    expect(html).toContain(kv("Exposure", "12.50 %"));
    expect(html).toContain(kv("P&amp;L (quote)", "176.02 USD"));
    expect(html).toContain(kv("P&amp;L (USD, incl. financing)", "$176.02"));
    expect(html).toContain(kv("Financing", "-$7.75"));
    expect(html).toContain(kv("Balance initial / final", "$100,000.00 / $100,176.02"));
    expect(html).toContain(kv("Parameters", "fast = 20, slow = 50, timeframe = &quot;1h&quot;"));
    expect(html).toContain(kv("Spread", "1.00 pips"));
    expect(html).toContain(kv("Orders refused by risk limits", "max_position_units: 2"));
    // An aggregate row: March, 2 trades, 50 %, $50.02, avg $25.01, PF 1.50, financing -$5.60.
    expect(html).toContain(
      '<tr><td>2024-03</td><td class="num">2</td><td class="num">50.0 %</td><td class="num">$50.02</td><td class="num">$25.01</td><td class="num">1.50</td><td class="num">-$5.60</td></tr>',
    );
    // The trade list: six rows, the first one in full.
    expect(html).toContain(
      '<tr><td class="num">1</td><td>long</td><td class="num">100,000</td><td>2024-01-08 09:00</td><td class="num">1.0912</td><td>2024-01-09 13:00</td><td class="num">1.0935</td><td class="num">28.0 h</td><td class="num">123.45 USD</td><td class="num">$123.45</td><td class="num">-$1.20</td><td>take_profit</td></tr>',
    );
    expect(html).not.toContain("Showing the first");
  });

  it("inlines lightweight-charts and the chart data, with no external resources", () => {
    const html = report.html;
    expect(html.match(/<script\b/g)).toHaveLength(3);
    expect(html).toContain("TradingView Lightweight Charts™ v5.2.1");
    expect(html).toContain("window.LightweightCharts=");
    expect(html).toContain("addSeries(LC.LineSeries");
    expect(html).toContain("addSeries(LC.AreaSeries");
    const data = /<script type="application\/json" id="chart-data">(.*?)<\/script>/s.exec(html)?.[1];
    expect(data).toBeDefined();
    expect(JSON.parse(data ?? "null")).toEqual(chartData(result));
    expect(data).toContain('"v":[100000,100020,100122.25');
    expect(html).not.toMatch(/<(script|link|img)[^>]+(src|href)=/i);
    // Everything but the library stays small.
    const lib = /<script>\n([\s\S]*?)\n<\/script>/.exec(html)?.[1] ?? "";
    expect(lib.length).toBeGreaterThan(100_000);
    expect(html.length - lib.length).toBeLessThan(30_000);
  });

  it("escapes pair names, ids and parameters", () => {
    const evil = buildReport(
      sampleResult({ pair: "EUR<script>alert(1)</script>", strategyId: 'x"&y', params: { "<k>": "</td><b>v</b>" } }),
    ).html;
    expect(evil.match(/<script\b/g)).toHaveLength(3);
    expect(evil).not.toContain("<script>alert(1)");
    expect(evil).not.toContain("<b>v</b>");
    expect(evil).toContain("<title>EUR&lt;script&gt;alert(1)&lt;/script&gt; · x&quot;&amp;y · 2024-01-01 to 2024-03-31</title>");
    expect(evil).toContain("&lt;k&gt; = &quot;&lt;/td&gt;&lt;b&gt;v&lt;/b&gt;&quot;");
    expect(evil).toContain("<td>EUR&lt;script&gt;alert(1)&lt;/script&gt;</td>");
  });

  it("caps the trade list and says so", () => {
    const many = Array.from({ length: TRADE_ROWS_MAX + 1 }, (_, i) =>
      trade(i % 2 === 0 ? "buy" : "sell", utc(2024, 1, 2) + i * 3_600_000, utc(2024, 1, 2) + i * 3_600_000 + 1_800_000, i % 3 === 0 ? -100 : 150, 0),
    );
    const html = buildReport(sampleResult({ trades: many })).html;
    expect(html).toContain("Showing the first 2,000 of 2,001 trades; the JSON report lists all of them.");
    const beyond = buildReport({ ...sampleResult({ trades: many }), tradeCount: 150_000, tradesOmitted: 150_000 - many.length }).html;
    expect(beyond).toContain("Showing the first 2,000 of 150,000 trades; the JSON report lists the first 2,001.");
    expect(html).toContain('<tr><td class="num">2000</td>');
    expect(html).not.toContain('<tr><td class="num">2001</td>');
  });

  it("writes the two files", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "fxrt-report-"));
    try {
      const paths = await writeReport(path.join(dir, "out"), "eurusd-sma", report);
      expect(paths).toEqual({ jsonPath: path.join(dir, "out", "eurusd-sma.json"), htmlPath: path.join(dir, "out", "eurusd-sma.html") });
      expect(await readFile(paths.jsonPath, "utf8")).toBe(`${report.json}\n`);
      expect(await readFile(paths.htmlPath, "utf8")).toBe(report.html);
      await expect(writeReport(dir, "../escape", report)).rejects.toThrow(/bad base name/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

// Optional: draw the page in a real browser. Never installs anything.
const CHROMIUM = "/usr/bin/chromium";
async function loadPlaywright(): Promise<{ chromium: { launch(o: object): Promise<any> } } | null> {
  if (!existsSync(CHROMIUM)) return null;
  const name = "playwright-core"; // a variable, so tsc does not need its types
  try {
    return (await import(name)) as { chromium: { launch(o: object): Promise<any> } };
  } catch {
    return null;
  }
}
const playwright = await loadPlaywright();
if (playwright === null) console.warn(`report: browser rendering skipped (needs ${CHROMIUM} and playwright-core; neither is installed by the tests)`);

describe.skipIf(playwright === null)("report in chromium", () => {
  it("draws both charts without errors", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "fxrt-report-"));
    const browser = await playwright!.chromium.launch({ executablePath: CHROMIUM });
    try {
      const { htmlPath } = await writeReport(dir, "r", buildReport(sampleResult()));
      const page = await browser.newPage();
      const errors: string[] = [];
      page.on("pageerror", (e: Error) => errors.push(e.message));
      await page.goto(`file://${htmlPath}`);
      await page.waitForSelector("#equity-chart canvas");
      await page.waitForSelector("#drawdown-chart canvas");
      expect(errors).toEqual([]);
    } finally {
      await browser.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
