import type { Candle, Timeframe } from "../candle.ts";
import { bucketEnd } from "../fx-time.ts";
import type { IndicatorValues } from "../indicators.ts";
import type { Instrument } from "../instruments.ts";
import { signalId } from "./client-order-id.ts";
import { stepRun, type StrategyRun } from "./strategy-registry.ts";
import type { Signal } from "./types.ts";

/**
 * Feed one closed candle to every enabled strategy on a pair. Pure: the
 * actor persists the new states and signals, a backtest keeps them in memory.
 * Signal ids are derived from (pair, strategy, timeframe, candle, type), so the
 * same candle can never produce two different signals for one strategy.
 */
export function runStrategies(
  runs: readonly StrategyRun[],
  closed: { tf: Timeframe; candle: Candle; indicators: IndicatorValues | null },
  instrument: Instrument,
): { runs: StrategyRun[]; changed: StrategyRun[]; signals: Signal[] } {
  const closeTs = bucketEnd(closed.tf, closed.candle.t);
  const next: StrategyRun[] = [];
  const changed: StrategyRun[] = [];
  const signals: Signal[] = [];
  for (const run of runs) {
    if (!run.config.enabled) {
      next.push(run);
      continue;
    }
    const out = stepRun(run, { tf: closed.tf, candle: closed.candle, indicators: closed.indicators, closeTs }, instrument);
    next.push(out.run);
    if (out.run !== run) changed.push(out.run);
    const draft = out.signal;
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
      metadata: draft.metadata,
    });
  }
  return { runs: next, changed, signals };
}
