/**
 * Ticks per second one pair actor ingests: batches of valid EUR_USD ticks
 * POSTed to the runtime (Worker -> Durable Object RPC -> validation, SQLite,
 * candles), sequentially and with a few concurrent posters. Baseline in the same
 * run: the same domain code (checkTick + CandleAggregator.onTick) over the same
 * ticks, in-process in Node, so the ratio is the cost of the serving path and
 * storage.
 */
import { performance } from "node:perf_hooks";
import { CandleAggregator } from "../src/domain/candle-aggregator.ts";
import { getInstrument } from "../src/domain/instruments.ts";
import { checkTick, defaultTickRules } from "../src/domain/tick-validation.ts";
import type { WireTick } from "../schemas/tick.ts";
import {
  fmt,
  onCleanup,
  Poster,
  printTable,
  ratio,
  resultBase,
  round,
  summarize,
  tempDir,
  TickWalk,
  type BenchOptions,
  type LatencySummary,
  type Scenario,
  type ScenarioResult,
  startBenchRuntime,
} from "./common.ts";

const PAIR = "EUR_USD";
const TICK_PATH = `/api/pairs/${PAIR}/ticks`;
/** Data-clock step between consecutive ticks: 10 ticks/s, a busy real pair, so minutes close every 600 ticks. */
const TICK_STEP_MS = 100;
/** Enough data-clock room behind "now" for every tick of a full run (ts must be <= now). */
const MAX_TICKS = 2_000_000;

interface Phase {
  batch: number;
  concurrency: number;
}

interface PhaseFigures extends Phase {
  requests: number;
  ticksSent: number;
  ticksAccepted: number;
  ticksRejected: number;
  errors: number;
  seconds: number;
  ticksPerSec: number | null;
  requestsPerSec: number | null;
  latencyMs: LatencySummary;
}

interface BaselineFigures {
  batch: number;
  concurrency: number;
  ticks: number;
  ticksPerSec: number | null;
  usPerTick: number | null;
}

/** Hands out ticks with increasing timestamps on a data clock that starts far enough in the past. */
class TickSource {
  private seq = 0;
  private readonly walk = new TickWalk(42);
  private readonly startTs: number;

  constructor(maxTicks: number) {
    this.startTs = Date.now() - maxTicks * TICK_STEP_MS - 60_000;
  }

  batch(n: number): WireTick[] {
    const out: WireTick[] = [];
    const now = Date.now();
    for (let i = 0; i < n; i++) {
      const ts = Math.min(now, this.startTs + this.seq++ * TICK_STEP_MS);
      out.push(this.walk.next(ts));
    }
    return out;
  }
}

async function runPhase(
  poster: Poster,
  source: TickSource,
  phase: Phase,
  durationMs: number,
  maxRequests: number,
  keep: WireTick[][],
): Promise<PhaseFigures> {
  const latencies: number[] = [];
  let requests = 0;
  let ticksSent = 0;
  let ticksAccepted = 0;
  let ticksRejected = 0;
  let errors = 0;
  let firstError: string | null = null;
  const t0 = performance.now();
  const deadline = t0 + durationMs;

  async function worker(): Promise<void> {
    while (performance.now() < deadline && requests < maxRequests) {
      requests++;
      const ticks = source.batch(phase.batch);
      keep.push(ticks);
      const body = JSON.stringify({ ticks });
      const start = performance.now();
      const res = await poster.post(TICK_PATH, body);
      latencies.push(performance.now() - start);
      ticksSent += ticks.length;
      if (res.status !== 200) {
        errors++;
        firstError ??= `${res.status} ${res.body.slice(0, 200)}`;
        continue;
      }
      const result = JSON.parse(res.body) as { accepted: number; rejected: unknown[] };
      ticksAccepted += result.accepted;
      ticksRejected += result.rejected.length;
    }
  }

  await Promise.all(Array.from({ length: phase.concurrency }, () => worker()));
  const seconds = (performance.now() - t0) / 1000;
  if (firstError) console.error(`  batch ${phase.batch} x${phase.concurrency}: ${errors} failed requests, first: ${firstError}`);
  return {
    ...phase,
    requests,
    ticksSent,
    ticksAccepted,
    ticksRejected,
    errors,
    seconds: round(seconds) ?? 0,
    ticksPerSec: round(ticksAccepted / seconds, 0),
    requestsPerSec: round(requests / seconds, 1),
    latencyMs: summarize(latencies),
  };
}

/** The domain work of ingest, in-process: validation and aggregation, no HTTP, RPC or SQLite. */
function baselineRun(phases: { phase: Phase; batches: WireTick[][] }[]): BaselineFigures[] {
  const instrument = getInstrument(PAIR);
  const rules = defaultTickRules(instrument);
  const pass = (timed: boolean): BaselineFigures[] => {
    const aggregator = new CandleAggregator();
    let lastTs = Number.NEGATIVE_INFINITY;
    const nowMs = Date.now();
    let sink = 0;
    const out: BaselineFigures[] = [];
    for (const { phase, batches } of phases) {
      let ticks = 0;
      const t0 = performance.now();
      for (const batch of batches) {
        for (const raw of batch) {
          const check = checkTick(raw, { instrument, rules, nowMs, lastTs, closedUntil: aggregator.closedUntil });
          if (!check.ok) continue;
          sink += aggregator.onTick(check.tick).length;
          lastTs = check.tick.ts;
          ticks++;
        }
      }
      const seconds = (performance.now() - t0) / 1000;
      if (timed) {
        out.push({
          batch: phase.batch,
          concurrency: phase.concurrency,
          ticks,
          ticksPerSec: round(ticks / seconds, 0),
          usPerTick: round((seconds * 1e6) / Math.max(ticks, 1), 4),
        });
      }
    }
    if (sink < 0) console.log(sink); // keep the work observable
    return out;
  };
  pass(false); // warm-up (JIT)
  return pass(true);
}

