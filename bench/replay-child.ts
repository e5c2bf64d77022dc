/**
 * One replay measurement in a fresh process (so peak memory is the replay's
 * own), run by bench/replay-throughput.ts:
 *
 *   node --import tsx bench/replay-child.ts <lakeDir> <pair> <fromMs> <toMs> <mode>
 *
 * The lake directory holds R2 objects as files (key = relative path); the
 * bucket reads them whole or by byte range, as R2 does. Modes:
 * - full: the backtest as the CLI runs it (read + decode + engine), peak memory sampled per batch;
 * - live: the same with a forced garbage collection before each sample (run with --expose-gc): the
 *   memory the replay really holds, without released partitions the collector has not freed yet;
 * - decode: read + decode every record batch, no engine;
 * - compute: decode everything first, then time only the engine over the columns;
 * - baseline: decode everything first, then time a plain loop over the same typed arrays;
 * - merge: <pair> is a comma-separated list; every pair's bars on one clock (bar-merge.ts), a plain
 *   running sum as the consumer, a forced collection before each sample (run with --expose-gc): the
 *   data path of a portfolio replay and the memory it holds.
 * Portfolio modes (<pair> a comma-separated list; sma-cross on every pair under the default
 * portfolio limits, as `npm run backtest -- --pairs ... --limit ...` runs it):
 * - portfolio: the portfolio backtest from the lake (read + decode + merge + engine), a forced
 *   collection before each sample (--expose-gc): bars/s and the memory it holds;
 * - portfolio-compute: every pair decoded first, then only merge + engine timed;
 * - portfolio-merge: every pair decoded first, then only the merge with a running sum (the floor of compute);
 * - sweep <threads>[:<combinations>]: a grid of sma-cross parameter combinations over the portfolio, in
 *   this process in one pass (threads 0) or on that many worker threads: combinations/s.
 * Prints one JSON object.
 */
import { open, stat } from "node:fs/promises";
import path from "node:path";
import * as v from "valibot";
import { BacktestRequest } from "../schemas/backtest.ts";
import { getInstrument } from "../src/domain/instruments.ts";
import type { CandleColumns } from "../src/ingest/candle-arrow.ts";
import { Backtester } from "../src/replay/backtester.ts";
import { backtestOptions, backtestFromLake } from "../src/replay/lake-run.ts";
import { emptyBar, lakeBatches, loadCandleManifest, readRow, type LakeBucket } from "../src/replay/lake-reader.ts";
import { candleBatches, mergeBars, type MergeBatch } from "../src/replay/bar-merge.ts";
import { PortfolioBacktestRequest } from "../schemas/backtest.ts";
import { portfolioOptions, replayPortfolio } from "../src/replay/lake-run.ts";
import { PortfolioBacktester } from "../src/replay/portfolio-backtester.ts";
import { inProcessRunner, sweepPortfolio } from "../src/replay/portfolio-sweep.ts";
import { threadRunner } from "../scripts/sweep-pool.ts";

const [dir, pair, fromText, toText, mode, extra] = process.argv.slice(2) as [string, string, string, string, string, string | undefined];
/** Combinations of the sweep mode: sma-cross fast 10, 12, ... 24. */
const SWEEP_COMBOS = 8;
const fromMs = Number(fromText);
const toMs = Number(toText);

/** The lake on disk, read as R2 is read: whole objects, or byte ranges of them. */
const bucket: LakeBucket = {
  async get(key, options) {
    let file;
    try {
      file = await open(path.join(dir, key));
    } catch {
      return null;
    }
    try {
      const size = (await file.stat()).size;
      const { offset, length } = options?.range ?? { offset: 0, length: size };
      const bytes = new Uint8Array(length);
      const { bytesRead } = await file.read(bytes, 0, length, offset);
      if (bytesRead !== length) throw new RangeError(`${key}: ${bytesRead} of ${length} bytes at ${offset}`);
      return { arrayBuffer: async () => bytes.buffer };
    } finally {
      await file.close();
    }
  },
  async head(key) {
    try {
      return { size: (await stat(path.join(dir, key))).size };
    } catch {
      return null;
    }
  },
};

