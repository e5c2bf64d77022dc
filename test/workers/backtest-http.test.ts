/**
 * POST /api/backtest/run inside the Worker platform: a Backtest actor reads
 * the data lake (R2) and runs the same engine as the CLI; the result must be
 * byte-identical to the pure engine run over the same candles in-process.
 */
import { env, runInDurableObject } from "cloudflare:test";
import * as v from "valibot";
import { beforeAll, describe, expect, it } from "vitest";
import { BacktestRequest, PortfolioBacktestRequest } from "../../schemas/backtest.ts";
import type { Candle } from "../../src/domain/candle.ts";
import { isWeekendClosed } from "../../src/domain/fx-time.ts";
import { getInstrument } from "../../src/domain/instruments.ts";
import { SeededRandom } from "../../src/domain/random.ts";
import { candlesToArrowIPC } from "../../src/ingest/candle-arrow.ts";
import { candleKey, candleManifestKey } from "../../src/ingest/lake-manifest.ts";
import { runBacktest } from "../../src/replay/backtest.ts";
import { backtestOptions, portfolioFromLake } from "../../src/replay/lake-run.ts";
import type { PortfolioBacktestResult } from "../../src/replay/portfolio-result.ts";
import { applyCombination, inProcessRunner, sweepPortfolio } from "../../src/replay/portfolio-sweep.ts";
import type { SweepResult } from "../../src/replay/sweep.ts";
import type { BacktestResult } from "../../src/replay/result.ts";
import { call, postJson } from "./helpers.ts";

const EUR_USD = getInstrument("EUR_USD");

/** A seeded random walk of 1-minute bid/ask bars over [fromMs, toMs), weekdays only. */
function syntheticBars(fromMs: number, toMs: number, seed: number, start = 110_000): Candle[] {
  const rng = new SeededRandom(seed);
  const bars: Candle[] = [];
  let mid = start;
  for (let t = fromMs; t < toMs; t += 60_000) {
    if (isWeekendClosed(t)) continue;
    const path = [0, 1, 2, 3].map(() => (mid += Math.round(rng.normal() * 8)));
    const [o, , , c] = path as [number, number, number, number];
    const h = Math.max(...path);
    const l = Math.min(...path);
    const spread = 8 + Math.floor(rng.next() * 6);
    bars.push({ t, bo: o, bh: h, bl: l, bc: c, ao: o + spread, ah: h + spread, al: l + spread, ac: c + spread, n: 4 });
  }
  return bars;
}

const FROM = Date.UTC(2021, 10, 1);
const TO = Date.UTC(2022, 1, 1);
let bars: Candle[] = [];

async function putLake(pair: string, pairBars: Candle[]): Promise<void> {
  const partitions = [];
  for (const year of [2021, 2022]) {
    const rows = pairBars.filter((b) => new Date(b.t).getUTCFullYear() === year);
    await env.DATA.put(candleKey(pair, year), candlesToArrowIPC(rows, 10_000));
    partitions.push({ key: candleKey(pair, year), year, rows: rows.length, fromMs: rows[0]!.t, toMs: rows[rows.length - 1]!.t, sides: "bidask" });
  }
  const manifest = { pair, timeframe: "1m", partitions, source: "synthetic", sources: ["synthetic"], tz: "UTC", importedAt: new Date(0).toISOString() };
  await env.DATA.put(candleManifestKey(pair), JSON.stringify(manifest));
}

beforeAll(async () => {
  bars = syntheticBars(FROM, TO, 7);
  await putLake("EUR_USD", bars);
  // USD_JPY at 110.000 (3 decimals): its P&L converts to USD through its own price.
  await putLake("USD_JPY", syntheticBars(FROM, TO, 8, 110_000));
});

interface Job {
  id: string;
  status: string;
  progress: { rowsRead: number; rowsTotal: number; fraction: number };
  error: { code: string; message: string } | null;
  summary: { tradeCount: number; pnlAccount: number } | null;
  links: { status: string; result: string };
}

/** Start a job and poll its status until the alarm that runs it has finished. */
async function runJob(body: unknown): Promise<Job> {
  const res = await postJson("/api/backtest/run", body);
  expect(res.status).toBe(202);
  let job = (await res.json()) as Job;
  expect(job.status).toBe("queued");
  expect(job.links.status).toBe(`/api/backtest/${job.id}`);
  for (let i = 0; i < 1200 && (job.status === "queued" || job.status === "running"); i++) {
    await new Promise((r) => setTimeout(r, 50));
    job = (await (await call(job.links.status)).json()) as Job;
  }
  return job;
}

