import * as v from "valibot";
import { MANUAL_STRATEGY_ID } from "../src/domain/trading/risk.ts";
import { TimeframeSchema } from "./common.ts";
import { AddLevelsSchema, BreakEvenSchema, Pips } from "./trading-events.ts";

const Period = v.pipe(v.number(), v.integer(), v.minValue(2), v.maxValue(500));
const Multiple = v.pipe(v.number(), v.minValue(0.1), v.maxValue(20));
const PriceSource = v.picklist(["bid", "mid"]);

export const EmaCrossParams = v.pipe(
  v.object({
    timeframe: v.optional(TimeframeSchema, "15m"),
    fast: v.optional(Period, 12),
    slow: v.optional(Period, 26),
    atrPeriod: v.optional(Period, 14),
    /** Stop loss at this many ATRs from the close. */
    atrStopMultiple: v.optional(Multiple, 2),
    /** Take profit at this many ATRs from the close; null = none. */
    atrTakeProfitMultiple: v.optional(v.nullable(Multiple), 3),
    price: v.optional(PriceSource, "mid"),
  }),
  v.check((p) => p.fast < p.slow, "fast must be shorter than slow"),
);
export type EmaCrossParams = v.InferOutput<typeof EmaCrossParams>;

export const RsiReversionParams = v.pipe(
  v.object({
    timeframe: v.optional(TimeframeSchema, "15m"),
    period: v.optional(Period, 14),
    oversold: v.optional(v.pipe(v.number(), v.minValue(1), v.maxValue(49)), 30),
    overbought: v.optional(v.pipe(v.number(), v.minValue(51), v.maxValue(99)), 70),
    /** Close the position when RSI crosses back over this level. */
    exitLevel: v.optional(v.pipe(v.number(), v.minValue(1), v.maxValue(99)), 50),
    atrPeriod: v.optional(Period, 14),
    atrStopMultiple: v.optional(Multiple, 1.5),
    price: v.optional(PriceSource, "mid"),
  }),
  v.check((p) => p.oversold < p.exitLevel && p.exitLevel < p.overbought, "need oversold < exitLevel < overbought"),
);
export type RsiReversionParams = v.InferOutput<typeof RsiReversionParams>;

/** The issue-5 reference strategy: stop and reverse on SMA crosses, no stops. */
export const SmaCrossParams = v.pipe(
  v.object({
    timeframe: v.optional(TimeframeSchema, "1h"),
    fast: v.optional(Period, 20),
    slow: v.optional(Period, 50),
    price: v.optional(PriceSource, "bid"),
  }),
  v.check((p) => p.fast < p.slow, "fast must be shorter than slow"),
);
export type SmaCrossParams = v.InferOutput<typeof SmaCrossParams>;

const StrategyId = v.pipe(
  v.string(),
  v.regex(/^[a-z0-9][a-z0-9-]{0,39}$/, "ids are 1-40 of a-z, 0-9 and -"),
  // Manual orders trade under "manual": a strategy of that name would share their position.
  v.check((id) => id !== MANUAL_STRATEGY_ID, `"${MANUAL_STRATEGY_ID}" is reserved for manual orders`),
);
const Units = v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(100_000_000));

/** Protective settings given to every position the strategy opens (its stop loss comes with each signal). */
const Protection = v.object({
  trailingStopPips: v.optional(Pips),
  breakEven: v.optional(BreakEvenSchema),
  addLevels: v.optional(AddLevelsSchema),
});

const common = {
  id: StrategyId,
  enabled: v.optional(v.boolean(), true),
  units: v.optional(Units, 10_000),
  protection: v.optional(Protection),
};

/** One strategy instance on one pair, as configured at run time. */
export const StrategyConfig = v.variant("kind", [
  v.object({ ...common, kind: v.literal("ema-cross"), params: v.optional(EmaCrossParams, {}) }),
  v.object({ ...common, kind: v.literal("rsi-reversion"), params: v.optional(RsiReversionParams, {}) }),
  v.object({ ...common, kind: v.literal("sma-cross"), params: v.optional(SmaCrossParams, {}) }),
]);
export type StrategyConfig = v.InferOutput<typeof StrategyConfig>;
export type StrategyKind = StrategyConfig["kind"];

export const STRATEGIES_PER_PAIR_MAX = 8;

export const StrategyConfigList = v.pipe(
  v.array(StrategyConfig),
  v.maxLength(STRATEGIES_PER_PAIR_MAX),
  v.check((list) => new Set(list.map((s) => s.id)).size === list.length, "strategy ids must be unique on a pair"),
);

/** `PUT /api/admin/pairs/:pair/strategies`. */
export const StrategiesBody = v.object({ strategies: StrategyConfigList });
