/**
 * Benchmark entry: `npx tsx bench/run.ts [--quick] [--only name]`.
 * Runs each scenario in turn, prints its table and writes bench/results/<name>.json.
 * `--quick` is for CI: short, and never fails on a missed target.
 * `--profile` CPU-profiles workerd's isolates in the scenarios that support it
 * (tick-to-decision, ws-fanout): figures measured under the profiler are slower.
 */
import { backup } from "./backup.ts";
import { brokerRoundtrip } from "./broker-roundtrip.ts";
import { crash } from "./crash.ts";
import { ingestThroughput } from "./ingest-throughput.ts";
import { killSwitch } from "./kill-switch.ts";
import { manyPairs } from "./many-pairs.ts";
import { replayThroughput } from "./replay-throughput.ts";
import { portfolioReplay } from "./portfolio-replay.ts";
import { soak } from "./soak.ts";
import { stepBudget } from "./step-budget.ts";
import { tickPath } from "./tick-path.ts";
import { tickToDecision } from "./tick-to-decision.ts";
import { wsFanout } from "./ws-fanout.ts";
import { runAllCleanups, writeResult, type Scenario, type ScenarioResult } from "./common.ts";
import { printSummary } from "./summary.ts";

const SCENARIOS: Scenario[] = [ingestThroughput, wsFanout, tickPath, manyPairs, tickToDecision, killSwitch, replayThroughput, portfolioReplay, stepBudget, brokerRoundtrip, backup, soak, crash];

function parseArgs(argv: string[]): { quick: boolean; profile: boolean; only: string[] } {
  let quick = false;
  let profile = false;
  const only: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--quick") quick = true;
    else if (arg === "--profile") profile = true;
    else if (arg === "--only") {
      const name = argv[++i];
      if (!name) throw new Error("--only needs a scenario name");
      only.push(name);
    } else if (arg?.startsWith("--only=")) only.push(arg.slice("--only=".length));
    else if (arg === "--help" || arg === "-h") {
      console.log(`usage: tsx bench/run.ts [--quick] [--profile] [--only <name>]\nscenarios: ${SCENARIOS.map((s) => s.name).join(", ")}`);
      process.exit(0);
    } else throw new Error(`unknown argument ${arg}`);
  }
  return { quick, profile, only };
}

async function main(): Promise<void> {
  const { quick, profile, only } = parseArgs(process.argv.slice(2));
  const unknown = only.filter((n) => !SCENARIOS.some((s) => s.name === n));
  if (unknown.length) throw new Error(`unknown scenario ${unknown.join(", ")}; known: ${SCENARIOS.map((s) => s.name).join(", ")}`);
  const selected = only.length ? SCENARIOS.filter((s) => only.includes(s.name)) : SCENARIOS.filter((s) => quick || !s.onlyWhenNamed);
  const t0 = Date.now();
  let failed = 0;
  const results: ScenarioResult[] = [];
  for (const scenario of selected) {
    console.log(`\n=== ${scenario.name}: ${scenario.description}${quick ? " (quick)" : ""}`);
    const s0 = Date.now();
    try {
      const result = await scenario.run({ quick, profile });
      results.push(result);
      const file = await writeResult(result, profile);
      console.log(`wrote ${file} (${((Date.now() - s0) / 1000).toFixed(1)} s)`);
    } catch (err) {
      failed++;
      console.error(`${scenario.name} failed:`, err);
      await runAllCleanups();
    }
  }
  console.log(`wrote ${await printSummary(results, quick, profile)}`);
  console.log(`\nbench done in ${((Date.now() - t0) / 1000).toFixed(1)} s${failed ? `, ${failed} scenario(s) failed` : ""}`);
  // Targets are reported, never asserted: only a broken scenario fails the run.
  process.exitCode = failed ? 1 : 0;
}

main()
  .catch(async (err) => {
    console.error(err);
    process.exitCode = 1;
  })
  .finally(async () => {
    await runAllCleanups();
  });