export const ingestThroughput: Scenario = {
  name: "ingest-throughput",
  description: "ticks/s one pair actor ingests over POST /api/pairs/:pair/ticks",
  async run(options: BenchOptions): Promise<ScenarioResult> {
    const base = await resultBase("ingest-throughput", options);
    const batchSizes = [1, 100, 1000];
    const concurrencies = [1, 4];
    const durationMs = options.quick ? 600 : 4_000;
    const maxRequests = options.quick ? 400 : 20_000;
    const phases: Phase[] = batchSizes.flatMap((batch) => concurrencies.map((concurrency) => ({ batch, concurrency })));

    const state = await tempDir("fxrt-bench-ingest-");
    let stopRuntime: (() => Promise<void>) | null = null;
    let poster: Poster | null = null;
    try {
      console.log("starting runtime (bundling the Worker)...");
      const runtime = await startBenchRuntime(state.dir);
      stopRuntime = onCleanup(() => runtime.stop());
      poster = new Poster(runtime.url, 8);
      const source = new TickSource(MAX_TICKS);

      // Warm-up: wake the actor (migrations, state load) and JIT both sides.
      const warm: WireTick[][] = [];
      await runPhase(poster, source, { batch: 100, concurrency: 1 }, options.quick ? 200 : 1_000, 50, warm);

      const figures: PhaseFigures[] = [];
      const kept: { phase: Phase; batches: WireTick[][] }[] = [{ phase: { batch: 100, concurrency: 1 }, batches: warm }];
      for (const phase of phases) {
        const batches: WireTick[][] = [];
        figures.push(await runPhase(poster, source, phase, durationMs, maxRequests, batches));
        kept.push({ phase, batches });
      }

      const statusRes = await fetch(`${runtime.url}/api/pairs/${PAIR}`);
      const status = (await statusRes.json()) as { ticksStored?: number; candlesStored?: Record<string, number> };

      const baselineAll = baselineRun(kept);
      const baseline = baselineAll.slice(1); // drop the warm-up phase
      const ratios: Record<string, number | null> = {};
      for (const [i, f] of figures.entries()) {
        ratios[`baselineOverRuntime_batch${f.batch}_c${f.concurrency}`] = ratio(baseline[i]?.ticksPerSec, f.ticksPerSec);
      }

      console.log(`\ningest-throughput (${options.quick ? "quick" : "full"}): ${PAIR}, ${durationMs} ms per phase, runtime on Miniflare/workerd`);
      printTable(
        ["batch", "posters", "requests", "ticks/s", "req/s", "p50 ms", "p99 ms", "max ms", "rejected", "errors", "node domain ticks/s", "domain/runtime"],
        figures.map((f, i) => [
          f.batch,
          f.concurrency,
          f.requests,
          fmt(f.ticksPerSec, 0),
          fmt(f.requestsPerSec, 1),
          fmt(f.latencyMs.p50),
          fmt(f.latencyMs.p99),
          fmt(f.latencyMs.max),
          f.ticksRejected,
          f.errors,
          fmt(baseline[i]?.ticksPerSec, 0),
          `${fmt(ratios[`baselineOverRuntime_batch${f.batch}_c${f.concurrency}`], 0)}x`,
        ]),
      );
      console.log(
        `actor status after run: ticksStored=${status.ticksStored ?? "?"} candles=${JSON.stringify(status.candlesStored ?? {})}`,
      );

      const notes = [
        "ticks/s counts accepted ticks; latency is per POST request (client-side, keep-alive node:http).",
        `Tick timestamps follow a data clock stepping ${TICK_STEP_MS} ms per tick, started in the past so ts <= now; minutes close every ${60_000 / TICK_STEP_MS} ticks.`,
        "Baseline: checkTick + CandleAggregator.onTick in-process over the same ticks in the same order (no HTTP, RPC, SQLite, indicators).",
        "Concurrent posters may reach the actor out of order; their out-of-order ticks are rejected (counted in 'rejected').",
      ];
      const result: ScenarioResult = {
        ...base,
        parameters: { pair: PAIR, batchSizes, concurrencies, phaseDurationMs: durationMs, maxRequestsPerPhase: maxRequests, tickStepMs: TICK_STEP_MS, spreadPips: 1, feed: "off" },
        figures: { phases: figures, actorStatus: status },
        baseline: { description: "checkTick + CandleAggregator.onTick in Node, same ticks", phases: baseline },
        ratios,
        notes,
      };
      return result;
    } finally {
      poster?.close();
      if (stopRuntime) await stopRuntime();
      await state.remove();
    }
  },
};