describe("POST /api/backtest/run", () => {
  const body = {
    pair: "EUR_USD",
    from: "2021-11-01",
    to: "2022-02-01",
    strategy: { kind: "sma-cross", params: { timeframe: "15m", fast: 10, slow: 30, price: "mid" } },
    spreadPips: null,
    fillModel: { slippagePips: 0.2, commissionPerMillion: 25 },
    financingLongPct: 2.5,
    financingShortPct: -0.5,
  };

  it("runs in a Backtest actor over two R2 partitions and gives the engine's exact result", async () => {
    const job = await runJob(body);
    expect(job.error).toBeNull();
    expect(job.status).toBe("done");
    expect(job.progress.rowsRead).toBe(bars.length);
    expect(job.progress.fraction).toBe(1);

    const res = await call(job.links.result);
    expect(res.status).toBe(200);
    const text = await res.text();
    const expected = runBacktest(bars, backtestOptions(v.parse(BacktestRequest, body), EUR_USD));
    expect(text).toBe(JSON.stringify(expected));
    const result = JSON.parse(text) as BacktestResult;
    expect(result.bars).toBe(bars.length);
    expect(result.tradeCount).toBeGreaterThan(20);
    expect(result.financingAccountCents).not.toBe(0);
    expect(job.summary).toMatchObject({ tradeCount: result.tradeCount, pnlAccount: result.pnlAccount });
  });

  it("refuses a bad body with a typed 400 and starts nothing", async () => {
    const res = await postJson("/api/backtest/run", { ...body, to: "2021-01-01", strategy: { kind: "sma-cross", params: { fast: 60 } } });
    expect(res.status).toBe(400);
    const err = (await res.json()) as { error: { code: string; details: { message: string }[] } };
    expect(err.error.code).toBe("invalid_backtest");
    const messages = err.error.details.map((d) => d.message).join("; ");
    expect(messages).toContain("from must be before to");
    expect((await postJson("/api/backtest/run", { ...body, pair: "XXX_YYY" })).status).toBe(400);
  });

  it("reports a range without data as failed with no_data, and the result as 422", async () => {
    const job = await runJob({ ...body, from: "2015-01-01", to: "2016-01-01" });
    expect(job.status).toBe("failed");
    expect(job.error?.code).toBe("no_data");
    const res = await call(job.links.result);
    expect(res.status).toBe(422);
  });

  it("answers 404 for unknown ids and 409 while a job has not run", async () => {
    expect((await call("/api/backtest/00000000-0000-4000-8000-000000000000")).status).toBe(404);
    expect((await call("/api/backtest/not-a-uuid")).status).toBe(404);
    // A job stored but not yet run (as between POST and its alarm), made without an alarm so it stays so.
    const id = "11111111-1111-4111-8111-111111111111";
    await runInDurableObject(env.Backtest.getByName(id), (_instance, state) => {
      state.storage.sql.exec("INSERT INTO job (id, request, status, created_at) VALUES (?, ?, 'queued', 0)", id, JSON.stringify(body));
    });
    expect(((await (await call(`/api/backtest/${id}`)).json()) as Job).status).toBe("queued");
    const early = await call(`/api/backtest/${id}/result`);
    expect(early.status).toBe(409);
    expect(((await early.json()) as { error: { code: string } }).error.code).toBe("backtest_not_done");
  });
});

describe("POST /api/backtest/run with a portfolio", () => {
  const sma = { id: "sma", kind: "sma-cross", units: 100_000, params: { timeframe: "15m", fast: 10, slow: 30, price: "mid" } };
  const body = { from: "2021-11-01", to: "2022-01-01", pairs: [{ pair: "EUR_USD", strategies: [sma] }, { pair: "USD_JPY", strategies: [sma] }], limits: { maxOpenPositions: 1 }, spreadPips: null };

  it("runs the portfolio in a Backtest actor and gives the engine's exact result, the limit at work", async () => {
    const job = await runJob(body);
    expect(job.error).toBeNull();
    expect(job.status).toBe("done");
    const text = await (await call(job.links.result)).text();
    const expected = await portfolioFromLake(env.DATA, v.parse(PortfolioBacktestRequest, body));
    expect(text).toBe(JSON.stringify(expected));
    expect(expected.refusals.max_open_positions).toBeGreaterThan(0);
    expect(expected.tradeCount).toBeGreaterThan(10);
    expect(job.summary).toMatchObject({ kind: "portfolio", tradeCount: expected.tradeCount, pnlAccount: expected.pnlAccount });
  });

  it("spreads a sweep over Backtest actors and gathers exactly what one pass in one process gives", async () => {
    const grid = { "sma.fast": [5, 10], "limits.maxOpenPositions": [1, 2], "sma.slow": [30, 3] };
    const job = await runJob({ ...body, sweep: { grid, objective: "pnl" } });
    expect(job.error).toBeNull();
    expect(job.status).toBe("done");
    const got = JSON.parse(await (await call(job.links.result)).text()) as { kind: string; sweep: SweepResult; best: PortfolioBacktestResult };
    const request = v.parse(PortfolioBacktestRequest, body);
    const sequential = await sweepPortfolio(request, grid, "pnl", inProcessRunner(env.DATA));
    expect(JSON.stringify(got.sweep)).toBe(JSON.stringify(sequential));
    // slow 3 under fast 5 or 10 is refused by the strategy's own rule: listed, never run.
    expect(sequential.rows).toHaveLength(4);
    expect(sequential.invalid).toHaveLength(4);
    const best = sequential.rows[0]!;
    const winner = applyCombination(request, best.params);
    if (!winner.ok) throw new Error(winner.reason);
    expect(JSON.stringify(got.best)).toBe(JSON.stringify(await portfolioFromLake(env.DATA, winner.request)));
    expect(job.summary).toMatchObject({ kind: "portfolio-sweep", combinations: 4, invalid: 4, best: { params: best.params } });
  });

  it("refuses a cross without the pairs that value it, and a sweep too large, with a typed 400", async () => {
    const res = await postJson("/api/backtest/run", { ...body, pairs: [{ pair: "EUR_GBP", strategies: [sma] }, { pair: "EUR_USD", strategies: [] }] });
    expect(res.status).toBe(400);
    const err = (await res.json()) as { error: { code: string; details: { message: string }[] } };
    expect(err.error.code).toBe("invalid_backtest");
    expect(err.error.details.map((d) => d.message)).toContain("EUR_GBP needs a GBP/USD price to be valued in USD: add GBP_USD to pairs (it may have no strategies)");
    const big = await postJson("/api/backtest/run", { ...body, sweep: { grid: { "sma.fast": Array.from({ length: 30 }, (_, i) => i + 2), "sma.slow": Array.from({ length: 20 }, (_, i) => i + 40) } } });
    expect(big.status).toBe(400);
  });
});
