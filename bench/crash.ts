/**
 * Crash soak (issue 14): the black-box crash test of test/support/crash-driver.ts
 * for many cycles. Each cycle runs a seeded workload (tick batches with
 * batchIds on three pairs, market and limit orders, kill switch halts and
 * resumes) against `npm start` in a child process group, SIGKILLs the whole
 * group around one kind of request, restarts on the same state, re-sends what
 * was not answered and checks the invariants through the API. A correctness
 * soak: any broken invariant fails the scenario (the figures are timings and
 * counts, with no baseline to compare against).
 *
 * `npm run bench -- --only crash` runs 20 cycles (about 6 minutes: left out of
 * the full run, which it would push past 10 minutes; --quick runs 2); for a longer
 * soak: `npx tsx bench/crash.ts --cycles 100 [--seed 7]` (writes the same result file).
 */
import { pathToFileURL } from "node:url";
import { CONVERGENCE_BOUND_MS, runCrashTest, type CrashReport } from "../test/support/crash-driver.ts";
import { fmt, printTable, resultBase, runAllCleanups, summarize, targetLine, tempDir, writeResult, type BenchOptions, type Scenario, type ScenarioResult } from "./common.ts";

const FULL_CYCLES = 20;
const QUICK_CYCLES = 2;

async function runSoak(options: BenchOptions, cycles: number, seed: number): Promise<ScenarioResult> {
  const base = await resultBase("crash", options);
  const { dir, remove } = await tempDir("fxrt-bench-crash-");
  const started = Date.now();
  let report: CrashReport;
  try {
    report = await runCrashTest({ seed, cycles, dir, log: (line) => console.log(line) });
  } finally {
    await remove();
  }
  const minutes = (Date.now() - started) / 60_000;
  const restart = summarize(report.restartMs);
  const converged = summarize(report.convergenceMs);
  const afterResend = summarize(report.convergenceAfterResendMs);
  printTable(
    ["figure", "value"],
    [
      ["cycles / kills (workerd among the killed)", `${report.cycles} / ${report.kills} (${report.killsWithWorkerd})`],
      ["kills aimed at halt / resume / order / ticks / timer", Object.values(report.targets).join(" / ")],
      ["requests sent / unanswered / re-sent", `${report.requests.sent} / ${report.requests.unanswered} / ${report.requests.resent}`],
      ["tick batches / re-sent / ticks sent / accepted / stored", `${report.ticks.batches} / ${report.ticks.resentBatches} / ${report.ticks.sent} / ${report.ticks.accepted} / ${report.ticks.stored}`],
      ["orders sent / re-sent / recorded / filled / working / refused / fills", Object.values(report.orders).join(" / ")],
      ["kill switch sent / re-sent", `${report.killSwitch.sent} / ${report.killSwitch.resent}`],
      ["restart (spawn to health), ms p50 / max", `${fmt(restart.p50, 0)} / ${fmt(restart.max, 0)}`],
      ["trading state converged after restart, ms p50 / max", `${fmt(converged.p50, 0)} / ${fmt(converged.max, 0)}`],
      ["converged on the expected state after re-sends, ms p50 / max", `${fmt(afterResend.p50, 0)} / ${fmt(afterResend.max, 0)}`],
      ["wall time, minutes", fmt(minutes, 1)],
    ],
  );
  const worst = Math.max(converged.max ?? 0, afterResend.max ?? 0);
  const targets = [{ description: `coordinator and pairs in one trading state <= ${CONVERGENCE_BOUND_MS} ms after a restart (max)`, value: worst, met: worst <= CONVERGENCE_BOUND_MS }];
  for (const t of targets) console.log(targetLine(t.description, t.value, t.met));
  if (report.violations.length > 0) {
    throw new Error(`crash soak broke ${report.violations.length} invariant(s):\n${report.violations.join("\n")}`);
  }
  return {
    ...base,
    parameters: { cycles, seed, pairs: 3, convergenceBoundMs: CONVERGENCE_BOUND_MS },
    figures: { ...report, restartMs: restart, convergenceMs: converged, convergenceAfterResendMs: afterResend, minutes },
    baseline: null,
    ratios: {},
    targets,
    notes: [
      "Each restart builds the bundle again (scripts/runtime.ts has no build cache): most of a cycle's time is the restart.",
      "Convergence is measured from the restarted runtime's first /api/health answer; npm start runs the scheduled handler (which wakes every pair, and pairs ask the coordinator for the state) before it answers.",
    ],
  };
}

export const crash: Scenario = {
  name: "crash",
  description: "SIGKILL the whole runtime around halts, resumes, orders and tick batches; restart, re-send, check the invariants",
  onlyWhenNamed: true,
  run: (options) => runSoak(options, options.quick ? QUICK_CYCLES : FULL_CYCLES, 1),
};

async function main(): Promise<void> {
  const arg = (name: string, fallback: number) => {
    const i = process.argv.indexOf(name);
    const value = i >= 0 ? Number(process.argv[i + 1]) : fallback;
    if (!Number.isInteger(value) || value < 1) throw new Error(`${name} needs a positive integer`);
    return value;
  };
  const result = await runSoak({ quick: false }, arg("--cycles", FULL_CYCLES), arg("--seed", 1));
  console.log(`wrote ${await writeResult(result)}`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main()
    .catch((err: unknown) => {
      console.error(err instanceof Error ? (err.stack ?? err.message) : err);
      process.exitCode = 1;
    })
    .finally(() => runAllCleanups());
}
