import type { StrategyConfig, StrategyKind } from "../../../schemas/strategy.ts";
import type { Instrument } from "../instruments.ts";
import { emaCross } from "./strategies/ema-cross.ts";
import { rsiReversion } from "./strategies/rsi-reversion.ts";
import { smaCross } from "./strategies/sma-cross.ts";
import type { SignalDraft, StrategyDefinition, StrategyInput } from "./strategy.ts";
import type { Timeframe } from "../candle.ts";

// Each definition is typed by its own params; the registry dispatches on `kind`.
const DEFINITIONS: Record<StrategyKind, StrategyDefinition<never, unknown>> = {
  "ema-cross": emaCross as StrategyDefinition<never, unknown>,
  "rsi-reversion": rsiReversion as StrategyDefinition<never, unknown>,
  "sma-cross": smaCross as StrategyDefinition<never, unknown>,
};

export const STRATEGY_KINDS = Object.keys(DEFINITIONS) as StrategyKind[];

/** A configured strategy with its saved state: what a pair actor (or a backtest) keeps per strategy. */
export interface StrategyRun {
  config: StrategyConfig;
  state: unknown;
}

export function startRun(config: StrategyConfig): StrategyRun {
  return { config, state: DEFINITIONS[config.kind].init(config.params as never) };
}

export function runTimeframe(run: StrategyRun): Timeframe {
  return DEFINITIONS[run.config.kind].timeframe(run.config.params as never);
}

/** Feed one closed candle; candles of other timeframes are ignored. */
export function stepRun(run: StrategyRun, input: StrategyInput, instrument: Instrument): { run: StrategyRun; signal: SignalDraft | null } {
  if (input.tf !== runTimeframe(run)) return { run, signal: null };
  const out = DEFINITIONS[run.config.kind].onCandle(run.state as never, input, run.config.params as never, instrument);
  return { run: { config: run.config, state: out.state }, signal: out.signal };
}
