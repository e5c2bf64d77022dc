/**
 * Per-pair pre-trade risk: pure checks of one order intent against the pair's
 * limits, its positions, its latest quote and the clock. The Coordinator's
 * portfolio checks come after these; this module knows one pair only.
 *
 * Positions are signed net units (+ long, - short). Positions net per pair and
 * strategy, so an order acts on its own strategy's position: it "reduces" when
 * it is on the opposite side and no larger than that position (it cannot flip
 * it). Such orders, and intents flagged reduceOnly, always pass: an exit must
 * never be blocked by a closed market, a stale or wide price, or a rate limit.
 * (The executor must clamp a reduceOnly intent to the position it reduces.)
 *
 * Every check compares as `!(actual <= limit)`, so a NaN anywhere fails closed.
 */
import type { RiskLimits, RiskRejection } from "../../../schemas/trading.ts";
import { DAY_MS, fxDayStart, HOUR_MS, isWeekendClosed, MINUTE_MS } from "../fx-time.ts";
import type { Instrument } from "../instruments.ts";
import { pointsToPips } from "../price.ts";
import { checkPriceBand, checkPriceForm } from "./order-prices.ts";
import type { OrderIntent, Quote, Side } from "./types.ts";

/** Strategy id of orders placed by people through the API. */
export const MANUAL_STRATEGY_ID = "manual";

export interface RiskContext {
  readonly limits: RiskLimits;
  readonly instrument: Instrument;
  /** Signed net units of the pair, all strategies and manual orders together. */
  readonly pairNetUnits: number;
  /** Signed net units of the intent's own strategy on this pair. */
  readonly strategyNetUnits: number;
  /** Latest quote of the pair, null before the first tick. Its age is nowMs - quote.ts. */
  readonly quote: Quote | null;
  /** Times of the pair's recently accepted orders; only those in the last 60 s count, so callers keep a short list. */
  readonly recentOrderTimesMs: readonly number[];
  readonly nowMs: number;
}

export type RiskDecision =
  | { readonly accepted: true; readonly riskIncreasing: boolean }
  | { readonly accepted: false; readonly rejection: RiskRejection };

/** Signed change of a position when `units` are traded on `side`. */
export function signedUnits(side: Side, units: number): number {
  return side === "buy" ? units : -units;
}

/**
 * False only when the order shrinks `positionNetUnits` towards zero without
 * flipping it: opposite side and units <= |position|. A NaN position counts as
 * risk-increasing (fail closed).
 */
export function isRiskIncreasing(intent: Pick<OrderIntent, "side" | "units">, positionNetUnits: number): boolean {
  if (positionNetUnits > 0) return !(intent.side === "sell" && intent.units <= positionNetUnits);
  if (positionNetUnits < 0) return !(intent.side === "buy" && intent.units <= -positionNetUnits);
  return true;
}

/**
 * Checks one intent. Total: returns a decision for any input, never throws.
 * The first failing check is returned, in this order (cheapest to explain,
 * most general first):
 *   1. invalid_order (malformed intent; even reduce-only ones are refused)
 *   2. invalid_price: a price or level that is no price of the pair (order-prices.ts)
 *   -- reduce-only orders pass here, unless a price of theirs is out of its band or on the wrong side --
 *   3. market_closed (weekend guard)
 *   4. stale_price (no quote, or its age beyond +-stalePriceMs)
 *   5. max_spread (on the latest quote)
 *   6. invalid_price: out of the band around the mid, or on the wrong side of the market
 *   7. stop_loss_required
 *   8. max_position_size (pair net, then the strategy's own position)
 *   9. max_orders_per_minute (last: the caller records the order only once accepted)
 */
