import * as v from "valibot";
import { isRuntimeId } from "../src/domain/trading/client-order-id.ts";
import { EpochMs, PairSymbol } from "./common.ts";
import { RiskRejectionSchema } from "./trading.ts";
import { PortfolioRejectionSchema } from "./portfolio.ts";

/** A strategy order not sent because the broker is down (its signal is not kept for later: it would be stale). */
export const BrokerRejectionSchema = v.object({ type: v.literal("broker_unavailable"), detail: v.string() });
export type BrokerRejection = v.InferOutput<typeof BrokerRejectionSchema>;

const Side = v.picklist(["buy", "sell"]);
const Price = v.number();

export const WireOrder = v.object({
  clientOrderId: v.string(),
  pair: PairSymbol,
  strategyId: v.string(),
  side: Side,
  units: v.number(),
  type: v.picklist(["market", "limit", "stop"]),
  price: v.optional(Price),
  stopLoss: v.optional(Price),
  takeProfit: v.optional(Price),
  trailingStopPips: v.optional(v.number()),
  reduceOnly: v.boolean(),
  signalId: v.optional(v.string()),
  status: v.picklist(["pending", "working", "filled", "rejected"]),
  rejectReason: v.optional(v.string()),
  /** The advisor's answer (or the fallback and why), when one was asked. */
  advice: v.optional(
    v.object({
      source: v.picklist(["advisor", "fallback"]),
      action: v.picklist(["accept", "veto", "resize"]),
      ms: v.number(),
      units: v.optional(v.number()),
      reason: v.optional(v.string()),
      failure: v.optional(v.string()),
      detail: v.optional(v.string()),
    }),
  ),
  createdAt: EpochMs,
});
export type WireOrder = v.InferOutput<typeof WireOrder>;

export const WireFill = v.object({
  id: v.string(),
  clientOrderId: v.string(),
  pair: PairSymbol,
  side: Side,
  units: v.number(),
  price: Price,
  /** Quote currency. */
  commission: v.number(),
  ts: EpochMs,
});
export type WireFill = v.InferOutput<typeof WireFill>;

export const WirePosition = v.object({
  id: v.string(),
  pair: PairSymbol,
  strategyId: v.string(),
  status: v.picklist(["OPEN", "CLOSED"]),
  side: Side,
  units: v.number(),
  entryPrice: Price,
  stopLoss: v.optional(Price),
  takeProfit: v.optional(Price),
  trailingStopPips: v.optional(v.number()),
  trailingStopPrice: v.optional(Price),
  breakEvenStatus: v.optional(v.picklist(["PENDING", "ARMED", "MOVED"])),
  /** Break-even: the price at which it arms, and the stop level it then moves to. */
  breakEvenArmPrice: v.optional(Price),
  breakEvenPrice: v.optional(Price),
  accountCurrency: v.string(),
  /** Quote currency and account currency, decimal (cents exact). */
  realisedPnlQuote: v.number(),
  realisedPnlAccount: v.number(),
  unrealisedPnlQuote: v.nullable(v.number()),
  unrealisedPnlAccount: v.nullable(v.number()),
  commissionQuote: v.number(),
  openedAt: EpochMs,
  closedAt: v.optional(EpochMs),
  version: v.number(),
});
export type WirePosition = v.InferOutput<typeof WirePosition>;

export const RiskEvent = v.object({
  clientOrderId: v.string(),
  strategyId: v.string(),
  /** Per-pair risk or the portfolio (coordinator) refused it. */
  rejection: v.union([RiskRejectionSchema, PortfolioRejectionSchema, BrokerRejectionSchema]),
  time: EpochMs,
});

/** Trading events in the pair's room, beside market data. */
export const TRADING_MESSAGES = [
  v.object({ type: v.literal("order"), order: WireOrder }),
  v.object({ type: v.literal("fill"), fill: WireFill }),
  v.object({ type: v.literal("position"), position: WirePosition }),
  v.object({ type: v.literal("risk"), pair: PairSymbol, event: RiskEvent }),
] as const;
export const TradingMessage = v.variant("type", TRADING_MESSAGES);
export type TradingMessage = v.InferOutput<typeof TradingMessage>;

/** A distance in pips: at least 0.1, one point on every pair (5 digits, or 3 for JPY quotes), so it is never 0 once in points. */
export const Pips = v.pipe(v.number(), v.finite(), v.minValue(0.1), v.maxValue(10_000));
/** A decimal price; whether it is a price of the pair (at least one point, near the market) is the risk check's (order-prices.ts). */
const DecimalPrice = v.pipe(v.number(), v.finite(), v.gtValue(0));

/** Break-even: once price went `triggerPips` in favour, the stop moves to entry + `offsetPips`. */
export const BreakEvenSchema = v.pipe(
  v.object({ triggerPips: Pips, offsetPips: v.pipe(v.number(), v.finite(), v.minValue(0), v.maxValue(10_000)) }),
  v.check((b) => b.offsetPips < b.triggerPips, "offsetPips must be below triggerPips"),
);

/** Add-position levels: every `offsetPips` in favour add previous size x `sizeMultiplier`, `maxLevels` times. */
export const AddLevelsSchema = v.object({
  maxLevels: v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(20)),
  offsetPips: Pips,
  sizeMultiplier: v.pipe(v.number(), v.finite(), v.gtValue(0), v.maxValue(10)),
});

/** Body of POST /api/trade/execute (prices as decimal numbers). */
export const ExecuteBody = v.object({
  pair: PairSymbol,
  side: Side,
  units: v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(1_000_000_000)),
  type: v.optional(v.picklist(["market", "limit", "stop"]), "market"),
  price: v.optional(DecimalPrice),
  stopLoss: v.optional(DecimalPrice),
  takeProfit: v.optional(DecimalPrice),
  trailingStopPips: v.optional(Pips),
  breakEven: v.optional(BreakEvenSchema),
  addLevels: v.optional(AddLevelsSchema),
  clientOrderId: v.optional(
    v.pipe(
      v.string(),
      v.regex(/^[A-Za-z0-9_.:-]{1,64}$/, "1-64 of A-Z a-z 0-9 _ . : -"),
      v.check((id) => !isRuntimeId(id), "ids ending in '-' and 16 hex digits are reserved for the runtime's own orders"),
    ),
  ),
});
export type ExecuteBody = v.InferOutput<typeof ExecuteBody>;
