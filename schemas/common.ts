import * as v from "valibot";
import { TIMEFRAMES } from "../src/domain/candle.ts";

/** OANDA-style pair symbol, e.g. EUR_USD. Whether it is served is checked by the router. */
export const PairSymbol = v.pipe(v.string(), v.regex(/^[A-Z]{3}_[A-Z]{3}$/, "pair must look like EUR_USD"));

export const TimeframeSchema = v.picklist(TIMEFRAMES);

/** Epoch milliseconds, UTC. Bounded to years 1970..2200 so arithmetic stays exact. */
export const EpochMs = v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(7_258_118_400_000));

/** Every error the runtime answers with, HTTP or WebSocket, has this shape. */
export const ErrorBody = v.object({
  error: v.object({
    code: v.string(),
    message: v.string(),
    details: v.optional(v.unknown()),
  }),
});
export type ErrorBody = v.InferOutput<typeof ErrorBody>;

/** Turn valibot issues into a short, machine-readable list. */
export function issuesToDetails(issues: readonly v.BaseIssue<unknown>[]): { path: string; message: string }[] {
  return issues.slice(0, 20).map((issue) => ({
    path: issue.path?.map((p) => String(p.key)).join(".") ?? "",
    message: issue.message,
  }));
}
