import * as v from "valibot";
import { EpochMs, PairSymbol, TimeframeSchema } from "./common.ts";

const Ohlc = v.object({ o: v.number(), h: v.number(), l: v.number(), c: v.number() });

/**
 * A candle on the wire: bid and ask OHLC in decimal prices, start time `t`,
 * tick count `n`, and `complete` = false while the period is still open.
 */
export const WireCandle = v.object({
  t: EpochMs,
  bid: Ohlc,
  ask: Ohlc,
  n: v.number(),
  complete: v.boolean(),
});
export type WireCandle = v.InferOutput<typeof WireCandle>;

export const CANDLE_QUERY_LIMIT_MAX = 5000;
export const CANDLE_QUERY_LIMIT_DEFAULT = 500;

/** `from` / `to` accept epoch ms or ISO-8601. */
const Instant = v.pipe(
  v.string(),
  v.transform((s) => (/^\d+$/.test(s) ? Number(s) : Date.parse(s))),
  v.check((n) => Number.isFinite(n), "expected epoch ms or an ISO-8601 date"),
);

export const CandleQuery = v.object({
  tf: v.optional(TimeframeSchema, "1m"),
  from: v.optional(Instant),
  to: v.optional(Instant),
  limit: v.optional(
    v.pipe(
      v.string(),
      v.regex(/^\d+$/, "limit must be a positive integer"),
      v.transform(Number),
      v.minValue(1),
      v.maxValue(CANDLE_QUERY_LIMIT_MAX),
    ),
  ),
});
export type CandleQuery = v.InferOutput<typeof CandleQuery>;

export const CandleList = v.object({
  pair: PairSymbol,
  tf: TimeframeSchema,
  candles: v.array(WireCandle),
});
export type CandleList = v.InferOutput<typeof CandleList>;
