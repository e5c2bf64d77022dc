import * as v from "valibot";

/*
 * Trading configuration and the risk rejections that are stored and broadcast.
 * Config objects are strict: they are persisted per pair and typed by
 * operators, and a misspelt key ("maxPositonUnits") must fail loudly instead of
 * silently falling back to the default.
 */

/** Units are integer base-currency units; 10^9 keeps units * price products exact in float64. */
const UNITS_MAX = 1_000_000_000;

/** Rates are whole cents per million so that commissions can be computed exactly (fill-model.ts). */
function isWholeCents(n: number): boolean {
  return Math.abs(n * 100 - Math.round(n * 100)) < 1e-6;
}

export const FillModelConfig = v.strictObject({
  /** Added to the ask for buys and taken from the bid for sells, on market and stop fills. */
  slippagePips: v.optional(v.pipe(v.number(), v.finite(), v.minValue(0), v.maxValue(100)), 0),
  /** Quote currency per 1,000,000 units traded (OANDA-style), e.g. 50 = 0.5 pip-equivalent on EUR_USD. */
  commissionPerMillion: v.optional(
    v.pipe(v.number(), v.finite(), v.minValue(0), v.maxValue(100_000), v.check(isWholeCents, "commissionPerMillion must have at most 2 decimals")),
    0,
  ),
});
export type FillModelConfig = v.InferOutput<typeof FillModelConfig>;

/** Fills at the quoted bid/ask with no commission: real quotes already carry the spread. */
export const DEFAULT_FILL_MODEL: Readonly<FillModelConfig> = Object.freeze(v.parse(FillModelConfig, {}));

export const STOP_LOSS_POLICIES = ["strategy", "always", "never"] as const;

export const RiskLimits = v.strictObject({
  /** Largest absolute net position after a risk-increasing order, in units (0 = no new risk). */
  maxPositionUnits: v.optional(v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(UNITS_MAX)), 100_000),
  /** Widest spread at which a risk-increasing order may be sent. 5 pips covers majors and crosses outside the daily roll. */
  maxSpreadPips: v.optional(v.pipe(v.number(), v.finite(), v.minValue(0), v.maxValue(1_000)), 5),
  /** Orders accepted in any sliding 60 s window, per pair (0 = no new risk). */
  maxOrdersPerMinute: v.optional(v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(1_000)), 10),
  /** "strategy": strategy orders need a stop loss, manual ones do not. */
  stopLossRequired: v.optional(v.picklist(STOP_LOSS_POLICIES), "strategy"),
  /** Oldest acceptable last quote when a risk-increasing order is checked. */
  stalePriceMs: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(86_400_000)), 60_000),
  /** Refuse risk-increasing orders from Friday 17:00 to Sunday 17:00 New York. */
  weekendGuard: v.optional(v.boolean(), true),
});
export type RiskLimits = v.InferOutput<typeof RiskLimits>;

export const DEFAULT_RISK_LIMITS: Readonly<RiskLimits> = Object.freeze(v.parse(RiskLimits, {}));

/** Why per-pair risk refused an order. `limit` is the configured bound, `actual` what the order would have met. */
export const RiskRejectionSchema = v.variant("type", [
  /** Malformed intent (a caller bug, refused rather than guessed at). */
  v.object({ type: v.literal("invalid_order"), field: v.picklist(["units", "side", "pair"]) }),
  /**
   * A price or level that is no price of the pair (below one point, not finite), outside the band
   * around the mid, on the wrong side of the market, or given before the pair has a quote
   * (src/domain/trading/order-prices.ts). Refused for every order, reduce-only ones too.
   */
  v.object({
    type: v.literal("invalid_price"),
    field: v.picklist(["price", "stopLoss", "takeProfit", "trailingStopPips", "breakEven", "addLevels"]),
    problem: v.picklist(["not_a_price", "below_one_point", "out_of_band", "wrong_side", "no_quote"]),
  }),
  /** The broker marks the pair not tradeable now (OANDA: a halted or closed market); every order waits for it. */
  v.object({ type: v.literal("market_halted") }),
  /** `actual` is the check time; `reopensAtMs` the next Sunday 17:00 New York. */
  v.object({ type: v.literal("market_closed"), actual: v.number(), reopensAtMs: v.number() }),
  /** Quote age in ms (negative when stamped ahead of the clock); null when the pair has no quote yet. */
  v.object({ type: v.literal("stale_price"), limit: v.number(), actual: v.nullable(v.number()) }),
  /** Spread in pips. */
  v.object({ type: v.literal("max_spread"), limit: v.number(), actual: v.number() }),
  v.object({ type: v.literal("stop_loss_required") }),
  /** Absolute net units after the order, for the whole pair or for the order's strategy. */
  v.object({ type: v.literal("max_position_size"), scope: v.picklist(["pair", "strategy"]), limit: v.number(), actual: v.number() }),
  /** Orders in the last 60 s, this one included. */
  v.object({ type: v.literal("max_orders_per_minute"), limit: v.number(), actual: v.number() }),
]);
export type RiskRejection = v.InferOutput<typeof RiskRejectionSchema>;

/** `PUT /api/admin/pairs/:pair/risk`: a given object replaces the stored one. */
export const RiskBody = v.object({ limits: v.optional(RiskLimits), fillModel: v.optional(FillModelConfig) });
