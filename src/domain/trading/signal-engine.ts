import type { Candle, Timeframe } from "../candle.ts";
import { bucketEnd, bucketStart } from "../fx-time.ts";
import type { Instrument } from "../instruments.ts";
import type { StrategyAccount } from "../strategy/api.ts";
import { feedRun, tickRun, type RunStep, type StrategyRun } from "../strategy/run.ts";
import type { StrategyFault } from "../strategy/step.ts";
import { signalId } from "./client-order-id.ts";
import type { Position } from "./position.ts";
import type { OrderIntent, Quote, Signal } from "./types.ts";

/**
 * Feed one closed candle (or a tick) to every strategy on a pair: each run that reads
 * its timeframe advances its memory, each enabled run that watches it steps;
 * a step that fails suspends its run (changed, to be saved) and is reported;
 * the resting entries a step withdrew come back as `cancels`.
 * The actor persists the new states and signals, a backtest keeps them in
 * memory. Signal ids are derived from (pair, strategy, timeframe, candle,
 * type), so the same candle can never produce two different signals for one
 * strategy.
 */
export function runStrategies(
  runs: readonly StrategyRun[],
  closed: { tf: Timeframe; candle: Candle },
  positions: readonly Position[],
  instrument: Instrument,
  /** The strategies' resting entries (limit and stop intents). */
  entries: readonly OrderIntent[] = [],
  account?: StrategyAccount,
): StrategiesStep {
  const place: SignalPlace = { timeframe: closed.tf, idTimeframe: closed.tf, candleT: closed.candle.t, idT: closed.candle.t, ts: bucketEnd(closed.tf, closed.candle.t) };
  return stepRuns(runs, positions, instrument, entries, (run, position, own) => feedRun(run, closed.tf, closed.candle, position, instrument, own, account), () => place);
}

/**
 * A tick: every run that watches ticks steps (onTick). Its signals are named
 * by the tick ("tick" and its time in the id, so never one of a candle's) and
 * placed on the open candle of the strategy's first timeframe.
 */
export function runTickStrategies(runs: readonly StrategyRun[], quote: Quote, positions: readonly Position[], instrument: Instrument, entries: readonly OrderIntent[] = [], account?: StrategyAccount): StrategiesStep {
  return stepRuns(
    runs, positions, instrument, entries,
    (run, position, own) => tickRun(run, quote, position, instrument, own, account),
    (run) => {
      const tf = run.memory.watch.timeframes[0] as Timeframe;
      return { timeframe: tf, idTimeframe: "tick", candleT: bucketStart(tf, quote.ts), idT: quote.ts, ts: quote.ts };
    },
  );
}

export interface StrategiesStep {
  runs: StrategyRun[];
  changed: StrategyRun[];
  signals: Signal[];
  faults: { strategyId: string; fault: StrategyFault }[];
  cancels: OrderIntent[];
}

/** Where a signal sits (its timeframe, candle and decision time) and what its id is made of. */
type SignalPlace = { timeframe: Timeframe; idTimeframe: Timeframe | "tick"; candleT: number; idT: number; ts: number };

function stepRuns(
  runs: readonly StrategyRun[],
  positions: readonly Position[],
  instrument: Instrument,
  entries: readonly OrderIntent[],
  stepOne: (run: StrategyRun, position: Position | null, own: readonly OrderIntent[]) => RunStep,
  placeOf: (run: StrategyRun) => SignalPlace,
): StrategiesStep {
  const out: StrategiesStep = { runs: [], changed: [], signals: [], faults: [], cancels: [] };
  for (const run of runs) {
    const position = positions.find((p) => p.strategyId === run.config.id) ?? null;
    const own = entries.filter((e) => e.strategyId === run.config.id);
    const step = stepOne(run, position, own);
    out.runs.push(step.run);
    if ("fault" in step) {
      out.faults.push({ strategyId: run.config.id, fault: step.fault });
      out.changed.push(step.run);
      continue;
    }
    if (step.changed) out.changed.push(step.run);
    for (const id of step.cancels) out.cancels.push(own.find((e) => e.clientOrderId === id)!);
    const draft = step.draft;
    if (!draft) continue;
    const at = placeOf(run);
    out.signals.push({
      id: signalId(instrument.symbol, run.config.id, at.idTimeframe, at.idT, draft.type),
      pair: instrument.symbol,
      strategyId: run.config.id,
      type: draft.type,
      confidence: draft.confidence,
      reason: draft.reason,
      timeframe: at.timeframe,
      candleT: at.candleT,
      ts: at.ts,
      ...(draft.stopLoss !== undefined ? { stopLoss: draft.stopLoss } : {}),
      ...(draft.takeProfit !== undefined ? { takeProfit: draft.takeProfit } : {}),
      ...(draft.order !== undefined ? { order: draft.order } : {}),
      metadata: draft.metadata,
    });
  }
  return out;
}
