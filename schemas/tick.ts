import * as v from "valibot";
import { isRuntimeId } from "../src/domain/trading/client-order-id.ts";
import { EpochMs } from "./common.ts";

/** Largest tick batch one POST may carry; larger bodies are refused with 413. */
export const TICK_BATCH_MAX = 1000;
/** Largest request body accepted on the tick route, in bytes. */
export const TICK_BODY_MAX_BYTES = 256 * 1024;

/**
 * A tick on the wire: prices are decimal numbers in the pair's display precision.
 * Finiteness and positivity are checked by the domain (so each bad tick gets a
 * typed reason and the rest of the batch still goes in), not here.
 */
export const WireTick = v.object({
  ts: EpochMs,
  bid: v.number(),
  ask: v.number(),
});
export type WireTick = v.InferOutput<typeof WireTick>;

/**
 * A feed's name for one batch, so that sending it again (its answer was lost) stores nothing twice:
 * the pair answers a repeat with what it stored (remembered for a day). Any id unique to the batch.
 */
export const BatchId = v.pipe(
  v.string(),
  v.regex(/^[A-Za-z0-9_.:-]{1,64}$/, "1-64 of A-Z a-z 0-9 _ . : -"),
  // The runtime's own feed names its batches this way: no client batch may take one of its ids.
  v.check((id) => !isRuntimeId(id), "ids ending in '-' and 16 hex digits are reserved for the runtime's own batches"),
);

export const TickBatch = v.object({
  ticks: v.pipe(v.array(WireTick), v.minLength(1), v.maxLength(TICK_BATCH_MAX)),
  /** History being replayed (npm run replay): the pair trades on the ticks' clock instead of the wall clock. */
  replay: v.optional(v.boolean(), false),
  batchId: v.optional(BatchId),
});
export type TickBatch = v.InferOutput<typeof TickBatch>;

export const TickRejectionSchema = v.variant("type", [
  v.object({ type: v.literal("invalid_price"), field: v.picklist(["bid", "ask"]) }),
  v.object({ type: v.literal("crossed"), bid: v.number(), ask: v.number() }),
  v.object({ type: v.literal("spread_too_wide"), spreadPips: v.number(), maxSpreadPips: v.number() }),
  v.object({ type: v.literal("out_of_band"), mid: v.number(), low: v.number(), high: v.number() }),
  v.object({ type: v.literal("future_timestamp"), ts: v.number(), maxTs: v.number() }),
  v.object({ type: v.literal("out_of_order"), ts: v.number(), lastTs: v.number() }),
  v.object({ type: v.literal("candle_closed"), ts: v.number(), closedUntil: v.number() }),
]);

export const TickBatchResult = v.object({
  accepted: v.number(),
  rejected: v.array(v.object({ index: v.number(), reason: TickRejectionSchema })),
});
export type TickBatchResult = v.InferOutput<typeof TickBatchResult>;

/** A batchId sent again with other ticks: nothing was stored (HTTP 409). */
export interface TickBatchConflict {
  conflict: { batchId: string };
}