export function checkOrder(intent: OrderIntent, ctx: RiskContext): RiskDecision {
  const invalid = invalidField(intent, ctx);
  if (invalid !== null) return reject({ type: "invalid_order", field: invalid });
  const badForm = checkPriceForm(intent, ctx.instrument);
  if (badForm !== null) return reject(badForm);
  if (intent.reduceOnly || !isRiskIncreasing(intent, ctx.strategyNetUnits)) {
    // Exits carry no prices and always pass; a reducing order with a price must still be one the market can reach.
    const badBand = checkPriceBand(intent, ctx.quote);
    return badBand === null ? { accepted: true, riskIncreasing: false } : reject(badBand);
  }

  const { limits, nowMs } = ctx;
  if (limits.weekendGuard && isWeekendClosed(nowMs)) {
    return reject({ type: "market_closed", actual: nowMs, reopensAtMs: weekendReopenMs(nowMs) });
  }

  const quote = ctx.quote;
  if (quote === null) return reject({ type: "stale_price", limit: limits.stalePriceMs, actual: null });
  const ageMs = nowMs - quote.ts;
  // Both ways: a quote stamped far ahead of the clock (or at Infinity) is as
  // untrustworthy as an old one; ticks are refused beyond a few seconds ahead.
  if (!(Math.abs(ageMs) <= limits.stalePriceMs)) return reject({ type: "stale_price", limit: limits.stalePriceMs, actual: ageMs });

  const spreadPips = pointsToPips(quote.ask - quote.bid, ctx.instrument);
  if (!(spreadPips <= limits.maxSpreadPips)) return reject({ type: "max_spread", limit: limits.maxSpreadPips, actual: spreadPips });

  const badBand = checkPriceBand(intent, quote);
  if (badBand !== null) return reject(badBand);

  if (stopLossRequired(limits, intent) && intent.stopLoss === undefined) return reject({ type: "stop_loss_required" });

  const delta = signedUnits(intent.side, intent.units);
  const pairBefore = Math.abs(ctx.pairNetUnits);
  const pairAfter = Math.abs(ctx.pairNetUnits + delta);
  // The pair limit stops growth beyond the limit, never a move towards flat:
  // exits of other strategies can leave the pair net above it.
  if (!(pairAfter <= limits.maxPositionUnits || pairAfter < pairBefore)) {
    return reject({ type: "max_position_size", scope: "pair", limit: limits.maxPositionUnits, actual: pairAfter });
  }
  const strategyAfter = Math.abs(ctx.strategyNetUnits + delta);
  if (!(strategyAfter <= limits.maxPositionUnits)) {
    return reject({ type: "max_position_size", scope: "strategy", limit: limits.maxPositionUnits, actual: strategyAfter });
  }

  const ordersInWindow = countSince(ctx.recentOrderTimesMs, nowMs - ORDER_RATE_WINDOW_MS) + 1;
  if (!(ordersInWindow <= limits.maxOrdersPerMinute)) {
    return reject({ type: "max_orders_per_minute", limit: limits.maxOrdersPerMinute, actual: ordersInWindow });
  }
  return { accepted: true, riskIncreasing: true };
}

function reject(rejection: RiskRejection): RiskDecision {
  return { accepted: false, rejection };
}

function invalidField(intent: OrderIntent, ctx: RiskContext): "units" | "side" | "pair" | null {
  if (!Number.isSafeInteger(intent.units) || intent.units <= 0) return "units";
  if (intent.side !== "buy" && intent.side !== "sell") return "side";
  if (intent.pair !== ctx.instrument.symbol) return "pair";
  return null;
}

function stopLossRequired(limits: RiskLimits, intent: OrderIntent): boolean {
  switch (limits.stopLossRequired) {
    case "always":
      return true;
    case "never":
      return false;
    case "strategy":
      return intent.strategyId !== MANUAL_STRATEGY_ID;
  }
}

/** Orders strictly after `fromMs` (a sliding window); future stamps count too, erring towards refusal. */
/** The order-rate limit's sliding window: an order counts while it is younger than this. */
export const ORDER_RATE_WINDOW_MS = MINUTE_MS;

/**
 * Drop from `timesMs` (oldest first) the orders out of the rate window at
 * `nowMs`, in place, and return it: the live trader and the backtester keep
 * their window with this, so both count the same orders.
 */
export function trimOrderWindow(timesMs: number[], nowMs: number): number[] {
  while ((timesMs[0] ?? Infinity) <= nowMs - ORDER_RATE_WINDOW_MS) timesMs.shift();
  return timesMs;
}

function countSince(timesMs: readonly number[], fromMs: number): number {
  let n = 0;
  for (const t of timesMs) if (t > fromMs) n++;
  return n;
}

/** The next 17:00 New York roll that opens the market: Sunday's, from inside the weekend. */
export function weekendReopenMs(nowMs: number): number {
  let roll = fxDayStart(nowMs);
  // From Friday 17:00 the next open roll is at most two rolls away; four bounds the loop.
  for (let i = 0; i < 4; i++) {
    // A day and two hours on lands inside the next FX day whatever the DST hour does (as bucketEnd).
    roll = fxDayStart(roll + DAY_MS + 2 * HOUR_MS);
    if (!isWeekendClosed(roll)) return roll;
  }
  return roll;
}
