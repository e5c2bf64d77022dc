/**
 * A strategy configured on a pair (or in a backtest) as it runs: its
 * configuration, its saved JSON state and its memory (candle history and
 * indicators, rebuilt after a restart: run-memory.ts). Feeding a closed
 * candle advances the memory of every run that reads its timeframe and steps
 * the enabled runs that watch it.
 */
import type { StrategyConfig } from "../../../schemas/strategy.ts";
import type { Candle, Timeframe } from "../candle.ts";
import { bucketEnd } from "../fx-time.ts";
import type { Instrument } from "../instruments.ts";
import type { Position } from "../trading/position.ts";
import type { SignalDraft } from "../trading/strategy.ts";
import type { OrderIntent, Quote } from "../trading/types.ts";
import type { StrategyAccount } from "./api.ts";
import { strategyDefinition } from "./catalog.ts";
import { metered, STEP_BUDGET_OPS_DEFAULT, StrategyBudgetError } from "./meter.ts";
import { RunMemory, StrategyDefinitionError } from "./run-memory.ts";
import { stepStrategy, type StepOutcome, type StrategyFault } from "./step.ts";

/** Why and when a run stopped stepping: until an admin resumes it, it decides nothing. */
export interface StrategySuspension extends StrategyFault {
  atMs: number;
  /** The candle whose step failed (its start), or "tick" and the tick's time. */
  timeframe: Timeframe | "tick";
  candleT: number;
}

export interface StrategyRun {
  readonly config: StrategyConfig;
  /** The strategy's own state, plain JSON: saved after every step. */
  readonly state: unknown;
  /** Not saved: rebuilt from stored candles after a restart (warmUp). */
  readonly memory: RunMemory;
  /** Set by a failed step; a suspended run's memory still follows the candles, so it resumes warm. */
  readonly suspended: StrategySuspension | null;
}

/**
 * A run of `config` with its saved state, or its initial state when there is
 * none. Throws StrategyDefinitionError when the definition cannot run with
 * these parameters (the caller validated them: a defect of the strategy).
 */
export function startRun(config: StrategyConfig, instrument: Instrument, savedState?: unknown, suspended: StrategySuspension | null = null): StrategyRun {
  const definition = strategyDefinition(config.kind);
  try {
    // watch(), indicators() and init() are the user's code too: within the same budget as a step.
    return metered(stepBudgetOps(config), () => {
      const memory = new RunMemory(definition, config.params, instrument);
      return { config, state: savedState === undefined ? definition.init(config.params) : savedState, memory, suspended };
    });
  } catch (err) {
    throw err instanceof StrategyBudgetError ? new StrategyDefinitionError(`${definition.name}: starting it ${err.message.replace(/^the step /, "")}`) : err;
  }
}

/** The operations one step of the run may use. */
export function stepBudgetOps(config: StrategyConfig): number {
  return config.stepBudgetOps ?? STEP_BUDGET_OPS_DEFAULT;
}

/** The run going again after a suspension, its state as the failed step found it. */
export function resumeRun(run: StrategyRun): StrategyRun {
  return { ...run, suspended: null };
}

/** The timeframes whose candles the run reads. */
export function runTimeframes(run: StrategyRun): readonly Timeframe[] {
  return run.memory.timeframes;
}

/** Rebuild the memory from stored candles of `tf`, oldest first (no step, no signal). */
export function warmUp(run: StrategyRun, tf: Timeframe, candles: readonly Candle[]): void {
  for (const c of candles) run.memory.feed(tf, c);
}

export type RunStep =
  | { run: StrategyRun; changed: boolean; draft: SignalDraft | null; cancels: readonly string[] }
  | { run: StrategyRun; changed: true; draft: null; fault: StrategyFault };

/**
 * A closed candle: into the run's memory, then a step when the run is
 * enabled, not suspended and watches `tf`. A fault suspends the run and
 * leaves its state as it was.
 */
export function feedRun(run: StrategyRun, tf: Timeframe, candle: Candle, position: Position | null, instrument: Instrument, entries: readonly OrderIntent[] = [], account?: StrategyAccount): RunStep {
  run.memory.feed(tf, candle);
  if (!run.config.enabled || run.suspended || !run.memory.watch.timeframes.includes(tf)) return { run, changed: false, draft: null, cancels: [] };
  const out = stepStrategy(strategyDefinition(run.config.kind), run.config.params, run.memory, run.state, { tf, candle, position, entries, strategyId: run.config.id, budgetOps: stepBudgetOps(run.config), ...(account ? { account } : {}) }, instrument);
  return afterStep(run, out, { atMs: bucketEnd(tf, candle.t), timeframe: tf, candleT: candle.t });
}

/** A tick: a step of a run that watches ticks (enabled, not suspended). */
export function tickRun(run: StrategyRun, quote: Quote, position: Position | null, instrument: Instrument, entries: readonly OrderIntent[] = [], account?: StrategyAccount): RunStep {
  if (!run.config.enabled || run.suspended || !run.memory.watch.ticks) return { run, changed: false, draft: null, cancels: [] };
  const out = stepStrategy(strategyDefinition(run.config.kind), run.config.params, run.memory, run.state, { tick: quote, position, entries, strategyId: run.config.id, budgetOps: stepBudgetOps(run.config), ...(account ? { account } : {}) }, instrument);
  return afterStep(run, out, { atMs: quote.ts, timeframe: "tick", candleT: quote.ts });
}

function afterStep(run: StrategyRun, out: StepOutcome, at: Omit<StrategySuspension, keyof StrategyFault>): RunStep {
  if (!out.ok) return { run: { ...run, suspended: { ...out.fault, ...at } }, changed: true, draft: null, fault: out.fault };
  return { run: { ...run, state: out.state }, changed: true, draft: out.draft, cancels: out.cancels };
}
