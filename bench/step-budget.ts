/**
 * What the step budget costs and what it allows (src/domain/strategy/meter.ts).
 * A strategy-shaped loop is built twice from one source: as written (the
 * baseline) and metered as the build meters strategies/ (scripts/meter-source.ts);
 * both run over the same iterations in alternating rounds. Figures: ns per
 * loop iteration each way, the metering's overhead, and how long a runaway
 * step holds a pair before the default budget stops it (the step that spends
 * all of it), on this machine in Node.
 */
import { writeFile } from "node:fs/promises";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { metered, STEP_BUDGET_OPS_DEFAULT, StrategyBudgetError } from "../src/domain/strategy/meter.ts";
import { meterSource } from "../scripts/meter-source.ts";
import { fmt, printTable, ratio, resultBase, ROOT, round, summarize, tempDir, targetLine, type BenchOptions, type Scenario, type ScenarioResult } from "./common.ts";

/** A step's typical inner work: a pass over candles with arithmetic and a helper call. */
const SOURCE = `
interface Bar { close: number; high: number; low: number }
function range(b: Bar): number {
  return b.high - b.low;
}
export function scan(bars: readonly Bar[], passes: number): number {
  let acc = 0;
  for (let p = 0; p < passes; p++) {
    for (const b of bars) acc += b.close > acc / (p + 1) ? range(b) : -range(b) / 2;
  }
  return acc;
}
export function runaway(): number {
  let n = 0;
  for (;;) n++;
}
`;

type Module = { scan(bars: readonly { close: number; high: number; low: number }[], passes: number): number; runaway(): number };

/** Overhead of the metering on a real step's kind of loop, at most this (metered / as written). */
const TARGET_OVERHEAD_RATIO = 3;

export const stepBudget: Scenario = {
  name: "step-budget",
  description: "metered strategy code against the same code as written; the time a step may run before its default budget stops it",
  async run(options: BenchOptions): Promise<ScenarioResult> {
    const base = await resultBase("step-budget", options);
    const tmp = await tempDir("fxrt-bench-budget-");
    try {
      const plainFile = path.join(tmp.dir, "plain.ts");
      const meteredFile = path.join(tmp.dir, "metered.ts");
      // ES modules, as in the project: the metered file must share the bench's instance of the meter.
      await writeFile(path.join(tmp.dir, "package.json"), '{ "type": "module" }\n');
      await writeFile(plainFile, SOURCE);
      await writeFile(meteredFile, meterSource(SOURCE, { sourceFile: plainFile, outFile: meteredFile, sourceRoot: tmp.dir, meterModule: path.join(ROOT, "src/domain/strategy/meter.ts") }));
      const plain = (await import(pathToFileURL(plainFile).href)) as Module;
      const meteredCode = (await import(pathToFileURL(meteredFile).href)) as Module;

      const bars = Array.from({ length: 1_000 }, (_, i) => ({ close: 1.1 + Math.sin(i / 7) / 100, high: 1.1 + Math.sin(i / 7) / 100 + 0.0005, low: 1.1 + Math.sin(i / 7) / 100 - 0.0005 }));
      // Each metered pass over 1,000 bars costs 2,001 operations (an iteration and a helper call per bar, one per pass).
      const passes = 400;
      const iterations = passes * bars.length;
      const rounds = options.quick ? 5 : 15;
      const plainNs: number[] = [];
      const meteredNs: number[] = [];
      let checksum = 0;
      for (let r = 0; r < rounds + 1; r++) {
        const t0 = process.hrtime.bigint();
        checksum += plain.scan(bars, passes);
        const t1 = process.hrtime.bigint();
        checksum -= metered(STEP_BUDGET_OPS_DEFAULT * 10, () => meteredCode.scan(bars, passes));
        const t2 = process.hrtime.bigint();
        if (r === 0) continue; // warm-up round
        plainNs.push(Number(t1 - t0) / iterations);
        meteredNs.push(Number(t2 - t1) / iterations);
      }
      if (Math.abs(checksum) > 1e-6) throw new Error(`metered code computed something else (checksum ${checksum})`);

      const runawayMs: number[] = [];
      for (let r = 0; r < rounds; r++) {
        const t0 = process.hrtime.bigint();
        try {
          metered(STEP_BUDGET_OPS_DEFAULT, () => meteredCode.runaway());
          throw new Error("the runaway step was not stopped");
        } catch (err) {
          if (!(err instanceof StrategyBudgetError)) throw err;
        }
        runawayMs.push(Number(process.hrtime.bigint() - t0) / 1e6);
      }

      const plainSummary = summarize(plainNs);
      const meteredSummary = summarize(meteredNs);
      const runaway = summarize(runawayMs);
      const overhead = ratio(meteredSummary.p50, plainSummary.p50);
      console.log(`\nstep-budget (${options.quick ? "quick" : "full"}): ${rounds} alternating rounds of ${iterations.toLocaleString("en-US")} loop iterations`);
      printTable(
        ["series", "unit", "samples", "p50", "p99", "max"],
        [
          ["as written (baseline)", "ns/iteration", plainSummary.n, fmt(plainSummary.p50, 3), fmt(plainSummary.p99, 3), fmt(plainSummary.max, 3)],
          ["metered", "ns/iteration", meteredSummary.n, fmt(meteredSummary.p50, 3), fmt(meteredSummary.p99, 3), fmt(meteredSummary.max, 3)],
          [`runaway step stopped at ${STEP_BUDGET_OPS_DEFAULT.toLocaleString("en-US")} ops`, "ms", runaway.n, fmt(runaway.p50), fmt(runaway.p99), fmt(runaway.max)],
        ],
      );
      const targets = [{ description: `metering overhead on a loop over candles <= ${TARGET_OVERHEAD_RATIO}x (p50, metered / as written)`, value: overhead, met: overhead === null ? null : overhead <= TARGET_OVERHEAD_RATIO }];
      for (const t of targets) console.log(targetLine(t.description, t.value, t.met));
      return {
        ...base,
        parameters: { rounds, iterationsPerRound: iterations, bars: bars.length, budgetOpsDefault: STEP_BUDGET_OPS_DEFAULT },
        figures: { meteredNsPerIteration: meteredSummary, runawayStepMs: runaway, runawayStepMsP50: round(runaway.p50) },
        baseline: { description: "the same loop as written, not metered, alternating with the metered one", nsPerIteration: plainSummary },
        ratios: { meteredOverPlainP50: overhead },
        targets,
        notes: ["The built-in strategies use at most 3 operations a step on EUR_USD 2018 (test/node/strategies.test.ts): the default budget is over 300,000 times that."],
      };
    } finally {
      await tmp.remove();
    }
  },
};
