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
import { candleBatches, mergeBars } from "../src/replay/bar-merge.ts";

const [dir, pair, fromText, toText, mode] = process.argv.slice(2) as [string, string, string, string, string];
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