/** The backtest the engine modes run (merge names several pairs: it runs none). */
const request = () => v.parse(BacktestRequest, {
  pair,
  from: new Date(fromMs).toISOString(),
  to: new Date(toMs).toISOString(),
  strategy: { kind: "sma-cross" },
});

/** The portfolio the portfolio modes run: sma-cross (100,000 units) on every pair, the default portfolio limits. */
const portfolio = () =>
  v.parse(PortfolioBacktestRequest, {
    from: new Date(fromMs).toISOString(),
    to: new Date(toMs).toISOString(),
    pairs: pair.split(",").map((p) => ({ pair: p, strategies: [{ id: "sma", kind: "sma-cross", units: 100_000 }] })),
    limits: {},
  });

/** Every pair's batches decoded into memory, replayable as merge input any number of times. */
async function decodedPairs(): Promise<{ pair: string; batches: CandleColumns[] }[]> {
  const out = [];
  for (const p of pair.split(",")) {
    const batches: CandleColumns[] = [];
    for await (const { cols } of lakeBatches(bucket, await loadCandleManifest(bucket, p), fromMs, toMs)) batches.push(cols);
    out.push({ pair: p, batches });
  }
  return out;
}

function fromMemory(batches: readonly CandleColumns[]): AsyncIterator<MergeBatch> {
  return candleBatches(
    (async function* () {
      for (const cols of batches) yield { cols, start: 0, end: cols.length };
    })(),
  );
}

let peakHeapMB = 0;
let peakRssMB = 0;
function sample(): void {
  const m = process.memoryUsage();
  // What a Worker isolate would hold: the JS heap plus array buffers (the partition bytes).
  peakHeapMB = Math.max(peakHeapMB, (m.heapUsed + m.arrayBuffers) / 2 ** 20);
  peakRssMB = Math.max(peakRssMB, m.rss / 2 ** 20);
}

async function decodeAll(): Promise<CandleColumns[]> {
  const manifest = await loadCandleManifest(bucket, pair);
  const out: CandleColumns[] = [];
  for await (const { cols } of lakeBatches(bucket, manifest, fromMs, toMs)) out.push(cols);
  return out;
}

