/**
 * Portfolio backtests: several pairs on one clock under the coordinator's
 * rules. On the real EUR_USD and USD_JPY 2018 history: with no limits the
 * portfolio is exactly the two single-pair backtests side by side; a limit
 * that binds refuses with its typed reason and is never exceeded; a daily
 * loss moves to REDUCING until the next 17:00 New York roll, a drawdown
 * HALTS for good; the same inputs give the same bytes. On synthetic data: a
 * cross's P&L is valued through the other pair's mid, and a cross without
 * its conversion pair is refused before anything runs.
 */
import { existsSync } from "node:fs";
import path from "node:path";
import * as v from "valibot";
import { beforeAll, describe, expect, it } from "vitest";
import { BacktestRequest, PortfolioBacktestRequest, type PortfolioBacktestRequestInput } from "../../schemas/backtest.ts";
import type { Candle } from "../../src/domain/candle.ts";
import { bucketEnd, fxDayStart, isWeekendClosed } from "../../src/domain/fx-time.ts";
import { NEW_DAY_REASON } from "../../src/domain/portfolio/trading-state.ts";
import { SeededRandom } from "../../src/domain/random.ts";
import { candlesToArrowIPC } from "../../src/ingest/candle-arrow.ts";
import { candleKey, candleManifestKey } from "../../src/ingest/lake-manifest.ts";
import { backtestFromLake, portfolioFromLake } from "../../src/replay/lake-run.ts";
import type { PortfolioBacktestResult, PortfolioTrade } from "../../src/replay/portfolio-result.ts";
import { importFile } from "../../scripts/import.ts";
import { parsePortfolioArgs, portfolioSummaryTable, runPortfolioCli, sweepThreads } from "../../scripts/portfolio-cli.ts";
import { threadRunner } from "../../scripts/sweep-pool.ts";
import { applyCombination, inProcessRunner, sweepPortfolio, walkForwardPortfolio } from "../../src/replay/portfolio-sweep.ts";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { MemoryBucket } from "../support/memory-bucket.ts";

const DATA = path.resolve(import.meta.dirname, "../../../shared/data/m1_histdata");
const FILES = { EUR_USD: path.join(DATA, "DAT_ASCII_EURUSD_M1_2018.csv.gz"), USD_JPY: path.join(DATA, "DAT_ASCII_USDJPY_M1_2018.csv.gz") };
const present = Object.values(FILES).every((f) => existsSync(f));
if (!present) console.warn(`portfolio-backtest: real-data cases skipped, no histdata files in ${DATA}`);

const SMA = { id: "sma", kind: "sma-cross", units: 100_000, params: { timeframe: "1h", fast: 20, slow: 50, price: "bid" } };
const YEAR = { from: "2018-01-01", to: "2019-01-01" };

function portfolio(extra: Partial<PortfolioBacktestRequestInput> = {}): PortfolioBacktestRequest {
  return v.parse(PortfolioBacktestRequest, { ...YEAR, pairs: [{ pair: "USD_JPY", strategies: [SMA] }, { pair: "EUR_USD", strategies: [SMA] }], ...extra });
}

const strip = ({ pair: _p, strategyId: _s, ...trade }: PortfolioTrade) => trade;

