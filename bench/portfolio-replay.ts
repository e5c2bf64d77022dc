/**
 * Portfolio backtests: bars per second for 2 and 8 pairs over a year, with
 * decode (the lake read by byte range, decoded, merged on one clock, the
 * engine with the portfolio's rules) and compute alone (merge + engine over
 * decoded columns), against the merge alone as the baseline; the memory held
 * by 8 pairs x 10 years; and sweep combinations per second in this process
 * (one pass, one thread) against worker threads on every core.
 *
 * Data: seeded synthetic 1-minute bars (replay-throughput's generator), one
 * series copied under every pair's name: the same bars, so the cost of a
 * pair, not of its data. Each figure is a fresh child process
 * (bench/replay-child.ts), so memory is the run's own.
 */
import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { availableParallelism, tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { fmt, onCleanup, printTable, ratio, resultBase, ROOT, round, targetLine, type Scenario } from "./common.ts";
import { copyPair, syntheticYears, writePartitions } from "./replay-throughput.ts";

const run = promisify(execFile);
/** Eight pairs every one of whose currencies another values in USD (EUR_GBP through EUR_USD and GBP_USD). */
const PAIRS_8 = ["AUD_USD", "EUR_GBP", "EUR_USD", "GBP_USD", "NZD_USD", "USD_CAD", "USD_CHF", "USD_JPY"];
const PAIRS_2 = ["EUR_USD", "USD_JPY"];
const SOURCE = "EUR_USD";
const SWEEP_COMBOS = 32;

interface Figures { ms: number; bars?: number; trades?: number; pnlAccount?: number; refusals?: Record<string, number>; peakHeapMB?: number; peakRssMB?: number; combos?: number; threads?: number }

async function measure(dir: string, pairs: readonly string[], fromMs: number, toMs: number, mode: string, extra?: string): Promise<Figures> {
  const { stdout } = await run(process.execPath, ["--expose-gc", "--import", "tsx", path.join(ROOT, "bench", "replay-child.ts"), dir, pairs.join(","), String(fromMs), String(toMs), mode, ...(extra ? [extra] : [])], {
    cwd: ROOT,
    maxBuffer: 1 << 20,
  });
  return JSON.parse(stdout.trim().split("\n").at(-1) ?? "{}") as Figures;
}

const perSec = (f: Figures, n = f.bars ?? 0): number | null => (f.ms > 0 ? Math.round((n / f.ms) * 1000) : null);

export const portfolioReplay: Scenario = {
  name: "portfolio-replay",
  description: "portfolio backtests: bars/s for 2 and 8 pairs (compute, with decode) against the merge alone, memory held by 8 pairs x 10 years, sweep combinations/s on 1 thread and every core",
  async run(options) {
    const dir = await mkdtemp(path.join(tmpdir(), "fxrt-bench-portfolio-"));
    const cleanup = onCleanup(() => rm(dir, { recursive: true, force: true }));
    try {
      const years = options.quick ? 2 : 10;
      const first = 2010;
      await writePartitions(dir, SOURCE, syntheticYears(first, years), "synthetic");
      for (const p of PAIRS_8) if (p !== SOURCE) await copyPair(dir, SOURCE, p);
      const yearFrom = Date.UTC(first, 0, 1);
      const yearTo = Date.UTC(first + 1, 0, 1);

      const rows = [];
      for (const pairs of [PAIRS_2, PAIRS_8]) {
        const withDecode = await measure(dir, pairs, yearFrom, yearTo, "portfolio");
        const compute = await measure(dir, pairs, yearFrom, yearTo, "portfolio-compute");
        const merge = await measure(dir, pairs, yearFrom, yearTo, "portfolio-merge");
        rows.push({
          pairs: pairs.length,
          bars: withDecode.bars ?? 0,
          trades: withDecode.trades ?? 0,
          refusals: withDecode.refusals ?? {},
          barsPerSecWithDecode: perSec(withDecode),
          barsPerSecCompute: perSec(compute),
          barsPerSecMergeBaseline: perSec(merge),
          heldMB: round(withDecode.peakHeapMB ?? null, 1),
          mergeVsCompute: ratio(perSec(merge), perSec(compute)),
        });
      }
      printTable(
        ["pairs x 1 year", "bars", "trades", "with decode bars/s", "compute bars/s", "merge alone bars/s", "held MB"],
        rows.map((r) => [r.pairs, r.bars, r.trades, fmt(r.barsPerSecWithDecode, 0), fmt(r.barsPerSecCompute, 0), fmt(r.barsPerSecMergeBaseline, 0), fmt(r.heldMB, 1)]),
      );

      const long = await measure(dir, PAIRS_8, yearFrom, Date.UTC(first + years, 0, 1), "portfolio");
      const longFigures = { pairs: PAIRS_8.length, years, bars: long.bars ?? 0, trades: long.trades ?? 0, seconds: round(long.ms / 1000, 2), barsPerSec: perSec(long), heldMB: round(long.peakHeapMB ?? null, 1), peakRssMB: round(long.peakRssMB ?? null, 1) };
      console.log(`${PAIRS_8.length} pairs x ${years} years with decode: ${longFigures.bars.toLocaleString("en-US")} bars in ${fmt(longFigures.seconds, 2)} s (${fmt(longFigures.barsPerSec, 0)} bars/s), held ${fmt(longFigures.heldMB, 1)} MB (RSS ${fmt(longFigures.peakRssMB, 1)} MB)`);

      const cores = availableParallelism();
      // 32 combinations (sma-cross fast x slow): one pass in this process, then a chunk per core on worker threads.
      const one = await measure(dir, PAIRS_2, yearFrom, yearTo, "sweep", `0:${SWEEP_COMBOS}`);
      const all = await measure(dir, PAIRS_2, yearFrom, yearTo, "sweep", `${cores}:${SWEEP_COMBOS}`);
      const sweep = { combos: one.combos ?? 0, oneThreadPerSec: round(perSec(one, one.combos ?? 0) ?? null, 2), oneThreadSeconds: round(one.ms / 1000, 2), cores, allCoresPerSec: round(((all.combos ?? 0) / all.ms) * 1000, 2), allCoresSeconds: round(all.ms / 1000, 2) };
      console.log(`sweep of ${sweep.combos} combinations over ${PAIRS_2.length} pairs x 1 year: one pass in this process ${fmt(sweep.oneThreadPerSec, 2)} combos/s (${fmt(sweep.oneThreadSeconds, 2)} s), ${cores} worker threads ${fmt(sweep.allCoresPerSec, 2)} combos/s (${fmt(sweep.allCoresSeconds, 2)} s)`);

      const targets = [{ description: `${PAIRS_8.length} pairs x ${years} years of 1-minute bars: memory held < 96 MB (target stated for 10 years)`, value: longFigures.heldMB, met: longFigures.heldMB !== null && longFigures.heldMB < 96 }];
      for (const t of targets) console.log(targetLine(t.description, t.value, t.met));
      return {
        ...(await resultBase("portfolio-replay", options)),
        parameters: { strategy: "sma-cross 20/50 1h, 100,000 units on every pair, default portfolio limits, 1 pip", data: `${years} synthetic years copied under each pair`, pairs2: PAIRS_2, pairs8: PAIRS_8 },
        figures: { oneYear: rows, long: longFigures, sweep },
        baseline: { mergeAloneBarsPerSec: rows.map((r) => ({ pairs: r.pairs, barsPerSec: r.barsPerSecMergeBaseline })), sweepOneThreadPerSec: sweep.oneThreadPerSec },
        ratios: {
          ...Object.fromEntries(rows.map((r) => [`${r.pairs} pairs: merge alone / compute`, r.mergeVsCompute])),
          [`sweep: ${cores} threads / 1 thread`]: ratio(sweep.allCoresPerSec, sweep.oneThreadPerSec),
        },
        targets,
        notes: [
          "with decode: ranged lake reads + Arrow decode + merge + engine, as npm run backtest -- --pairs runs it, a forced collection before each memory sample (what the run holds).",
          "compute: every pair decoded first, then merge + engine timed; merge alone: the same merge with a running sum, the floor any portfolio replay pays.",
          "sweep, 1 thread: every combination's engine in one pass over the data in this process; N threads: contiguous chunks on worker threads, each one pass, lake reads through the parent.",
        ],
      };
    } finally {
      await cleanup();
    }
  },
};
