import * as v from "valibot";
import { EpochMs, PairSymbol, TimeframeSchema } from "./common.ts";

/** A strategy's signal on the wire (the stored `trading_signals` record plus its context). */
export const WireSignal = v.object({
  id: v.string(),
  pair: PairSymbol,
  strategyId: v.string(),
  timeframe: TimeframeSchema,
  type: v.picklist(["buy", "sell", "close"]),
  confidence: v.pipe(v.number(), v.minValue(0), v.maxValue(1)),
  reason: v.string(),
  /** Decision time, epoch ms. */
  time: EpochMs,
  /** Start of the candle that produced it. */
  candleT: EpochMs,
  stopLoss: v.optional(v.number()),
  takeProfit: v.optional(v.number()),
  metadata: v.record(v.string(), v.union([v.number(), v.string(), v.boolean(), v.null()])),
});
export type WireSignal = v.InferOutput<typeof WireSignal>;

export const SignalMessage = v.object({ type: v.literal("signal"), signal: WireSignal });
export type SignalMessage = v.InferOutput<typeof SignalMessage>;
