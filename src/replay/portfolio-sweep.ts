/**
 * Sweeps and walk-forward over a portfolio: a grid over any strategy's
 * parameters or any portfolio limit, each combination a whole portfolio
 * backtest. Where the combinations run is the runner's business: in this
 * process in one pass over the data (`inProcessRunner`), on worker threads
 * (scripts/sweep-pool.ts) or on Backtest Durable Objects (actors/backtest.ts);
 * every runner gives each combination the same bytes, so parallel and
 * sequential agree exactly.
 *
 * Grid keys:
 *   limits.maxOpenPositions         a portfolio limit (PUT /api/admin/limits' names)
 *   sma.fast                        parameter `fast` of strategy `sma` on every pair that runs it
 *   EUR_USD/sma.fast                the same on one pair only
 */
import * as v from "valibot";
import type { Objective, PortfolioBacktestRequest } from "../../schemas/backtest.ts";
import { PortfolioLimits } from "../../schemas/portfolio.ts";
import { StrategyConfig } from "../../schemas/strategy.ts";
import type { LakeBucket } from "./lake-reader.ts";
import { portfolioOptions, replayPortfolio, type ProgressListener } from "./lake-run.ts";
import { PortfolioBacktester } from "./portfolio-backtester.ts";
import type { PortfolioBacktestResult } from "./portfolio-result.ts";
import { expandGrid, ranked, rowOf, walkForwardWindows, type ParamGrid, type ParamValue, type SweepResult, type WalkForwardResult } from "./sweep.ts";

/** One portfolio run of a sweep: the request with a combination applied, trading from `tradeFromMs` (walk-forward's warm start). */
export interface PortfolioRun {
  request: PortfolioBacktestRequest;
  tradeFromMs?: number;
}

/** Runs portfolio backtests over one range and one set of pairs; results in the order given. */
export type PortfolioRunner = (runs: readonly PortfolioRun[], onProgress?: ProgressListener) => Promise<PortfolioBacktestResult[]>;

/** Every run in this process, in one pass over the data (each engine is independent of the others). */
export function inProcessRunner(bucket: LakeBucket): PortfolioRunner {
  return async (runs, onProgress) => {
    const first = runs[0];
    if (!first) return [];
    return replayPortfolio(bucket, first.request, () => runs.map((r) => new PortfolioBacktester(portfolioOptions(r.request, r.tradeFromMs))), onProgress);
  };
}

/** What a combination changes: the pairs' strategies and the limits (a request as parsed, or its raw JSON body). */
interface Combinable {
  pairs: readonly { pair: string; strategies: readonly { id: string; params?: Record<string, unknown> }[] }[];
  limits?: unknown;
}

/** `request` with one combination applied and checked, or why the combination is invalid. */
export function applyCombination<R extends Combinable>(request: R, params: Record<string, ParamValue>): { ok: true; request: R } | { ok: false; reason: string } {
  let limits: Record<string, unknown> | null = null;
  let pairs = request.pairs;
  for (const [key, value] of Object.entries(params)) {
    if (key.startsWith("limits.")) {
      limits = { ...(limits ?? (request.limits as Record<string, unknown> | undefined) ?? {}), [key.slice("limits.".length)]: value };
      continue;
    }
    const m = /^(?:([A-Z]{3}_[A-Z]{3})\/)?([a-z0-9][a-z0-9-]*)\.([A-Za-z0-9_]+)$/.exec(key);
    if (!m) return { ok: false, reason: `${key}: a grid key is limits.NAME, STRATEGY.PARAM or PAIR/STRATEGY.PARAM` };
    const [, pair, strategyId, param] = m as unknown as [string, string | undefined, string, string];
    let matched = false;
    pairs = pairs.map((p) => {
      if (pair !== undefined && p.pair !== pair) return p;
      return {
        ...p,
        strategies: p.strategies.map((s) => {
          if (s.id !== strategyId) return s;
          matched = true;
          return { ...s, params: { ...s.params, [param]: value } };
        }),
      };
    });
    if (!matched) return { ok: false, reason: `${key}: no strategy ${strategyId}${pair ? ` on ${pair}` : ""} in the portfolio` };
  }
  // Checked as the request would be: strict parameters and limits, so a typo is an error, not a default.
  for (const p of pairs) {
    for (const s of p.strategies) {
      const checked = v.safeParse(StrategyConfig, s);
      if (!checked.success) return { ok: false, reason: `${p.pair}/${s.id}: ${checked.issues.map((i) => i.message).join("; ")}` };
    }
  }
  let parsedLimits = request.limits;
  if (limits !== null) {
    const checked = v.safeParse(PortfolioLimits, limits);
    if (!checked.success) return { ok: false, reason: `limits: ${checked.issues.map((i) => `${i.path?.map((x) => String(x.key)).join(".") ?? ""} ${i.message}`.trim()).join("; ")}` };
    parsedLimits = checked.output;
  }
  return { ok: true, request: { ...request, pairs, ...(parsedLimits !== undefined ? { limits: parsedLimits } : {}) } };
}

