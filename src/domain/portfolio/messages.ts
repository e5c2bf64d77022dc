/**
 * What pairs and the coordinator say to each other: approval requests, the
 * figures a pair reports, the trading state, and what a pair holds in flight
 * for a new life of the coordinator. Plain data, shared by both actors (and by
 * anything that plays the portfolio's part, such as a backtest). The schemas
 * are in schemas/portfolio-messages.ts; the types are inferred from them and
 * re-exported here for the domain code that speaks them.
 */
import * as v from "valibot";
import { issuesToDetails } from "../../../schemas/common.ts";

export type { ApprovalRequest, PairInFlight, PairReport, TradingStatus } from "../../../schemas/portfolio-messages.ts";

/**
 * Check a message against its schema: the parsed value, or why it is refused
 * in one line (`path: message; ...`), for a refusal or an error the sender can read.
 */
export function readMessage<S extends v.GenericSchema>(schema: S, input: unknown): { ok: true; value: v.InferOutput<S> } | { ok: false; detail: string } {
  const parsed = v.safeParse(schema, input);
  if (parsed.success) return { ok: true, value: parsed.output };
  const detail = issuesToDetails(parsed.issues)
    .map((i) => (i.path ? `${i.path}: ${i.message}` : i.message))
    .join("; ");
  return { ok: false, detail: detail.slice(0, 500) };
}
