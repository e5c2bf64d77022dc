/**
 * Three ways in, one result: on the same data-lake candles (2018 histdata,
 * imported with --tz EST), the CLI backtest, the HTTP backtest run by a
 * Backtest actor inside the runtime, and a live replay of the same bars as
 * ticks through the pair actor (strategy, per-pair risk, coordinator, paper
 * broker) give the same trades and P&L to the cent: the reference sma-cross
 * on EUR_USD, the multi-timeframe trend-pullback (4h trend, 15m entries,
 * stops and targets) on USD_JPY, limit-scaler's expiring and withdrawn limit
 * entries, and range-breakout's decisions on every tick.
 */
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseArgs as backtestArgs, runCli } from "../../scripts/backtest.ts";
import { importFile } from "../../scripts/import.ts";
import { parseArgs as replayArgs, replay, postTicks } from "../../scripts/replay.ts";
import { startRuntime, type Runtime } from "../../scripts/runtime.ts";
import { okApi } from "../support/admin-api.ts";
import type { BacktestResult } from "../../src/replay/result.ts";
import type { LakeBucket } from "../../src/replay/lake-reader.ts";
import type { DataBucket } from "../../scripts/data-bucket.ts";

const DATA = path.resolve(import.meta.dirname, "../../../shared/data/m1_histdata");
const FILES = [
  { pair: "EUR_USD", file: path.join(DATA, "DAT_ASCII_EURUSD_M1_2018.csv.gz") },
  // EUR/USD's 2019 bars imported as GBP_USD: a pair the runtime has seen no ticks of, so the live
  // strategy starts as cold as the backtest (a pair with stored candles warms a new strategy up).
  { pair: "GBP_USD", file: path.join(DATA, "DAT_ASCII_EURUSD_M1_2019.csv.gz") },
  { pair: "USD_JPY", file: path.join(DATA, "DAT_ASCII_USDJPY_M1_2018.csv.gz") },
  // Again as USD_CHF (its P&L converts through its own price), for the strategy that decides on every tick.
  { pair: "USD_CHF", file: path.join(DATA, "DAT_ASCII_EURUSD_M1_2019.csv.gz") },
];
const present = FILES.every((f) => existsSync(f.file));
if (!present) console.warn(`backtest-parity: skipped, no histdata files in ${DATA}`);

const KEY = "parity-admin-key";

let stateDir: string;
let runtime: Runtime;
let bucket: DataBucket & LakeBucket;

const api = okApi(() => runtime.url, KEY);

