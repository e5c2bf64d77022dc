import * as v from "valibot";

const Nullable = v.nullable(v.number());

/** Indicator values on a timeframe's latest closed candle (mid prices); null until warmed up. */
export const IndicatorValuesSchema = v.object({
  sma: Nullable,
  ema: Nullable,
  rsi: Nullable,
  atr: Nullable,
  bollinger: v.nullable(v.object({ upper: v.number(), middle: v.number(), lower: v.number() })),
  macd: v.nullable(v.object({ macd: v.number(), signal: v.number(), histogram: v.number() })),
});
export type IndicatorValuesWire = v.InferOutput<typeof IndicatorValuesSchema>;