describe.skipIf(!present)("portfolio backtest on EUR_USD and USD_JPY 2018", () => {
  const bucket = new MemoryBucket();
  beforeAll(async () => {
    for (const [pair, file] of Object.entries(FILES)) await importFile({ file, pair, tz: "EST", bucket, log: () => {} });
  }, 120_000);

  it("with no portfolio limits: exactly the union of the two single-pair backtests, P&L their sum to the cent", async () => {
    const both = await portfolioFromLake(bucket, portfolio());
    let trades = 0;
    let cents = 0;
    for (const pair of ["EUR_USD", "USD_JPY"]) {
      const single = await backtestFromLake(bucket, v.parse(BacktestRequest, { ...YEAR, pair, strategy: SMA }));
      const mine = both.trades.filter((t) => t.pair === pair);
      expect(mine.map(strip)).toEqual(single.trades);
      const figures = both.pairs.find((p) => p.pair === pair);
      expect(figures?.pnlAccountCents).toBe(single.pnlAccountCents);
      expect(figures?.strategies[0]?.pnlQuoteMicros).toBe(single.pnlQuoteMicros);
      expect(figures?.metrics.tradeCount).toBe(single.metrics.tradeCount);
      trades += single.tradeCount;
      cents += single.pnlAccountCents;
    }
    // The golden single-pair figures: 136 + 144 trades, +1,977.00 + 2,219.68 USD.
    expect([trades, cents]).toEqual([280, 197_700 + 221_968]);
    expect([both.tradeCount, both.pnlAccountCents]).toEqual([trades, cents]);
    expect(both.refusals).toEqual({});
    expect(both.tradingStates).toEqual({ reducingMs: 0, haltedMs: 0, changes: [], changeCount: 0 });
    // The account's trades in time order of their exits; one merged equity curve ending at the P&L.
    expect(both.trades.every((t, i) => i === 0 || (both.trades[i - 1] as PortfolioTrade).exitT <= t.exitT)).toBe(true);
    expect(both.equity[both.equity.length - 1]?.accountCents).toBe(cents);
    expect(both.metrics.finalBalanceAccountCents).toBe(10_000_000 + cents);
    // Exposure per currency: long USD_JPY is long USD and short JPY, valued in USD.
    expect(both.exposure.length).toBeGreaterThan(1000);
    expect(both.exposure.some((p) => Object.keys(p.perCurrency).includes("JPY"))).toBe(true);
  });

  it("with financing and costs too: each pair's trades, financing and P&L are its single-pair backtest's", async () => {
    const costs = { financingLongPct: 2.5, financingShortPct: -1.25 };
    const fillModel = { slippagePips: 0.2, commissionPerMillion: 30 };
    const both = await portfolioFromLake(bucket, portfolio({ ...costs, pairs: [{ pair: "USD_JPY", strategies: [SMA], fillModel }, { pair: "EUR_USD", strategies: [SMA], fillModel }] }));
    let financing = 0;
    for (const pair of ["EUR_USD", "USD_JPY"]) {
      const single = await backtestFromLake(bucket, v.parse(BacktestRequest, { ...YEAR, ...costs, fillModel, pair, strategy: SMA }));
      expect(both.trades.filter((t) => t.pair === pair).map(strip)).toEqual(single.trades);
      expect(both.pairs.find((p) => p.pair === pair)).toMatchObject({ pnlAccountCents: single.pnlAccountCents, financingAccountCents: single.financingAccountCents });
      expect(single.financingAccountCents).not.toBe(0);
      financing += single.financingAccountCents;
    }
    expect(both.financingAccountCents).toBe(financing);
  });

  it("a limit that binds refuses with its reason, is never exceeded, and the same inputs give the same bytes", async () => {
    const request = portfolio({ limits: { maxOpenPositions: 1 } });
    const a = await portfolioFromLake(bucket, request);
    expect(a.refusals.max_open_positions).toBeGreaterThan(0);
    expect(a.tradeCount).toBeLessThan(280);
    expect(a.tradeCount).toBeGreaterThan(50);
    // Never two positions at once, across the pairs.
    const spans = [...a.trades].sort((x, y) => x.entryT - y.entryT);
    for (let i = 1; i < spans.length; i++) expect(spans[i]!.entryT).toBeGreaterThanOrEqual(spans[i - 1]!.exitT);
    const byPair = a.pairs.reduce((n, p) => n + (p.refusals.max_open_positions ?? 0), 0);
    expect(byPair).toBe(a.refusals.max_open_positions);
    // Each refusal recorded with its typed reason, at a time another pair's position was open.
    expect(a.refusalsListed).toHaveLength(a.refusals.max_open_positions as number);
    for (const r of a.refusalsListed) {
      expect(r.rejection).toEqual({ type: "max_open_positions", limit: 1, actual: 2 });
      expect(a.trades.some((t) => t.pair !== r.pair && t.entryT <= r.t && t.exitT > r.t)).toBe(true);
    }
    const b = await portfolioFromLake(bucket, request);
    expect(JSON.stringify(b)).toBe(JSON.stringify(a));
  });

  it("runs from the CLI shorthand and writes a report with every pair to drill into, the same bytes every time", async () => {
    const parsed = parsePortfolioArgs(["--pairs", "EUR_USD,USD_JPY", "--from", "2018-01-01", "--to", "2019-01-01", "--param", "timeframe=1h", "--param", "price=bid", "--limit", "maxOpenPositions=1", "--json"], "/tmp");
    if (!("portfolio" in parsed)) throw new Error("expected a portfolio");
    expect(parsed.portfolio.request).toEqual(portfolio({ pairs: [{ pair: "EUR_USD", strategies: [{ ...SMA, id: "sma-cross", params: { timeframe: "1h", price: "bid" } }] }, { pair: "USD_JPY", strategies: [{ ...SMA, id: "sma-cross", params: { timeframe: "1h", price: "bid" } }] }], limits: { maxOpenPositions: 1 } }));
    const out = await mkdtemp(path.join(tmpdir(), "fxrt-portfolio-"));
    try {
      const first = await runPortfolioCli({ ...parsed.portfolio, outDir: out }, bucket, () => {});
      expect(first.result.refusals.max_open_positions).toBeGreaterThan(0);
      const html = await readFile(first.report!.html, "utf8");
      expect(html).toContain("<h1>Portfolio · EUR_USD, USD_JPY · 2018-01-01 to 2018-12-31</h1>");
      expect(html).toMatch(/<summary>EUR_USD: \d+ trades/);
      expect(html).toMatch(/<summary>USD_JPY: \d+ trades/);
      expect(html).toContain("<td>max_open_positions</td>");
      expect(bucket.objects.has("reports/portfolio_EUR_USD-USD_JPY_2018-01-01_2019-01-01.html")).toBe(true);
      const json = await readFile(first.report!.json, "utf8");
      await runPortfolioCli({ ...parsed.portfolio, outDir: out }, bucket, () => {});
      expect(await readFile(first.report!.json, "utf8")).toBe(json);
      expect(await readFile(first.report!.html, "utf8")).toBe(html);
      for (const line of portfolioSummaryTable(first).split("\n")) if (!line.startsWith("  ")) expect(line.length).toBeLessThanOrEqual(80);
    } finally {
      await rm(out, { recursive: true, force: true });
    }
  });

  it("sweeps a strategy parameter and a limit over the portfolio: worker threads give the bytes one pass in this process gives", async () => {
    const grid = { "sma.fast": [10, 20], "limits.maxOpenPositions": [1, 2], "USD_JPY/sma.slow": [50] };
    const request = portfolio({ limits: {} });
    const sequential = await sweepPortfolio(request, grid, "pnl", inProcessRunner(bucket));
    const parallel = await sweepPortfolio(request, grid, "pnl", threadRunner(bucket, 2));
    expect(JSON.stringify(parallel)).toBe(JSON.stringify(sequential));
    expect(sequential.rows).toHaveLength(4);
    // The limit binds at 1 and not at 2: the fast=20 row with 2 open positions is the unlimited portfolio.
    const unlimited = sequential.rows.find((r) => r.params["sma.fast"] === 20 && r.params["limits.maxOpenPositions"] === 2);
    expect(unlimited?.tradeCount).toBe(280);
    expect(sequential.rows.find((r) => r.params["sma.fast"] === 20 && r.params["limits.maxOpenPositions"] === 1)!.tradeCount).toBeLessThan(280);
    // A typo or a value out of range is an invalid combination with its reason, never a default.
    expect(applyCombination(request, { "sma.fsat": 3 })).toMatchObject({ ok: false, reason: expect.stringMatching(/fsat/) });
    expect(applyCombination(request, { "limits.maxOpenPositons": 3 })).toMatchObject({ ok: false, reason: expect.stringMatching(/limits/) });
    expect(applyCombination(request, { "GBP_USD/sma.fast": 3 })).toMatchObject({ ok: false, reason: "GBP_USD/sma.fast: no strategy sma on GBP_USD in the portfolio" });

    const folds = { folds: 2, inSamplePct: 75, objective: "pnl" as const };
    const wf = await walkForwardPortfolio(request, { "sma.fast": [10, 20] }, folds, inProcessRunner(bucket));
    expect(JSON.stringify(await walkForwardPortfolio(request, { "sma.fast": [10, 20] }, folds, threadRunner(bucket, 2)))).toBe(JSON.stringify(wf));
    expect(wf.outOfSamplePnlAccountCents).toBe(wf.folds.reduce((n, f) => n + f.outOfSample.pnlAccountCents, 0));
  }, 120_000);

  it("a daily loss moves to REDUCING until the next 17:00 New York roll; a drawdown HALTS until the end", async () => {
    const daily = await portfolioFromLake(bucket, portfolio({ limits: { dailyLossLimit: 400, maxDrawdown: 1e9 } }));
    const changes = daily.tradingStates.changes;
    expect(changes.length).toBeGreaterThanOrEqual(2);
    for (let i = 0; i < changes.length; i++) {
      const c = changes[i]!;
      if (i % 2 === 0) {
        expect(c.state).toBe("REDUCING");
        expect(c.reason).toMatch(/^daily loss [\d.]+ over the limit 400$/);
      } else {
        const roll = bucketEnd("1D", fxDayStart(changes[i - 1]!.t));
        expect(c).toMatchObject({ state: "ACTIVE", reason: NEW_DAY_REASON });
        // At the first bar after the roll (a Friday's waits for Sunday's open).
        expect(c.t).toBeGreaterThanOrEqual(roll);
        expect(c.t).toBeLessThan(roll + 3 * 86_400_000);
      }
    }
    expect(daily.tradingStates.reducingMs).toBeGreaterThan(0);
    expect(daily.tradingStates.haltedMs).toBe(0);

    const halted = await portfolioFromLake(bucket, portfolio({ limits: { dailyLossLimit: 1e9, maxDrawdown: 1_500 } }));
    const [halt, ...after] = halted.tradingStates.changes;
    expect(halt).toMatchObject({ state: "HALTED", reason: expect.stringMatching(/^drawdown [\d.]+ over the limit 1500$/) });
    expect(after).toEqual([]);
    expect(halted.tradingStates.haltedMs).toBe((halted.lastMs as number) - halt!.t);
    // Nothing opens after the halt; what was open is closed by the end of the data (a strategy's close is refused too).
    expect(halted.trades.filter((t) => t.entryT > halt!.t)).toEqual([]);
    expect(halted.refusals.trading_halted).toBeGreaterThan(0);
    for (const t of halted.trades.filter((x) => x.exitT > halt!.t)) expect(t.exitReason).toBe("end");
  });
});

