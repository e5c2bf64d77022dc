/**
 * `npm run backtest`: arguments, sweeps and walk-forward over a lake held in
 * memory, the --json summary and the 80-column table, the report files.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { jsonSummary, parseArgs, runCli, summaryTable, UsageError } from "../../scripts/backtest.ts";
import { MemoryBucket } from "../support/memory-bucket.ts";
import type { Candle } from "../../src/domain/candle.ts";
import { isWeekendClosed } from "../../src/domain/fx-time.ts";
import { SeededRandom } from "../../src/domain/random.ts";
import { candlesToArrowIPC } from "../../src/ingest/candle-arrow.ts";
import { candleKey, candleManifestKey } from "../../src/ingest/lake-manifest.ts";

/** Two months of seeded 1-minute bars for EUR_USD in the lake. */
async function lake(): Promise<MemoryBucket> {
  const rng = new SeededRandom(11);
  const bars: Candle[] = [];
  let mid = 115_000;
  for (let t = Date.UTC(2021, 0, 4); t < Date.UTC(2021, 2, 1); t += 60_000) {
    if (isWeekendClosed(t)) continue;
    const o = mid;
    const c = (mid += Math.round(rng.normal() * 7));
    bars.push({ t, bo: o, bh: Math.max(o, c) + 2, bl: Math.min(o, c) - 2, bc: c, ao: o, ah: Math.max(o, c) + 2, al: Math.min(o, c) - 2, ac: c, n: 0 });
  }
  const bucket = new MemoryBucket();
  await bucket.put(candleKey("EUR_USD", 2021), candlesToArrowIPC(bars));
  const partitions = [{ key: candleKey("EUR_USD", 2021), year: 2021, rows: bars.length, fromMs: bars[0]!.t, toMs: bars[bars.length - 1]!.t, sides: "bid" }];
  await bucket.put(candleManifestKey("EUR_USD"), JSON.stringify({ pair: "EUR_USD", timeframe: "1m", partitions, source: "t", tz: "UTC", importedAt: new Date(0).toISOString() }));
  return bucket;
}

const base = ["--pair", "EUR_USD", "--from", "2021-01-01", "--to", "2021-03-01"];

describe("backtest CLI arguments", () => {
  it("builds the request with the reference defaults and the options given", () => {
    const o = parseArgs([...base, "--param", "fast=10", "--spread-pips", "data", "--commission", "25", "--financing-long", "2.5", "--json", "--no-report"]);
    expect(o.request.strategy).toMatchObject({ id: "sma-cross", kind: "sma-cross", units: 100_000, params: { timeframe: "1h", fast: 10, slow: 50, price: "bid" } });
    expect(o.request.spreadPips).toBeNull();
    expect(o.request.fillModel.commissionPerMillion).toBe(25);
    expect(o.request.financingLongPct).toBe(2.5);
    expect(o.json).toBe(true);
    expect(o.outDir).toBeNull();
    expect(parseArgs([...base, "--sweep", "fast=5,10", "--sweep", "slow=30,40"]).grid).toEqual({ fast: [5, 10], slow: [30, 40] });
  });

  it("refuses bad arguments with a UsageError that says why", () => {
    const bad: [string[], RegExp][] = [
      [["--pair", "EUR_USD", "--from", "2021-01-01"], /--to is required/],
      [[...base, "--bogus"], /unknown argument/],
      [[...base, "--param", "fast"], /KEY=VALUE/],
      [[...base, "--param", "fast=80"], /fast must be shorter than slow/],
      [[...base, "--walk-forward", "3"], /needs a --sweep/],
      [[...base, "--objective", "luck"], /--objective/],
      [["--pair", "EUR_USD", "--from", "2021-03-01", "--to", "2021-01-01"], /from must be before to/],
      [[...base, "--units", "many"], /must be a number/],
    ];
    for (const [argv, why] of bad) expect(() => parseArgs(argv), argv.join(" ")).toThrow(why);
    expect(() => parseArgs([...base, "--bogus"])).toThrow(UsageError);
  });
});

