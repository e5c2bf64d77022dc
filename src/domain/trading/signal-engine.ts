import type { Candle, Timeframe } from "../candle.ts";
import { bucketEnd } from "../fx-time.ts";
import type { Instrument } from "../instruments.ts";
import type { StrategyAccount } from "../strategy/api.ts";
import { feedRun, type StrategyRun } from "../strategy/run.ts";
import type { StrategyFault } from "../strategy/step.ts";
import { signalId } from "./client-order-id.ts";
import type { Position } from "./position.ts";
import type { OrderIntent, Signal } from "./types.ts";

/**
 * Feed one closed candle to every strategy on a pair: each run that reads
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
): { runs: StrategyRun[]; changed: StrategyRun[]; signals: Signal[]; faults: { strategyId: string; fault: StrategyFault }[]; cancels: OrderIntent[] } {
  const closeTs = bucketEnd(closed.tf, closed.candle.t);
  const next: StrategyRun[] = [];
  const changed: StrategyRun[] = [];
  const signals: Signal[] = [];
  const faults: { strategyId: string; fault: StrategyFault }[] = [];
  const cancels: OrderIntent[] = [];
  for (const run of runs) {
    const position = positions.find((p) => p.strategyId === run.config.id) ?? null;
    const own = entries.filter((e) => e.strategyId === run.config.id);
    const out = feedRun(run, closed.tf, closed.candle, position, instrument, own, account);
    next.push(out.run);
    if ("fault" in out) {
      faults.push({ strategyId: run.config.id, fault: out.fault });
      changed.push(out.run);
      continue;
    }
    if (out.changed) changed.push(out.run);
    for (const id of out.cancels) cancels.push(own.find((e) => e.clientOrderId === id)!);
    const draft = out.draft;
    if (!draft) continue;
    signals.push({
      id: signalId(instrument.symbol, run.config.id, closed.tf, closed.candle.t, draft.type),
      pair: instrument.symbol,
      strategyId: run.config.id,
      type: draft.type,
      confidence: draft.confidence,
      reason: draft.reason,
      timeframe: closed.tf,
      candleT: closed.candle.t,
      ts: closeTs,
      ...(draft.stopLoss !== undefined ? { stopLoss: draft.stopLoss } : {}),
      ...(draft.takeProfit !== undefined ? { takeProfit: draft.takeProfit } : {}),
      ...(draft.order !== undefined ? { order: draft.order } : {}),
      metadata: draft.metadata,
    });
  }
  return { runs: next, changed, signals, faults, cancels };
}
