import * as v from "valibot";

const Amount = v.pipe(v.number(), v.finite(), v.minValue(0), v.maxValue(1e12));

/** Portfolio limits in the account currency (strict: a misspelt key fails). */
export const PortfolioLimits = v.strictObject({
  maxGrossExposure: v.optional(Amount, 1_000_000),
  maxNetExposurePerCurrency: v.optional(Amount, 500_000),
  maxOpenPositions: v.optional(v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(10_000)), 20),
  maxExposurePerPair: v.optional(Amount, 250_000),
  /** Realised + unrealised loss since the last 17:00 New York roll that moves trading to REDUCING. */
  dailyLossLimit: v.optional(Amount, 10_000),
  /** Fall of equity from its peak that HALTS trading. */
  maxDrawdown: v.optional(Amount, 25_000),
});
export type PortfolioLimits = v.InferOutput<typeof PortfolioLimits>;

export const TRADING_STATES = ["ACTIVE", "REDUCING", "HALTED"] as const;
export type TradingState = (typeof TRADING_STATES)[number];

export const KillSwitchBody = v.object({
  action: v.picklist(["halt", "resume", "flatten"]),
  reason: v.optional(v.pipe(v.string(), v.maxLength(500))),
});
export type KillSwitchBody = v.InferOutput<typeof KillSwitchBody>;

/** Why the coordinator refused an order (data, like per-pair risk rejections). */
export const PortfolioRejectionSchema = v.variant("type", [
  v.object({ type: v.literal("trading_halted"), reason: v.string() }),
  v.object({ type: v.literal("reduce_only"), reason: v.string() }),
  v.object({ type: v.literal("max_gross_exposure"), limit: v.number(), actual: v.number() }),
  v.object({ type: v.literal("max_net_exposure"), currency: v.string(), limit: v.number(), actual: v.number() }),
  v.object({ type: v.literal("max_exposure_per_pair"), limit: v.number(), actual: v.number() }),
  v.object({ type: v.literal("max_open_positions"), limit: v.number(), actual: v.number() }),
  v.object({ type: v.literal("no_conversion_rate"), currency: v.string() }),
  v.object({ type: v.literal("coordinator_unreachable"), detail: v.string() }),
  /** The approval request itself was malformed (schemas/portfolio-messages.ts): refused, never booked. */
  v.object({ type: v.literal("invalid_request"), detail: v.string() }),
]);
export type PortfolioRejection = v.InferOutput<typeof PortfolioRejectionSchema>;
