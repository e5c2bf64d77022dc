/**
 * Synchronous backtest over bars already in memory (tests, small ranges).
 * Long ranges stream from the data lake instead (lake-reader.ts); both feed
 * the same Backtester.
 */
import type { Candle } from "../domain/candle.ts";
import { MINUTE_MS } from "../domain/fx-time.ts";
import { Backtester, type BacktestOptions } from "./backtester.ts";
import type { BacktestResult } from "./result.ts";

/** Run over `bars` of `barMs` each (1-minute candles by default; 0 for ticks as one-point bars). */
export function runBacktest(bars: Iterable<Candle>, options: BacktestOptions, barMs = MINUTE_MS): BacktestResult {
  const engine = new Backtester(options);
  for (const bar of bars) engine.onBar(bar, bar.t + barMs);
  return engine.finish();
}
