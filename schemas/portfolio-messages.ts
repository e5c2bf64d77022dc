import * as v from "valibot";
import { PairSymbol } from "./common.ts";
import { TRADING_STATES } from "./portfolio.ts";

/*
 * What pairs and the coordinator say to each other (Durable Object RPC, not
 * HTTP): approval requests, the figures a pair reports, the trading state, and
 * what a pair holds in flight for a new life of the coordinator. The
 * coordinator checks what it is sent against these (a malformed message is
 * refused, it never reaches the book); the types are inferred from them.
 * Bounds are wide: they refuse what cannot be a real message, never one a
 * pair can send.
 */

/** Signed or absolute units and account cents: integers exact in a float64. */
const SafeInteger = v.pipe(v.number(), v.safeInteger());
/** A decimal mid; 0 when the pair has no quote yet. */
const Mid = v.pipe(v.number(), v.finite(), v.minValue(0));

export const ApprovalRequestSchema = v.object({
  /** OANDA allows 128 characters; the runtime's own ids are at most 64. */
  clientOrderId: v.pipe(v.string(), v.minLength(1), v.maxLength(128)),
  pair: PairSymbol,
  /** Signed units the order adds to the pair's net position. */
  deltaUnits: SafeInteger,
  mid: Mid,
  opensPosition: v.boolean(),
});
export type ApprovalRequest = v.InferOutput<typeof ApprovalRequestSchema>;

/** What a pair reports after every fill: absolute figures, so a missed report heals with the next. */
export const PairReportSchema = v.object({
  pair: PairSymbol,
  netUnits: SafeInteger,
  openPositions: v.pipe(v.number(), v.safeInteger(), v.minValue(0)),
  mid: Mid,
  realisedCents: SafeInteger,
  unrealisedCents: SafeInteger,
});
export type PairReport = v.InferOutput<typeof PairReportSchema>;

/** The portfolio's trading state; `since` orders the states (a pair never goes back to an older one). */
export const TradingStatusSchema = v.object({
  state: v.picklist(TRADING_STATES),
  reason: v.string(),
  since: v.pipe(v.number(), v.safeInteger(), v.minValue(0)),
});
export type TradingStatus = v.InferOutput<typeof TradingStatusSchema>;

/** What a pair holds that a coordinator's approval may cover, and its figures, for a new life of the coordinator. */
export const PairInFlightSchema = v.object({
  report: PairReportSchema,
  /** Risk-adding orders recorded but not yet settled (outbox, resting at the broker). */
  orders: v.array(ApprovalRequestSchema),
  /** Approval requests sent and not yet answered. */
  asking: v.array(ApprovalRequestSchema),
});
export type PairInFlight = v.InferOutput<typeof PairInFlightSchema>;

/** `clientOrderId` that comes with a report: the order whose reservation the report releases. */
export const ReportedOrderId = v.optional(v.pipe(v.string(), v.minLength(1), v.maxLength(128)));
