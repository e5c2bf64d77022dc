import * as v from "valibot";
import { WireSignal } from "./signal.ts";

/** What the runtime POSTs to the advisor endpoint. */
export const AdvisorRequest = v.object({
  signal: WireSignal,
  order: v.object({ pair: v.string(), side: v.picklist(["buy", "sell"]), units: v.number(), reduceOnly: v.boolean() }),
});
export type AdvisorRequest = v.InferOutput<typeof AdvisorRequest>;

/** What the advisor must answer (JSON). Resizing can only shrink the order. */
export const AdvisorResponse = v.variant("action", [
  v.object({ action: v.literal("accept"), reason: v.optional(v.pipe(v.string(), v.maxLength(500))) }),
  v.object({ action: v.literal("veto"), reason: v.optional(v.pipe(v.string(), v.maxLength(500))) }),
  v.object({
    action: v.literal("resize"),
    units: v.pipe(v.number(), v.integer(), v.minValue(1)),
    reason: v.optional(v.pipe(v.string(), v.maxLength(500))),
  }),
]);
export type AdvisorResponse = v.InferOutput<typeof AdvisorResponse>;
