/**
 * Parameter sweeps (a grid over strategy parameters, every combination run in
 * one pass over the data) and walk-forward analysis (optimise on an in-sample
 * window, trade the winner on the out-of-sample window after it, fold after
 * fold). Deterministic: grid order is the order the values were given.
 */
import * as v from "valibot";
import { SWEEP_COMBINATIONS_MAX, type BacktestRequest, type Objective } from "../../schemas/backtest.ts";
import { StrategyConfig } from "../../schemas/strategy.ts";
import { getInstrument } from "../domain/instruments.ts";
import { Backtester } from "./backtester.ts";
import { backtestOptions, replayLake, type ProgressListener } from "./lake-run.ts";
import type { LakeBucket } from "./lake-reader.ts";
import type { BacktestResult } from "./result.ts";

export type ParamValue = number | string | boolean;
export type ParamGrid = Record<string, ParamValue[]>;

export const WALK_FORWARD_FOLDS_MAX = 24;

export { OBJECTIVES, SWEEP_COMBINATIONS_MAX, type Objective } from "../../schemas/backtest.ts";

/** Every combination of the grid's values, first key varying slowest. */
export function expandGrid(grid: ParamGrid): Record<string, ParamValue>[] {
  let combos: Record<string, ParamValue>[] = [{}];
  for (const [key, values] of Object.entries(grid)) {
    if (values.length === 0) throw new RangeError(`sweep parameter ${key} has no values`);
    combos = combos.flatMap((c) => values.map((value) => ({ ...c, [key]: value })));
    if (combos.length > SWEEP_COMBINATIONS_MAX) throw new RangeError(`a sweep runs at most ${SWEEP_COMBINATIONS_MAX} combinations`);
  }
  return combos;
}

/** The strategy of `request` with `params` applied, or the reason the combination is invalid. */
export function withParams(request: BacktestRequest, params: Record<string, ParamValue>): { ok: true; config: StrategyConfig } | { ok: false; reason: string } {
  const r = v.safeParse(StrategyConfig, { ...request.strategy, params: { ...request.strategy.params, ...params } });
  return r.success ? { ok: true, config: r.output } : { ok: false, reason: r.issues.map((i) => i.message).join("; ") };
}

/** What ranking reads of a result (a single-pair or a portfolio one). */
export type Scored = Pick<BacktestResult, "tradeCount" | "pnlAccount" | "pnlAccountCents" | "metrics">;

export function score(result: Scored, objective: Objective): number {
  const m = result.metrics;
  switch (objective) {
    case "pnl":
      return result.pnlAccountCents;
    case "sharpe":
      return m.sharpe ?? Number.NEGATIVE_INFINITY;
    case "sortino":
      return m.sortino ?? Number.NEGATIVE_INFINITY;
    case "profitFactor":
      return m.profitFactor ?? (m.grossProfitAccountCents > 0 ? Number.POSITIVE_INFINITY : Number.NEGATIVE_INFINITY);
  }
}

export interface SweepRow {
  params: Record<string, ParamValue>;
  tradeCount: number;
  pnlAccount: number;
  pnlAccountCents: number;
  sharpe: number | null;
  sortino: number | null;
  maxDrawdownPct: number;
  winRate: number;
  profitFactor: number | null;
}

export interface SweepResult {
  objective: Objective;
  fromMs: number;
  toMs: number;
  /** Valid combinations, best first (ties keep grid order). */
  rows: SweepRow[];
  invalid: { params: Record<string, ParamValue>; reason: string }[];
}

export function rowOf(params: Record<string, ParamValue>, r: Scored): SweepRow {
  const m = r.metrics;
  return { params, tradeCount: r.tradeCount, pnlAccount: r.pnlAccount, pnlAccountCents: r.pnlAccountCents, sharpe: m.sharpe, sortino: m.sortino, maxDrawdownPct: m.maxDrawdownPct, winRate: m.winRate, profitFactor: m.profitFactor };
}

/** Run every valid combination over [fromMs, toMs) (trading from tradeFromMs) in one pass; results in grid order. */
async function runGrid(
  bucket: LakeBucket,
  request: BacktestRequest,
  combos: Record<string, ParamValue>[],
  fromMs: number,
  toMs: number,
  onProgress?: ProgressListener,
  tradeFromMs = fromMs,
): Promise<{ params: Record<string, ParamValue>; result: BacktestResult }[]> {
  const instrument = getInstrument(request.pair);
  const valid = combos.map((params) => ({ params, config: withParams(request, params) })).filter((c) => c.config.ok);
  const results = await replayLake(
    bucket,
    request.pair,
    fromMs,
    toMs,
    (rates) =>
      valid.map(({ config }) => {
        const strategy = (config as { ok: true; config: StrategyConfig }).config;
        return new Backtester({ ...backtestOptions({ ...request, strategy, from: fromMs, to: toMs }, instrument, rates), tradeFromMs });
      }),
    onProgress,
    request.data,
  );
  return valid.map((c, i) => ({ params: c.params, result: results[i] as BacktestResult }));
}