async function main(): Promise<Record<string, unknown>> {
  sample();
  if (mode === "merge") {
    const gc = (globalThis as { gc?: () => void }).gc;
    if (!gc) throw new Error("mode merge needs node --expose-gc");
    const pairs = pair.split(",");
    const streams = await Promise.all(pairs.map(async (p) => ({ pair: p, batches: candleBatches(lakeBatches(bucket, await loadCandleManifest(bucket, p), fromMs, toMs)) })));
    const started = performance.now();
    let bars = 0;
    let sum = 0;
    await mergeBars(streams, (_pair, bar) => {
      sum += bar.bc;
      if (++bars % 1_000_000 === 0) {
        gc();
        sample();
      }
    });
    const ms = performance.now() - started;
    gc();
    sample();
    return { mode, ms, bars, check: sum, peakHeapMB, peakRssMB };
  }
  if (mode === "portfolio") {
    const gc = (globalThis as { gc?: () => void }).gc;
    if (!gc) throw new Error("mode portfolio needs node --expose-gc");
    const request = portfolio();
    const started = performance.now();
    const [result] = await replayPortfolio(bucket, request, () => [new PortfolioBacktester(portfolioOptions(request))], () => {
      gc();
      sample();
    });
    const ms = performance.now() - started;
    gc();
    sample();
    return { mode, ms, bars: result?.bars, trades: result?.tradeCount, pnlAccount: result?.pnlAccount, refusals: result?.refusals, peakHeapMB, peakRssMB };
  }
  if (mode === "portfolio-compute" || mode === "portfolio-merge") {
    const decoded = await decodedPairs();
    const request = portfolio();
    const engine = mode === "portfolio-compute" ? new PortfolioBacktester(portfolioOptions(request)) : null;
    let bars = 0;
    let sum = 0;
    const started = performance.now();
    await mergeBars(
      decoded.map((d) => ({ pair: d.pair, batches: fromMemory(d.batches) })),
      engine
        ? (p, bar) => {
            bars++;
            engine.onBar(p, bar, bar.t + 60_000);
          }
        : (_p, bar) => {
            bars++;
            sum += bar.bc;
          },
    );
    const result = engine?.finish();
    return { mode, ms: performance.now() - started, bars, check: sum, trades: result?.tradeCount, pnlAccount: result?.pnlAccount };
  }
  if (mode === "sweep") {
    // <threads>[:<combinations>] (threads 0: in this process, one pass), combinations a multiple of 4: fast 10, 12, ... x slow 40, 50, 60, 70.
    const [threadsText, combosText] = (extra ?? "1").split(":");
    const threads = Number(threadsText);
    const combos = Number(combosText ?? SWEEP_COMBOS);
    const grid = { "sma.fast": Array.from({ length: combos / 4 }, (_, i) => 10 + 2 * i), "sma.slow": [40, 50, 60, 70] };
    const started = performance.now();
    const result = await sweepPortfolio(portfolio(), grid, "pnl", threads === 0 ? inProcessRunner(bucket) : threadRunner(bucket, threads));
    const ms = performance.now() - started;
    return { mode, ms, combos: result.rows.length, threads, best: result.rows[0]?.params, bestPnl: result.rows[0]?.pnlAccount };
  }
  if (mode === "full" || mode === "live") {
    const gc = (globalThis as { gc?: () => void }).gc;
    if (mode === "live" && !gc) throw new Error("mode live needs node --expose-gc");
    const started = performance.now();
    const result = await backtestFromLake(bucket, request(), () => {
      if (mode === "live") gc?.();
      sample();
    });
    const ms = performance.now() - started;
    sample();
    return { mode, ms, bars: result.bars, trades: result.tradeCount, pnlAccount: result.pnlAccount, peakHeapMB, peakRssMB };
  }
  if (mode === "decode") {
    const manifest = await loadCandleManifest(bucket, pair);
    const started = performance.now();
    let rows = 0;
    let check = 0;
    for await (const { cols } of lakeBatches(bucket, manifest, fromMs, toMs)) {
      rows += cols.length;
      check += cols.bc[cols.length - 1] ?? 0;
      sample();
    }
    return { mode, ms: performance.now() - started, bars: rows, check, peakHeapMB, peakRssMB };
  }
  const batches = await decodeAll();
  const bars = batches.reduce((n, b) => n + b.length, 0);
  if (mode === "baseline") {
    // The floor: touch every close once with a running 20-bar sum (what any replay must at least read).
    const started = performance.now();
    let sum = 0;
    let crosses = 0;
    const window = new Float64Array(20);
    let w = 0;
    for (const cols of batches) {
      const bc = cols.bc;
      for (let i = 0; i < cols.length; i++) {
        const c = bc[i] as number;
        sum += c - (window[w] as number);
        window[w] = c;
        w = (w + 1) % 20;
        if (sum > c * 20) crosses++;
      }
    }
    return { mode, ms: performance.now() - started, bars, check: crosses };
  }
  if (mode === "compute") {
    const engine = new Backtester(backtestOptions(request(), getInstrument(pair)));
    const bar = emptyBar();
    const started = performance.now();
    for (const cols of batches) {
      for (let i = 0; i < cols.length; i++) {
        readRow(cols, i, bar);
        if (bar.t < fromMs || bar.t >= toMs) continue;
        engine.onBar(bar, bar.t + 60_000);
      }
    }
    const result = engine.finish();
    return { mode, ms: performance.now() - started, bars: result.bars, trades: result.tradeCount, pnlAccount: result.pnlAccount };
  }
  throw new Error(`unknown mode ${mode}`);
}

process.stdout.write(`${JSON.stringify(await main())}\n`);