/** Minute bars on weekdays from `fromMs` to `toMs`: a random walk from `start`, or flat when `step` is 0. */
function walk(seed: number, start: number, step: number, fromMs: number, toMs: number): Candle[] {
  const rng = new SeededRandom(seed);
  const bars: Candle[] = [];
  let mid = start;
  for (let t = fromMs; t < toMs; t += 60_000) {
    if (isWeekendClosed(t)) continue;
    const o = mid;
    const c = (mid += Math.round(rng.normal() * step));
    bars.push({ t, bo: o, bh: Math.max(o, c) + (step ? 2 : 0), bl: Math.min(o, c) - (step ? 2 : 0), bc: c, ao: o, ah: o, al: o, ac: c, n: 0 });
  }
  return bars;
}

async function putPair(bucket: MemoryBucket, pair: string, bars: Candle[]): Promise<void> {
  await bucket.put(candleKey(pair, 2021), candlesToArrowIPC(bars));
  const partitions = [{ key: candleKey(pair, 2021), year: 2021, rows: bars.length, fromMs: bars[0]!.t, toMs: bars[bars.length - 1]!.t, sides: "bid" }];
  await bucket.put(candleManifestKey(pair), JSON.stringify({ pair, timeframe: "1m", partitions, source: "t", tz: "UTC", importedAt: new Date(0).toISOString() }));
}