export function ranked<R extends { params: Record<string, ParamValue>; result: Scored }>(runs: readonly R[], objective: Objective): R[] {
  // Stable sort: equal scores keep grid order, so the winner is deterministic.
  return runs.slice().sort((a, b) => {
    const x = score(a.result, objective);
    const y = score(b.result, objective);
    return x === y ? 0 : x > y ? -1 : 1;
  });
}

export async function sweep(bucket: LakeBucket, request: BacktestRequest, grid: ParamGrid, objective: Objective, onProgress?: ProgressListener): Promise<SweepResult> {
  const combos = expandGrid(grid);
  const invalid = combos.flatMap((params) => {
    const c = withParams(request, params);
    return c.ok ? [] : [{ params, reason: c.reason }];
  });
  const runs = await runGrid(bucket, request, combos, request.from, request.to, onProgress);
  return { objective, fromMs: request.from, toMs: request.to, rows: ranked(runs, objective).map((r) => rowOf(r.params, r.result)), invalid };
}

export interface WalkForwardResult {
  objective: Objective;
  folds: {
    fold: number;
    inSampleFromMs: number;
    inSampleToMs: number;
    outOfSampleFromMs: number;
    outOfSampleToMs: number;
    bestParams: Record<string, ParamValue>;
    inSample: SweepRow;
    outOfSample: SweepRow;
  }[];
  /** Out-of-sample folds added up: what trading the walk-forward choices would have made. */
  outOfSampleTradeCount: number;
  outOfSamplePnlAccountCents: number;
  outOfSamplePnlAccount: number;
}

/** One fold's window: optimise on [start, split), trade the winner on [split, end). */
export interface FoldWindow {
  fold: number;
  start: number;
  split: number;
  end: number;
}

/** A fold's outcome: the winning parameters, their in-sample run and their out-of-sample run. */
export interface FoldOutcome {
  params: Record<string, ParamValue>;
  inSample: Scored;
  outOfSample: Scored;
}

/**
 * Walk-forward over [from, to): `folds` equal windows, each optimised by
 * `runFold` on its first `inSamplePct` percent and traded with the winner on
 * the rest; the out-of-sample folds added up. One pair and a portfolio share
 * it, each with its own runFold.
 */
export async function walkForwardWindows(from: number, to: number, options: { folds: number; inSamplePct: number; objective: Objective }, runFold: (w: FoldWindow) => Promise<FoldOutcome>): Promise<WalkForwardResult> {
  const { folds, inSamplePct, objective } = options;
  if (!Number.isInteger(folds) || folds < 1 || folds > WALK_FORWARD_FOLDS_MAX) throw new RangeError(`folds must be 1..${WALK_FORWARD_FOLDS_MAX}`);
  if (!(inSamplePct > 0 && inSamplePct < 100)) throw new RangeError("inSamplePct must be between 0 and 100");
  const width = (to - from) / folds;
  const out: WalkForwardResult["folds"] = [];
  let trades = 0;
  let cents = 0;
  for (let k = 0; k < folds; k++) {
    const start = Math.round(from + k * width);
    const end = k === folds - 1 ? to : Math.round(from + (k + 1) * width);
    const split = Math.round(start + ((end - start) * inSamplePct) / 100);
    const { params, inSample, outOfSample } = await runFold({ fold: k + 1, start, split, end });
    trades += outOfSample.tradeCount;
    cents += outOfSample.pnlAccountCents;
    out.push({ fold: k + 1, inSampleFromMs: start, inSampleToMs: split, outOfSampleFromMs: split, outOfSampleToMs: end, bestParams: params, inSample: rowOf(params, inSample), outOfSample: rowOf(params, outOfSample) });
  }
  return { objective, folds: out, outOfSampleTradeCount: trades, outOfSamplePnlAccountCents: cents, outOfSamplePnlAccount: cents / 100 };
}

/**
 * Split [from, to) into `folds` equal windows; in each, optimise on the first
 * `inSamplePct` percent and trade the winner on the rest (warmed up on the
 * in-sample data, so indicators are ready at the first out-of-sample bar).
 */
export async function walkForward(
  bucket: LakeBucket,
  request: BacktestRequest,
  grid: ParamGrid,
  options: { folds: number; inSamplePct: number; objective: Objective },
  onProgress?: (fold: number, phase: "in-sample" | "out-of-sample", progress: Parameters<ProgressListener>[0]) => void,
): Promise<WalkForwardResult> {
  const combos = expandGrid(grid);
  return walkForwardWindows(request.from, request.to, options, async ({ fold, start, split, end }) => {
    const is = ranked(await runGrid(bucket, request, combos, start, split, (p) => onProgress?.(fold, "in-sample", p)), options.objective)[0];
    if (!is) throw new RangeError("no valid parameter combination in the grid");
    const [oos] = await runGrid(bucket, request, [is.params], start, end, (p) => onProgress?.(fold, "out-of-sample", p), split);
    if (!oos) throw new Error("out-of-sample run produced no result");
    return { params: is.params, inSample: is.result, outOfSample: oos.result };
  });
}
