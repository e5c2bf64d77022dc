/**
 * Everything a strategy file imports, in one place:
 *
 *   import { defineStrategy, v, param, SMA } from "../src/domain/strategy/index.ts";
 *
 * the entry point and its types (api.ts), valibot for the parameters with a
 * few ready-made parameter schemas, and trading-signals' indicators.
 */
import * as v from "valibot";
import { TIMEFRAMES } from "../candle.ts";

export * from "./api.ts";
export type { Timeframe } from "../candle.ts";
export * from "trading-signals";
export { v };

/** Parameter schemas with a default, for the common cases. */
export const param = {
  /** A candle timeframe: 1m, 5m, 15m, 1h, 4h or 1D. */
  timeframe: (fallback: (typeof TIMEFRAMES)[number]) => v.optional(v.picklist(TIMEFRAMES), fallback),
  /** A whole number of candles, 2..500 (a look-back period). */
  period: (fallback: number) => v.optional(v.pipe(v.number(), v.integer(), v.minValue(2), v.maxValue(500)), fallback),
  /** A number in [min, max]. */
  number: (fallback: number, min: number, max: number) => v.optional(v.pipe(v.number(), v.finite(), v.minValue(min), v.maxValue(max)), fallback),
  /** One of a list of strings. */
  choice: <const T extends readonly [string, ...string[]]>(options: T, fallback: T[number]) => v.optional(v.picklist(options), fallback),
};
