import type { Instrument } from "./instruments.ts";

/**
 * Fixed-point prices. Inside the runtime a price is an integer count of
 * "points" (10^-displayPrecision); on the wire it is a decimal number with the
 * pair's display precision, as OANDA writes it.
 */
export type PricePoints = number;

/** Largest price integer we accept: keeps every sum of a few prices exact in float64. */
export const MAX_PRICE_POINTS = 2 ** 40;

/**
 * Decimal wire price -> integer points, rounding half away from zero to the
 * pair's precision. Returns NaN for non-finite input so callers can reject it.
 */
export function toPoints(price: number, instrument: Instrument): PricePoints {
  if (!Number.isFinite(price)) return Number.NaN;
  const scaled = price * 10 ** instrument.displayPrecision;
  const magnitude = Math.abs(scaled);
  const floor = Math.floor(magnitude);
  const frac = magnitude - floor;
  // Float products land next to the decimal the user wrote (1.10005 * 1e5 =
  // 110004.99999999999; 1.234565 * 1e5 = 123456.49999999999): snap within a
  // tiny tolerance, then round half away from zero as written in decimal.
  const TOLERANCE = 1e-7;
  let rounded: number;
  if (frac < TOLERANCE) rounded = floor;
  else if (1 - frac < TOLERANCE) rounded = floor + 1;
  else if (Math.abs(frac - 0.5) < TOLERANCE) rounded = floor + 1;
  else rounded = Math.round(magnitude);
  return Math.sign(scaled) * rounded;
}

/** Integer points -> the decimal number written on the wire (exactly the shortest repr). */
export function toDecimal(points: PricePoints, instrument: Instrument): number {
  // Dividing by an exact power of ten gives the closest double to the decimal
  // value, which is what JSON.stringify prints with the right digits.
  return points / 10 ** instrument.displayPrecision;
}

/** An average price (fractional points) as shown: one digit past the pair's precision, the same on the wire and in backtest results. */
export function averagePriceDecimal(points: number, instrument: Instrument): number {
  return Number((points / 10 ** instrument.displayPrecision).toFixed(instrument.displayPrecision + 1));
}

/** A price in points: a safe integer of at least one point, at most MAX_PRICE_POINTS. */
export function isPricePoints(points: number): boolean {
  return Number.isSafeInteger(points) && points >= 1 && points <= MAX_PRICE_POINTS;
}

/** A distance in pips that is at least one point of the pair once rounded (finite, so never Infinity's points). */
export function isPipDistance(pips: number, instrument: Instrument): boolean {
  return Number.isFinite(pips) && pipsToPoints(pips, instrument) >= 1;
}

/** Spread in pips as a decimal (for display and limits). */
export function pointsToPips(points: number, instrument: Instrument): number {
  return points / 10 ** (instrument.displayPrecision + instrument.pipLocation);
}

export function pipsToPoints(pips: number, instrument: Instrument): number {
  return Math.round(pips * 10 ** (instrument.displayPrecision + instrument.pipLocation));
}

/** Mid of a quote as a decimal price (valuation and exposure, not money). */
export function midDecimal(quote: { bid: PricePoints; ask: PricePoints }, instrument: Instrument): number {
  return (quote.bid + quote.ask) / 2 / 10 ** instrument.displayPrecision;
}
