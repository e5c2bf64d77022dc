/**
 * Sanity bands for prices that enter the runtime: the ticks of a feed and the
 * prices and levels of an order. A number that passes the schema (finite,
 * positive) can still be no price at all for the pair: 0.000005 on EUR_USD,
 * 1e9, a USD_JPY price sent to EUR_USD. Such a number must never become the
 * last price (stops would fire on it) nor sit on an order (a resting order or a
 * stop nobody can ever trigger, or one the broker refuses on every attempt).
 *
 * Pure: no clock, no storage; the pair actor and backtests apply the same bands.
 */
import type { Instrument } from "./instruments.ts";
import { MAX_PRICE_POINTS } from "./price.ts";

/** A pair's plausible prices: its reference level divided or multiplied by this. */
export const PLAUSIBLE_FACTOR = 4;

/** Plausible prices of the pair, in points, inclusive. */
export function plausibleRange(instrument: Instrument): { low: number; high: number } {
  const reference = instrument.referenceMid * 10 ** instrument.displayPrecision;
  return { low: Math.max(1, Math.ceil(reference / PLAUSIBLE_FACTOR)), high: Math.min(MAX_PRICE_POINTS, Math.floor(reference * PLAUSIBLE_FACTOR)) };
}

/** A tick may move the mid this far from the previous accepted tick at once (10%)... */
export const TICK_MOVE_BASE_FRACTION = 0.1;
/** ...plus this much for every minute between the two ticks (10% a minute)... */
export const TICK_MOVE_PER_MINUTE_FRACTION = 0.1;
/** ...and never more than this (50%). */
export const TICK_MOVE_MAX_FRACTION = 0.5;

/**
 * How far a tick's mid may move from the last accepted one, as a fraction of
 * it, when `elapsedMs` separate them. The band widens with time so a real
 * jump beyond 10% (EUR_CHF fell about 30% in minutes on 2015-01-15) is taken
 * within two minutes, once the feed insists, instead of freezing the pair on a
 * stale price; a single bad tick between good ones is always refused.
 */
export function tickMoveFractionMax(elapsedMs: number): number {
  const minutes = Math.max(0, elapsedMs) / 60_000;
  return Math.min(TICK_MOVE_MAX_FRACTION, TICK_MOVE_BASE_FRACTION + TICK_MOVE_PER_MINUTE_FRACTION * minutes);
}

/**
 * Order prices and levels (limit and stop prices, stop loss, take profit) must
 * be within this fraction of the current mid: 20%, beyond any level a stop or
 * target on a currency pair is placed at in practice, and far inside the
 * range where a number stops being a price.
 */
export const ORDER_PRICE_BAND_FRACTION = 0.2;

/** The order price band around `midPoints`, in points, inclusive. */
export function orderPriceBand(midPoints: number): { low: number; high: number } {
  return { low: Math.ceil(midPoints * (1 - ORDER_PRICE_BAND_FRACTION)), high: Math.floor(midPoints * (1 + ORDER_PRICE_BAND_FRACTION)) };
}