function roundHalfAway(n: bigint, d: bigint): bigint {
  const q = n / d;
  const r = n % d;
  return 2n * (r < 0n ? -r : r) >= d ? q + (n < 0n ? -1n : 1n) : q;
}

describe("portfolio backtest of a cross", () => {
  const FROM = Date.UTC(2021, 0, 4);
  const TO = Date.UTC(2021, 1, 1);
  const cross = (pairs: { pair: string; strategies: unknown[] }[]) => ({ from: "2021-01-04", to: "2021-02-01", pairs });
  const strategy = { id: "fast", kind: "sma-cross", units: 50_000, params: { timeframe: "15m", fast: 5, slow: 20 } };

  it("values EUR_GBP's P&L in USD through GBP_USD's mid at the fill", async () => {
    const bucket = new MemoryBucket();
    await putPair(bucket, "EUR_GBP", walk(5, 86_000, 6, FROM, TO));
    // GBP_USD flat at 1.25000 bid: with the 1 pip spread its mid is 1.25005. EUR_USD values the EUR side of the exposure.
    await putPair(bucket, "GBP_USD", walk(6, 125_000, 0, FROM, TO));
    await putPair(bucket, "EUR_USD", walk(7, 107_500, 6, FROM, TO));
    const pairs = [{ pair: "EUR_GBP", strategies: [strategy] }, { pair: "GBP_USD", strategies: [] }, { pair: "EUR_USD", strategies: [] }];
    const r: PortfolioBacktestResult = await portfolioFromLake(bucket, v.parse(PortfolioBacktestRequest, cross(pairs)));
    expect(r.tradeCount).toBeGreaterThan(20);
    const eurgbp = r.pairs.find((p) => p.pair === "EUR_GBP")!;
    let micros = 0n;
    for (const t of r.trades) {
      // quote micros x (USD points per GBP) / 1e5 points / 1e6 micros x 100 cents
      expect(BigInt(t.pnlAccountCents)).toBe(roundHalfAway(BigInt(t.pnlQuoteMicros) * 125_005n, 1_000_000_000n));
      micros += BigInt(t.pnlQuoteMicros);
    }
    expect(BigInt(eurgbp.strategies[0]!.pnlQuoteMicros)).toBe(micros);
    expect(r.pairs.find((p) => p.pair === "GBP_USD")).toMatchObject({ tradeCount: 0, pnlAccountCents: 0 });
    // Long EUR_GBP is long EUR, short GBP: both valued in USD at every exposure point with a position.
    expect(r.exposure.some((p) => (p.perCurrency.EUR ?? 0) !== 0 && (p.perCurrency.GBP ?? 0) !== 0)).toBe(true);
  });

  it("is refused without the pairs that value its currencies, naming the pairs to add", () => {
    const out = v.safeParse(PortfolioBacktestRequest, cross([{ pair: "EUR_GBP", strategies: [strategy] }, { pair: "EUR_USD", strategies: [] }]));
    expect(out.success).toBe(false);
    expect(out.issues?.map((i) => i.message)).toEqual(["EUR_GBP needs a GBP/USD price to be valued in USD: add GBP_USD to pairs (it may have no strategies)"]);
    // In a GBP account the same pair needs EUR valued instead: EUR_GBP values it itself.
    const gbp = v.safeParse(PortfolioBacktestRequest, { ...cross([{ pair: "EUR_GBP", strategies: [strategy] }]), accountCurrency: "GBP" });
    expect(gbp.success).toBe(true);
  });

  it("reads --config of either shape and sweep flags, and refuses request flags beside --config", () => {
    const files: Record<string, string> = {
      "p.json": JSON.stringify(cross([{ pair: "EUR_GBP", strategies: [strategy] }, { pair: "GBP_USD", strategies: [] }, { pair: "EUR_USD", strategies: [] }])),
      "s.json": JSON.stringify({ pair: "EUR_USD", from: "2021-01-04", to: "2021-02-01", strategy: { kind: "sma-cross" } }),
      "bad.json": JSON.stringify(cross([{ pair: "EUR_GBP", strategies: [strategy] }])),
    };
    const read = (f: string) => files[f] ?? (() => { throw new Error("no such file"); })();
    files["sweep.json"] = JSON.stringify({ ...JSON.parse(files["p.json"] as string), sweep: { grid: { "fast.fast": [5, 6] } } });
    const fromFile = parsePortfolioArgs(["--config", "sweep.json", "--threads", "1"], "/tmp", read);
    expect("portfolio" in fromFile && [fromFile.portfolio.grid, fromFile.portfolio.objective]).toEqual([{ "fast.fast": [5, 6] }, "sharpe"]);
    const p = parsePortfolioArgs(["--config", "p.json"], "/tmp", read);
    expect("portfolio" in p && p.portfolio.request.pairs.map((x) => x.pair)).toEqual(["EUR_GBP", "GBP_USD", "EUR_USD"]);
    const s = parsePortfolioArgs(["--config", "s.json", "--no-report"], "/tmp", read);
    expect("single" in s && s.single.strategy).toMatchObject({ id: "sma-cross", units: 100_000 });
    expect(() => parsePortfolioArgs(["--config", "bad.json"], "/tmp", read)).toThrow(/add GBP_USD to pairs/);
    expect(() => parsePortfolioArgs(["--config", "p.json", "--from", "2021-01-01"], "/tmp", read)).toThrow(/--config holds the whole request: drop --from/);
    expect(() => parsePortfolioArgs(["--config", "nope.json"], "/tmp", read)).toThrow(/--config nope.json: no such file/);
    const short = ["--pairs", "EUR_USD", "--from", "2021-01-04", "--to", "2021-02-01"];
    const swept = parsePortfolioArgs([...short, "--sweep", "sma-cross.fast=5,10", "--sweep", "limits.maxOpenPositions=1,2", "--threads", "2"], "/tmp", read);
    expect("portfolio" in swept && [swept.portfolio.grid, swept.portfolio.threads]).toEqual([{ "sma-cross.fast": [5, 10], "limits.maxOpenPositions": [1, 2] }, 2]);
    expect(() => parsePortfolioArgs([...short, "--walk-forward", "2"], "/tmp", read)).toThrow(/--walk-forward needs a --sweep grid/);
    expect(() => parsePortfolioArgs([...short, "--threads", "0"], "/tmp", read)).toThrow(/--threads must be a whole number >= 1/);
    // Without --threads, a worker per 16 combinations at most, never more than the cores.
    expect("portfolio" in swept && parsePortfolioArgs(short, "/tmp", read)).toMatchObject({ portfolio: { threads: null } });
    expect([sweepThreads(8, 8), sweepThreads(32, 2), sweepThreads(100, 4), sweepThreads(47, 16)]).toEqual([1, 2, 4, 2]);
    expect(() => parsePortfolioArgs(["--config", "s.json", "--sweep", "fast=1,2"], "/tmp", read)).toThrow(/--config with one pair/);
    expect(() => parsePortfolioArgs(["--pairs", "EUR_USD", "--from", "2021-01-04", "--to", "2021-02-01", "--limit", "maxOpenPositon=1"], "/tmp", read)).toThrow(/limits/);
  });

  it("refuses a request with no strategy, a pair listed twice, or an unknown pair", () => {
    const messages = (body: unknown) => (v.safeParse(PortfolioBacktestRequest, body).issues ?? []).map((i) => i.message);
    expect(messages(cross([{ pair: "EUR_USD", strategies: [] }]))).toContain("at least one pair has a strategy");
    expect(messages(cross([{ pair: "EUR_USD", strategies: [strategy] }, { pair: "EUR_USD", strategies: [] }]))).toContain("each pair is listed once");
    expect(messages(cross([{ pair: "ABC_USD", strategies: [strategy] }]))).toContain("not a pair this runtime knows");
  });
});