/** The combinations of a grid applied to `request` (valid ones in grid order, with their index among all), and the invalid ones with why. */
export function gridCombinations<R extends Combinable>(request: R, grid: ParamGrid): { valid: { index: number; params: Record<string, ParamValue>; request: R }[]; invalid: { params: Record<string, ParamValue>; reason: string }[] } {
  const out: ReturnType<typeof gridCombinations<R>> = { valid: [], invalid: [] };
  expandGrid(grid).forEach((params, index) => {
    const applied = applyCombination(request, params);
    if (applied.ok) out.valid.push({ index, params, request: applied.request });
    else out.invalid.push({ params, reason: applied.reason });
  });
  return out;
}

/** Rank the runs of a sweep: the same result however they were run. */
export function sweepResult(request: Pick<PortfolioBacktestRequest, "from" | "to">, objective: Objective, runs: readonly { params: Record<string, ParamValue>; result: PortfolioBacktestResult }[], invalid: SweepResult["invalid"]): SweepResult {
  return { objective, fromMs: request.from, toMs: request.to, rows: ranked(runs, objective).map((r) => rowOf(r.params, r.result)), invalid };
}

/** Every combination of `grid` over the request's range, best first by `objective`. */
export async function sweepPortfolio(request: PortfolioBacktestRequest, grid: ParamGrid, objective: Objective, runner: PortfolioRunner, onProgress?: ProgressListener): Promise<SweepResult> {
  const { sweep: _spec, ...base } = request;
  const { valid, invalid } = gridCombinations(base, grid);
  const results = await runner(valid.map((c) => ({ request: c.request })), onProgress);
  return sweepResult(request, objective, valid.map((c, i) => ({ params: c.params, result: results[i] as PortfolioBacktestResult })), invalid);
}

/**
 * Walk-forward over a portfolio, as over one pair (sweep.ts): `folds` equal
 * windows, each optimised on its first `inSamplePct` percent and traded with
 * the winner on the rest, warmed up on the in-sample data.
 */
export async function walkForwardPortfolio(
  request: PortfolioBacktestRequest,
  grid: ParamGrid,
  options: { folds: number; inSamplePct: number; objective: Objective },
  runner: PortfolioRunner,
  onProgress?: (fold: number, phase: "in-sample" | "out-of-sample", progress: Parameters<ProgressListener>[0]) => void,
): Promise<WalkForwardResult> {
  const { sweep: _spec, ...base } = request;
  const { valid } = gridCombinations(base, grid);
  if (valid.length === 0) throw new RangeError("no valid parameter combination in the grid");
  return walkForwardWindows(request.from, request.to, options, async ({ fold, start, split, end }) => {
    const inSample = await runner(valid.map((c) => ({ request: { ...c.request, from: start, to: split } })), (p) => onProgress?.(fold, "in-sample", p));
    const best = ranked(valid.map((c, i) => ({ params: c.params, request: c.request, result: inSample[i] as PortfolioBacktestResult })), options.objective)[0];
    if (!best) throw new RangeError("no valid parameter combination in the grid");
    const [oos] = await runner([{ request: { ...best.request, from: start, to: end }, tradeFromMs: split }], (p) => onProgress?.(fold, "out-of-sample", p));
    if (!oos) throw new Error("out-of-sample run produced no result");
    return { params: best.params, inSample: best.result, outOfSample: oos };
  });
}