describe("backtest CLI runs", () => {
  it("sweeps a grid in one pass, reruns the winner, and writes the report locally and to R2", async () => {
    const bucket = await lake();
    const out = await mkdtemp(path.join(tmpdir(), "fxrt-cli-"));
    try {
      const options = parseArgs([...base, "--sweep", "fast=5,10,60", "--sweep", "slow=30,50", "--objective", "pnl", "--out", out]);
      const labels = new Set<string>();
      const outcome = await runCli(options, bucket, (label) => labels.add(label));
      expect([...labels]).toEqual(["sweep", "backtest"]);
      const sweep = outcome.sweep!;
      // fast=60 is never shorter than slow: two invalid combinations, four run.
      expect(sweep.rows.length).toBe(4);
      expect(sweep.invalid.map((i) => i.params)).toEqual([{ fast: 60, slow: 30 }, { fast: 60, slow: 50 }]);
      const pnl = sweep.rows.map((r) => r.pnlAccountCents);
      expect(pnl).toEqual([...pnl].sort((a, b) => b - a));
      expect(outcome.result.pnlAccountCents).toBe(pnl[0]);
      expect(outcome.result.settings.strategy.params).toMatchObject(sweep.rows[0]!.params);

      const summary = jsonSummary(outcome);
      expect(summary).toMatchObject({ tradeCount: outcome.result.tradeCount, pnlQuote: outcome.result.pnlQuote, pnlAccount: outcome.result.pnlAccount });
      const table = summaryTable(outcome);
      // Every line fits 80 columns, except the report's file paths (as long as the folder's name).
      expect(table.split("\n").filter((line) => line.length > 80 && !line.startsWith("  "))).toEqual([]);
      expect(table).toContain("sweep by pnl");

      const report = outcome.report!;
      expect(report.r2Keys).toEqual(["reports/EUR_USD_sma-cross_2021-01-01_2021-03-01_sweep.json", "reports/EUR_USD_sma-cross_2021-01-01_2021-03-01_sweep.html"]);
      const local = await readFile(report.json, "utf8");
      expect(new TextDecoder().decode(bucket.objects.get(report.r2Keys[0]!))).toBe(local);
      expect(JSON.parse(local).sweep.rows.length).toBe(4);
      expect(await readFile(report.html, "utf8")).toContain("<html");
    } finally {
      await rm(out, { recursive: true, force: true });
    }
  });

  it("walks forward: each fold optimised in-sample, traded out-of-sample, totals add up", async () => {
    const bucket = await lake();
    const outcome = await runCli(parseArgs([...base, "--sweep", "fast=5,10", "--sweep", "slow=30", "--walk-forward", "2", "--in-sample", "60", "--no-report"]), bucket, () => {});
    const wf = outcome.walkForward!;
    expect(wf.folds.length).toBe(2);
    for (const f of wf.folds) {
      expect(f.inSampleToMs).toBe(f.outOfSampleFromMs);
      expect(f.outOfSampleToMs - f.inSampleFromMs).toBeGreaterThan(0);
    }
    expect(wf.folds[1]!.outOfSampleToMs).toBe(Date.UTC(2021, 2, 1));
    expect(wf.outOfSampleTradeCount).toBe(wf.folds.reduce((n, f) => n + f.outOfSample.tradeCount, 0));
    expect(wf.outOfSamplePnlAccountCents).toBe(wf.folds.reduce((n, f) => n + f.outOfSample.pnlAccountCents, 0));
  });

  it("fails clearly when the lake has no data for the pair", async () => {
    await expect(runCli(parseArgs(["--pair", "USD_JPY", "--from", "2021-01-01", "--to", "2021-02-01", "--no-report"]), await lake(), () => {})).rejects.toThrow(/no candles for USD_JPY/);
  });
});
