/**
 * What pairs and the coordinator say to each other: approval requests, the
 * figures a pair reports, the trading state, and what a pair holds in flight
 * for a new life of the coordinator. Plain data, shared by both actors (and by
 * anything that plays the portfolio's part, such as a backtest).
 */
import type { TradingState } from "../../../schemas/portfolio.ts";

export interface ApprovalRequest {
  clientOrderId: string;
  pair: string;
  /** Signed units the order adds to the pair's net position. */
  deltaUnits: number;
  mid: number;
  opensPosition: boolean;
}

/** What a pair reports after every fill: absolute figures, so a missed report heals with the next. */
export interface PairReport {
  pair: string;
  netUnits: number;
  openPositions: number;
  mid: number;
  realisedCents: number;
  unrealisedCents: number;
}

/** The portfolio's trading state; `since` orders the states (a pair never goes back to an older one). */
export interface TradingStatus {
  state: TradingState;
  reason: string;
  since: number;
}

/** What a pair holds that a coordinator's approval may cover, and its figures, for a new life of the coordinator. */
export interface PairInFlight {
  report: PairReport;
  /** Risk-adding orders recorded but not yet settled (outbox, resting at the broker). */
  orders: ApprovalRequest[];
  /** Approval requests sent and not yet answered. */
  asking: ApprovalRequest[];
}