describe.skipIf(!present)("backtest parity: CLI = HTTP = live replay through the pair actor", () => {
  beforeAll(async () => {
    stateDir = await mkdtemp(path.join(tmpdir(), "fxrt-parity-"));
    for (const { pair, file } of FILES) await importFile({ file, pair, tz: "EST", stateDir, log: () => {} });
    runtime = await startRuntime({
      port: 0,
      stateDir,
      // A minute of grace: the candle left open when the replay ends must not close mid-test.
      vars: { FEED: "off", PAIRS: "EUR_USD,USD_JPY,GBP_USD,USD_CHF", ADMIN_API_KEY: KEY, CANDLE_CLOSE_GRACE_MS: "60000" },
      rateLimitPerMinute: 1_000_000,
    });
    // The runtime's own R2: what it serves is what the CLI reads.
    bucket = (await runtime.miniflare.getR2Bucket("DATA")) as unknown as DataBucket & LakeBucket;
  }, 120_000);

  afterAll(async () => {
    await runtime?.stop();
    await rm(stateDir, { recursive: true, force: true });
  });

  const cases = [
    { pair: "EUR_USD", from: "2018-01-01", to: "2018-03-01", strategy: { id: "sma-cross", kind: "sma-cross", params: { timeframe: "1h", fast: 20, slow: 50, price: "bid" } }, cliArgs: [] as string[] },
    {
      pair: "USD_JPY", from: "2018-01-01", to: "2018-03-01",
      strategy: { id: "trend-pullback", kind: "trend-pullback", params: { trendTimeframe: "4h", entryTimeframe: "15m" } },
      cliArgs: ["--strategy", "trend-pullback", "--param", "trendTimeframe=4h", "--param", "entryTimeframe=15m"],
    },
    // Limit entries that rest and expire, and scaling in by position.
    { pair: "GBP_USD", from: "2019-01-01", to: "2019-03-01", strategy: { id: "limit-scaler", kind: "limit-scaler", params: {} }, cliArgs: ["--strategy", "limit-scaler"] },
    // Decisions on ticks (onTick), filled at the tick that made them: the replay's ticks are the backtest's bar path.
    { pair: "USD_CHF", from: "2019-01-01", to: "2019-02-01", strategy: { id: "range-breakout", kind: "range-breakout", params: {} }, cliArgs: ["--strategy", "range-breakout"] },
  ];

  it.each(cases)("$strategy.kind on $pair from $from: the same trades and P&L three ways", async ({ pair, from: FROM, to: TO, strategy, cliArgs }) => {
    // 1. The CLI (npm run backtest).
    const cli = await runCli(backtestArgs(["--pair", pair, "--from", FROM, "--to", TO, "--no-report", ...cliArgs]), bucket, () => {});
    const a = cli.result;
    expect(a.tradeCount).toBeGreaterThan(10);
    // The in-process backtest held the event loop for seconds, past workerd's 5 s keep-alive: let
    // fetch see the idle connections it closed meanwhile before reusing one ("other side closed").
    await new Promise((r) => setTimeout(r, 50));

    // 2. HTTP: a Backtest actor in the runtime.
    const started = (await api("POST", "/api/backtest/run", { pair, from: FROM, to: TO, strategy: { kind: strategy.kind, params: strategy.params } })) as { id: string; status: string };
    let status = started.status;
    for (let i = 0; i < 600 && (status === "queued" || status === "running"); i++) {
      await new Promise((r) => setTimeout(r, 50));
      status = ((await api("GET", `/api/backtest/${started.id}`)) as { status: string }).status;
    }
    expect(status).toBe("done");
    const b = (await api("GET", `/api/backtest/${started.id}/result`)) as BacktestResult;
    const [ja, jb] = [JSON.stringify(a), JSON.stringify(b)];
    let at = 0;
    while (at < ja.length && ja[at] === jb[at]) at++;
    // On a difference, show where rather than two huge strings.
    expect(jb.slice(Math.max(0, at - 80), at + 80)).toBe(ja.slice(Math.max(0, at - 80), at + 80));

    // 3. Live: the same bars as ticks into the pair, with the strategy and wide limits.
    // A backtest has no portfolio limits yet: none that could bind here live either (limit-scaler holds up to 300,000).
    await api("PUT", "/api/admin/limits", { dailyLossLimit: 1e9, maxDrawdown: 1e9, maxExposurePerPair: 1e9, maxGrossExposure: 1e9, maxNetExposurePerCurrency: 1e9 });
    await api("POST", "/api/admin/kill-switch", { action: "resume", reason: "parity test" });
    await api("PUT", `/api/admin/pairs/${pair}/risk`, { limits: { maxPositionUnits: 1_000_000, stopLossRequired: "never", maxOrdersPerMinute: 1_000, weekendGuard: false } });
    await api("PUT", `/api/admin/pairs/${pair}/strategies`, { strategies: [{ ...strategy, units: 100_000 }] });
    const options = replayArgs(["--lake", "--pair", pair, "--from", FROM, "--to", TO, "--speed", "max", "--batch", "499", "--url", runtime.url, "--api-key", KEY]);
    const summary = await replay(
      options,
      { send: (ticks) => postTicks(options.url, pair, ticks, KEY), nowMs: () => performance.now(), sleepMs: async () => {}, log: () => {}, stopped: () => false },
      bucket,
    );
    expect(summary.rejected).toBe(0);
    expect(summary.sent).toBe(a.bars * 4);
    // The backtest closes what is open at the last close: the actor is flattened at its last quote, the same price.
    // Strategies off first, so the candle left open cannot trade after that.
    await api("PUT", `/api/admin/pairs/${pair}/strategies`, { strategies: [] });
    await api("POST", "/api/admin/kill-switch", { action: "flatten", reason: "parity test end" });
    const positions = ((await api("GET", `/api/pairs/${pair}/positions?limit=1000`)) as { positions: { strategyId: string; side: string; openedAt: number; closedAt?: number; entryPrice: number; realisedPnlQuote: number; realisedPnlAccount: number; status: string }[] }).positions;
    // This case's strategy only: an earlier case may have traded the same pair.
    const closed = positions.filter((p) => p.status === "CLOSED" && p.strategyId === strategy.id).sort((x, y) => x.openedAt - y.openedAt);
    const live = closed.map((p) => ({ side: p.side, entryT: p.openedAt, entryPrice: p.entryPrice, exitT: p.closedAt, pnlQuoteMicros: Math.round(p.realisedPnlQuote * 1e6), pnlAccountCents: Math.round(p.realisedPnlAccount * 100) }));
    // The last trade's exit: the backtest's end of data, the actor's flatten after it.
    const backtest = a.trades.map((t, i) => ({ side: t.side, entryT: t.entryT, entryPrice: t.entryPrice, exitT: i === a.trades.length - 1 && t.exitReason === "end" ? live[i]?.exitT : t.exitT, pnlQuoteMicros: t.pnlQuoteMicros, pnlAccountCents: t.pnlAccountCents }));
    expect(live).toEqual(backtest);
    expect(live.reduce((s, t) => s + t.pnlAccountCents, 0)).toBe(a.pnlAccountCents);
    if (strategy.kind === "limit-scaler") {
      // Entries it withdrew (ctx.cancel) were cancelled at the paper broker live, as the backtest dropped them.
      const orders = ((await api("GET", `/api/pairs/${pair}/orders?limit=1000`)) as { orders: { strategyId: string; status: string; rejectReason?: string }[] }).orders;
      expect(orders.filter((o) => o.strategyId === strategy.id && o.status === "rejected" && o.rejectReason === "CLIENT_REQUEST").length).toBeGreaterThan(0);
    }
    console.log(`parity ${strategy.kind} ${pair} ${FROM}..${TO}: ${a.tradeCount} trades, ${a.pnlAccount} USD by CLI, HTTP and live replay (${summary.sent} ticks in ${summary.requests} requests)`);
  }, 240_000);
});
