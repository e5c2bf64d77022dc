/**
 * A portfolio backtest is what runs live: two months of real EUR_USD and
 * USD_JPY history replayed as ticks through the pair actors and the
 * coordinator, with a portfolio limit that binds (one open position across
 * the pairs), gives the backtest's trades, refusals and P&L exactly.
 *
 * The replay sends both pairs on one clock, an hour of one pair at a time in
 * symbol order (the backtest's tie rule): sma-cross on 1h candles only acts
 * at an hour's first tick, so every decision meets the portfolio in the
 * backtest's order.
 */
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import * as v from "valibot";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PortfolioBacktestRequest } from "../../schemas/backtest.ts";
import type { WireTick } from "../../schemas/tick.ts";
import { importFile } from "../../scripts/import.ts";
import { emptyReadStats, parseArgs as replayArgs, postTicks, readLakeTicks } from "../../scripts/replay.ts";
import { startRuntime, type Runtime } from "../../scripts/runtime.ts";
import { okApi } from "../support/admin-api.ts";
import type { LakeBucket } from "../../src/replay/lake-reader.ts";
import { portfolioOptions, replayPortfolio } from "../../src/replay/lake-run.ts";
import { PortfolioBacktester } from "../../src/replay/portfolio-backtester.ts";

const DATA = path.resolve(import.meta.dirname, "../../../shared/data/m1_histdata");
const FILES = [
  { pair: "EUR_USD", file: path.join(DATA, "DAT_ASCII_EURUSD_M1_2018.csv.gz") },
  { pair: "USD_JPY", file: path.join(DATA, "DAT_ASCII_USDJPY_M1_2018.csv.gz") },
];
const present = FILES.every((f) => existsSync(f.file));
if (!present) console.warn(`portfolio-parity: skipped, no histdata files in ${DATA}`);

const KEY = "portfolio-parity-admin-key";
const FROM = "2018-01-01";
const TO = "2018-03-01";
const HOUR_MS = 3_600_000;
const STRATEGY = { id: "sma", kind: "sma-cross", units: 100_000, params: { timeframe: "1h", fast: 20, slow: 50, price: "bid" } };
/** One open position across the pairs binds; the rest never do. */
const LIMITS = { maxOpenPositions: 1, maxGrossExposure: 1e9, maxNetExposurePerCurrency: 1e9, maxExposurePerPair: 1e9, dailyLossLimit: 1e9, maxDrawdown: 1e9 };

let stateDir: string;
let runtime: Runtime;

const api = okApi(() => runtime.url, KEY);

