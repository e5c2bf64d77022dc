/**
 * A strategy configured on a pair (or in a backtest) as it runs: its
 * configuration, its saved JSON state and its memory (candle history and
 * indicators, rebuilt after a restart: run-memory.ts). Feeding a closed
 * candle advances the memory of every run that reads its timeframe and steps
 * the enabled runs that watch it.
 */
import type { StrategyConfig } from "../../../schemas/strategy.ts";
import type { Candle, Timeframe } from "../candle.ts";
import type { Instrument } from "../instruments.ts";
import type { Position } from "../trading/position.ts";
import type { SignalDraft } from "../trading/strategy.ts";
import { strategyDefinition } from "./catalog.ts";
import { RunMemory } from "./run-memory.ts";
import { stepStrategy, type StrategyFault } from "./step.ts";

export interface StrategyRun {
  readonly config: StrategyConfig;
  /** The strategy's own state, plain JSON: saved after every step. */
  readonly state: unknown;
  /** Not saved: rebuilt from stored candles after a restart (warmUp). */
  readonly memory: RunMemory;
}

/**
 * A run of `config` with its saved state, or its initial state when there is
 * none. Throws StrategyDefinitionError when the definition cannot run with
 * these parameters (the caller validated them: a defect of the strategy).
 */
export function startRun(config: StrategyConfig, instrument: Instrument, savedState?: unknown): StrategyRun {
  const definition = strategyDefinition(config.kind);
  const memory = new RunMemory(definition, config.params, instrument);
  return { config, state: savedState === undefined ? definition.init(config.params) : savedState, memory };
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
  | { run: StrategyRun; changed: boolean; draft: SignalDraft | null }
  | { run: StrategyRun; changed: false; draft: null; fault: StrategyFault };

/**
 * A closed candle: into the run's memory, then a step when the run is
 * enabled and watches `tf`. A fault leaves the state as it was.
 */
export function feedRun(run: StrategyRun, tf: Timeframe, candle: Candle, position: Position | null, instrument: Instrument): RunStep {
  run.memory.feed(tf, candle);
  if (!run.config.enabled || !run.memory.watch.timeframes.includes(tf)) return { run, changed: false, draft: null };
  const definition = strategyDefinition(run.config.kind);
  const out = stepStrategy(definition, run.config.params, run.memory, run.state, { tf, candle, position, units: run.config.units, strategyId: run.config.id }, instrument);
  if (!out.ok) return { run, changed: false, draft: null, fault: out.fault };
  return { run: { config: run.config, state: out.state, memory: run.memory }, changed: true, draft: out.draft };
}
