/**
 * The portfolio's trading state machine, pure (time is passed in):
 *
 *   ACTIVE --daily loss over its limit--> REDUCING (only risk-reducing orders)
 *   REDUCING --the next 17:00 New York roll--> ACTIVE (the daily limit is a day's)
 *   ACTIVE | REDUCING --drawdown over its limit--> HALTED (no orders but exits and flattening)
 *   any --kill switch halt | flatten--> HALTED;  any --kill switch resume--> ACTIVE
 *
 * The daily loss is measured from the equity at the start of the FX day (the
 * latest 17:00 New York, DST-aware), the drawdown from the equity's peak; both
 * marks are kept in EquityMarks. A move to the state already in force changes
 * nothing (its `since` stays), and a new state's `since` is always later than
 * the one before it, because pairs keep the state with the latest `since`.
 */
import type { PortfolioLimits, TradingState } from "../../../schemas/portfolio.ts";
import { bucketEnd, fxDayStart } from "../fx-time.ts";
import type { TradingStatus } from "./messages.ts";

/** The state of a portfolio that never had another. */
export const INITIAL_TRADING_STATUS: Readonly<TradingStatus> = Object.freeze({ state: "ACTIVE", reason: "", since: 0 });

export type KillSwitchAction = "halt" | "resume" | "flatten";

/** Equity marks in account cents: the peak, and the equity at the start of the current FX day. */
export interface EquityMarks {
  peak: number;
  /** Start (UTC ms) of the FX day the marks are for. */
  dayStart: number;
  dayEquity: number;
}

export interface StateChange {
  before: TradingStatus;
  next: TradingStatus;
  /** False when `before` already had the state asked for: `next` is `before` then. */
  changed: boolean;
}

/** Move to `state` at `nowMs`. Idempotent: the state in force keeps its reason and `since`. */
export function transition(before: TradingStatus, state: TradingState, reason: string, nowMs: number): StateChange {
  if (before.state === state) return { before, next: { ...before }, changed: false };
  // Strictly after the state it replaces, even if the clock stands still or steps back.
  const since = nowMs > before.since ? nowMs : before.since + 1;
  return { before, next: { state, reason, since }, changed: true };
}

/** What a kill switch action asks for: halt and flatten halt, resume resumes; the action names an empty reason. */
export function killSwitchTarget(action: KillSwitchAction, reason: string): { state: TradingState; reason: string } {
  return { state: action === "resume" ? "ACTIVE" : "HALTED", reason: reason || action };
}

/** Two statuses are the same state when state and `since` match (a newer one of the same state is another). */
export function sameStatus(a: TradingStatus, b: TradingStatus): boolean {
  return a.state === b.state && a.since === b.since;
}

/** The marks after equity `equityCents` is seen at `nowMs`: a new FX day starts from it, and the peak rises to it. */
export function markEquity(marks: EquityMarks | undefined, equityCents: number, nowMs: number): EquityMarks {
  const dayStart = fxDayStart(nowMs);
  const m = marks ?? { peak: equityCents, dayStart, dayEquity: equityCents };
  const today = dayStart === m.dayStart ? m : { ...m, dayStart, dayEquity: equityCents };
  return { peak: Math.max(today.peak, equityCents), dayStart: today.dayStart, dayEquity: today.dayEquity };
}

/**
 * The state a loss limit moves the portfolio to, with why, or null: a
 * drawdown over its limit halts (unless halted), a daily loss over its limit
 * reduces (only from ACTIVE; a halt is never softened to REDUCING).
 */
export function lossLimitBreach(marks: EquityMarks, equityCents: number, limits: PortfolioLimits, status: TradingStatus): { state: TradingState; reason: string } | null {
  const drawdown = (marks.peak - equityCents) / 100;
  const dailyLoss = (marks.dayEquity - equityCents) / 100;
  if (drawdown > limits.maxDrawdown && status.state !== "HALTED") {
    return { state: "HALTED", reason: `drawdown ${drawdown.toFixed(2)} over the limit ${limits.maxDrawdown}` };
  }
  if (dailyLoss > limits.dailyLossLimit && status.state === "ACTIVE") {
    return { state: "REDUCING", reason: `daily loss ${dailyLoss.toFixed(2)} over the limit ${limits.dailyLossLimit}` };
  }
  return null;
}

/** Why a REDUCING state ends by itself. */
export const NEW_DAY_REASON = "new FX day after the daily loss limit";

/**
 * Whether a REDUCING state has outlived its FX day: a daily loss limit stops
 * risk for the rest of the day it was hit, and trading resumes at the next
 * 17:00 New York roll (a halt stays until the kill switch resumes it).
 */
export function reducingDayOver(status: TradingStatus, nowMs: number): boolean {
  return nowMs >= reducingEndsAt(status);
}

/** When the state in force ends by itself: a REDUCING state at the roll after it began, any other never (+Infinity). */
export function reducingEndsAt(status: TradingStatus): number {
  return status.state === "REDUCING" ? bucketEnd("1D", fxDayStart(status.since)) : Number.POSITIVE_INFINITY;
}