describe.skipIf(!present)("portfolio parity: backtest = live replay through the pairs and the coordinator", () => {
  beforeAll(async () => {
    stateDir = await mkdtemp(path.join(tmpdir(), "fxrt-portfolio-parity-"));
    for (const { pair, file } of FILES) await importFile({ file, pair, tz: "EST", stateDir, log: () => {} });
    runtime = await startRuntime({
      port: 0,
      stateDir,
      vars: { FEED: "off", PAIRS: FILES.map((f) => f.pair).join(","), ADMIN_API_KEY: KEY, CANDLE_CLOSE_GRACE_MS: "60000" },
      rateLimitPerMinute: 1_000_000,
    });
  }, 120_000);

  afterAll(async () => {
    await runtime?.stop();
    await rm(stateDir, { recursive: true, force: true });
  });

  it("gives the same trades, the same refusals and the same P&L, with the limit binding", async () => {
    const bucket = (await runtime.miniflare.getR2Bucket("DATA")) as unknown as LakeBucket;
    const request = v.parse(PortfolioBacktestRequest, { from: FROM, to: TO, pairs: FILES.map((f) => ({ pair: f.pair, strategies: [STRATEGY] })), limits: LIMITS });
    const [backtest] = await replayPortfolio(bucket, request, () => [new PortfolioBacktester(portfolioOptions(request))]);
    if (!backtest) throw new Error("no result");
    const refused = backtest.refusalsListed.map((r) => ({ pair: r.pair, time: r.t, type: r.rejection.type }));
    expect(backtest.refusals.max_open_positions).toBeGreaterThan(5);
    expect(backtest.tradeCount).toBeGreaterThan(10);

    // Live: the same limits, strategies and wide per-pair risk; then both pairs' ticks on one clock.
    await api("PUT", "/api/admin/limits", LIMITS);
    await api("POST", "/api/admin/kill-switch", { action: "resume", reason: "portfolio parity" });
    for (const { pair } of FILES) {
      await api("PUT", `/api/admin/pairs/${pair}/risk`, { limits: { maxPositionUnits: 1_000_000, stopLossRequired: "never", maxOrdersPerMinute: 1_000, weekendGuard: false } });
      await api("PUT", `/api/admin/pairs/${pair}/strategies`, { strategies: [STRATEGY] });
    }
    const hours = new Map<number, Map<string, WireTick[]>>();
    for (const { pair } of FILES) {
      const options = replayArgs(["--lake", "--pair", pair, "--from", FROM, "--to", TO, "--url", runtime.url, "--api-key", KEY]);
      for await (const tick of readLakeTicks(options, emptyReadStats(), bucket)) {
        const hour = Math.floor(tick.ts / HOUR_MS);
        let block = hours.get(hour);
        if (!block) hours.set(hour, (block = new Map()));
        let ticks = block.get(pair);
        if (!ticks) block.set(pair, (ticks = []));
        ticks.push(tick);
      }
    }
    // Reading the ticks held the event loop for seconds, past workerd's 5 s keep-alive: let fetch see
    // the idle connections it closed meanwhile before reusing one ("other side closed").
    await new Promise((r) => setTimeout(r, 50));
    let sent = 0;
    for (const hour of [...hours.keys()].sort((a, b) => a - b)) {
      const block = hours.get(hour) as Map<string, WireTick[]>;
      for (const { pair } of FILES) {
        const ticks = block.get(pair) ?? [];
        for (let i = 0; i < ticks.length; i += 480) {
          const result = await postTicks(runtime.url, pair, ticks.slice(i, i + 480), KEY);
          expect(result.rejectedByType).toEqual({});
          sent += Math.min(480, ticks.length - i);
        }
      }
    }
    expect(sent).toBe(backtest.bars * 4);
    // The backtest closes what is open at each pair's last close: live, strategies off and a flatten at the last quotes.
    for (const { pair } of FILES) await api("PUT", `/api/admin/pairs/${pair}/strategies`, { strategies: [] });
    await api("POST", "/api/admin/kill-switch", { action: "flatten", reason: "portfolio parity end" });

    let cents = 0;
    const liveRefused: { pair: string; time: number; type: string }[] = [];
    for (const { pair } of FILES) {
      const positions = ((await api("GET", `/api/pairs/${pair}/positions?limit=1000`)) as { positions: { side: string; openedAt: number; closedAt?: number; entryPrice: number; realisedPnlQuote: number; realisedPnlAccount: number; status: string }[] }).positions;
      const live = positions.filter((p) => p.status === "CLOSED").sort((x, y) => x.openedAt - y.openedAt).map((p) => ({ side: p.side, entryT: p.openedAt, entryPrice: p.entryPrice, exitT: p.closedAt, pnlQuoteMicros: Math.round(p.realisedPnlQuote * 1e6), pnlAccountCents: Math.round(p.realisedPnlAccount * 100) }));
      const mine = backtest.trades.filter((t) => t.pair === pair);
      // A trade the end of data closed: the actor's flatten closes it after the last tick, at the same price.
      const expected = mine.map((t) => ({ side: t.side, entryT: t.entryT, entryPrice: t.entryPrice, exitT: t.exitReason === "end" ? live.find((l) => l.entryT === t.entryT)?.exitT : t.exitT, pnlQuoteMicros: t.pnlQuoteMicros, pnlAccountCents: t.pnlAccountCents }));
      expect(live).toEqual(expected);
      cents += live.reduce((s, t) => s + t.pnlAccountCents, 0);
      const rejections = ((await api("GET", `/api/pairs/${pair}/rejections?limit=1000`)) as { rejections: { time: number; rejection: { type: string } }[] }).rejections;
      for (const r of rejections) liveRefused.push({ pair, time: r.time, type: r.rejection.type });
    }
    expect(cents).toBe(backtest.pnlAccountCents);
    // At the same tick: the live trading clock steps a millisecond per record to keep them in order.
    const atTick = (list: { pair: string; time: number; type: string }[]) => list.map((r) => ({ ...r, time: Math.floor(r.time / 1000) * 1000 })).sort((a, b) => a.time - b.time || (a.pair < b.pair ? -1 : 1));
    expect(atTick(liveRefused)).toEqual(atTick(refused));
    console.log(`portfolio parity EUR_USD + USD_JPY ${FROM}..${TO}: ${backtest.tradeCount} trades, ${refused.length} refusals (max_open_positions), ${backtest.pnlAccount} USD live and backtest`);
  }, 600_000);
});
