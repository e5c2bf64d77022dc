/**
 * Money as integers, so P&L is reproducible to the cent in live and replay.
 *
 * - Quote-currency amounts are integer micro units (1e-6 of the quote
 *   currency, `...QuoteMicros`). A price move in points times units is always
 *   a whole number of micros because every pair has displayPrecision <= 6.
 * - Account-currency amounts are integer cents (`...AccountCents`), obtained by
 *   one exact rational conversion rounded half away from zero.
 *
 * Intermediate products are BigInt: a float never touches a money value, so
 * the same inputs give the same cents on every machine and every run.
 */
import type { Instrument } from "../instruments.ts";
import { MAX_PRICE_POINTS } from "../price.ts";
import type { Side } from "./types.ts";

export const DEFAULT_ACCOUNT_CURRENCY = "USD";

/** Largest order or position size, in base-currency units (one billion). */
export const MAX_UNITS = 1_000_000_000;

export const MICROS_PER_UNIT = 1_000_000;
const MICROS_DIGITS = 6;

export type Result<T, E> = { ok: true; value: T } | { ok: false; error: E };

/** No pair links the two currencies among the rates supplied. */
export interface NoConversionRate {
  type: "no_conversion_rate";
  from: string;
  to: string;
}

/**
 * A price of one pair, integer points, used to convert between its two
 * currencies. Which price to pass is the caller's choice and must itself be
 * reproducible: positions pass the exit (fill) price of the relevant pair at
 * the moment P&L is realised, and the mark price for unrealised P&L, so a
 * replay over the same quotes gives the same cents.
 */
export interface ConversionRate {
  instrument: Instrument;
  points: number;
}

/** Another pair's quote as a conversion rate: its mid in whole points (how live pairs and portfolio backtests both value a cross). */
export function midRate(instrument: Instrument, quote: { bid: number; ask: number }): ConversionRate {
  return { instrument, points: Math.round((quote.bid + quote.ask) / 2) };
}

/** BigInt -> number, refusing (RangeError) anything a double cannot hold exactly. */
export function bigintToSafeNumber(value: bigint, what: string): number {
  if (value > BigInt(Number.MAX_SAFE_INTEGER) || value < -BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new RangeError(`${what} ${value} exceeds 2^53 - 1`);
  }
  return Number(value);
}

function assertInteger(value: number, min: number, max: number, what: string): void {
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new RangeError(`${what} must be an integer in [${min}, ${max}], got ${value}`);
  }
}

/**
 * numerator / denominator rounded half away from zero, exactly. The rounding
 * is symmetric so a long and a short of the same size round to opposite
 * amounts, never to amounts that differ by a cent.
 */
export function divRoundHalfAway(numerator: bigint, denominator: bigint): bigint {
  if (denominator === 0n) throw new RangeError("division by zero");
  const negative = numerator < 0n !== denominator < 0n;
  const n = numerator < 0n ? -numerator : numerator;
  const d = denominator < 0n ? -denominator : denominator;
  let q = n / d;
  if ((n % d) * 2n >= d) q += 1n;
  return negative ? -q : q;
}

/** Quote micros per (unit x point) for this pair: 10^(6 - displayPrecision). */
export function microsPerUnitPoint(instrument: Instrument): bigint {
  const exponent = MICROS_DIGITS - instrument.displayPrecision;
  if (!Number.isInteger(exponent) || exponent < 0) {
    throw new RangeError(`${instrument.symbol}: displayPrecision above ${MICROS_DIGITS} cannot be held in micros`);
  }
  return 10n ** BigInt(exponent);
}

/**
 * Quote micros of an amount expressed in units x points (e.g. a position's
 * cost difference). Throws RangeError when the result is not a safe integer.
 */
export function unitPointsToQuoteMicros(unitPoints: bigint, instrument: Instrument): number {
  return bigintToSafeNumber(unitPoints * microsPerUnitPoint(instrument), "quote micros");
}

/**
 * P&L of moving `units` from entry to exit, in quote micros:
 * sign(side) * units * (exit - entry) * 10^(6 - displayPrecision), exact.
 *
 * Bounds (RangeError past them; these are programming errors, not market
 * events): units integer in [0, MAX_UNITS = 1e9]; prices integer points in
 * [0, MAX_PRICE_POINTS = 2^40]. Those input bounds alone could reach 2^80, so
 * the exact BigInt result is also checked to be below 2^53: that holds for any
 * move of less than 9.007 quote-currency per unit at 1e9 units (9 yen on
 * USD_JPY, 9 dollars on EUR_USD), and for proportionally larger moves at
 * smaller sizes.
 */
export function pnlQuoteMicros(units: number, entryPoints: number, exitPoints: number, side: Side, instrument: Instrument): number {
  assertInteger(units, 0, MAX_UNITS, "units");
  assertInteger(entryPoints, 0, MAX_PRICE_POINTS, "entryPoints");
  assertInteger(exitPoints, 0, MAX_PRICE_POINTS, "exitPoints");
  const sign = side === "buy" ? 1n : -1n;
  return unitPointsToQuoteMicros(sign * BigInt(units) * BigInt(exitPoints - entryPoints), instrument);
}

/** The pair symbols that can convert `from` into `to`, in the order they are tried. */
export function conversionPairs(from: string, to: string): [accountQuote: string, quoteAccount: string] {
  return [`${to}_${from}`, `${from}_${to}`];
}

function usable(rate: ConversionRate): boolean {
  return Number.isSafeInteger(rate.points) && rate.points > 0 && rate.points <= MAX_PRICE_POINTS;
}

/**
 * Quote micros -> account cents, rounded half away from zero on the exact
 * rational value.
 *
 * - quote == account: cents = micros / 1e4.
 * - a pair ACCOUNT_QUOTE (USD_JPY for JPY into USD): divide by its price.
 * - a pair QUOTE_ACCOUNT (GBP_USD for GBP into USD): multiply by its price.
 * - otherwise `{ type: "no_conversion_rate", from, to }`.
 *
 * The first usable rate in `rates` that matches either orientation is used,
 * so a caller can put the preferred price (e.g. the fill price of the
 * position's own pair) first. Rates that are not positive integer points are
 * ignored.
 */
export function convertQuoteMicrosToAccountCents(
  amountQuoteMicros: number,
  quoteCurrency: string,
  accountCurrency: string,
  rates: readonly ConversionRate[],
): Result<number, NoConversionRate> {
  if (!Number.isSafeInteger(amountQuoteMicros)) throw new RangeError(`amountQuoteMicros must be a safe integer, got ${amountQuoteMicros}`);
  const micros = BigInt(amountQuoteMicros);
  // micros -> cents is / 10^4 before any rate.
  const CENTS_DIVISOR = 10_000n;
  if (quoteCurrency === accountCurrency) {
    return { ok: true, value: bigintToSafeNumber(divRoundHalfAway(micros, CENTS_DIVISOR), "account cents") };
  }
  for (const rate of rates) {
    if (!usable(rate)) continue;
    const scale = 10n ** BigInt(rate.instrument.displayPrecision);
    const price = BigInt(rate.points);
    if (rate.instrument.base === accountCurrency && rate.instrument.quote === quoteCurrency) {
      // price = points / scale quote per account: cents = micros * scale / (points * 1e4)
      return { ok: true, value: bigintToSafeNumber(divRoundHalfAway(micros * scale, price * CENTS_DIVISOR), "account cents") };
    }
    if (rate.instrument.base === quoteCurrency && rate.instrument.quote === accountCurrency) {
      // price = points / scale account per quote: cents = micros * points / (scale * 1e4)
      return { ok: true, value: bigintToSafeNumber(divRoundHalfAway(micros * price, scale * CENTS_DIVISOR), "account cents") };
    }
  }
  return { ok: false, error: { type: "no_conversion_rate", from: quoteCurrency, to: accountCurrency } };
}

/**
 * Integer micros -> decimal number for the wire (JSON). Dividing a safe
 * integer by an exact power of ten yields the double nearest the decimal, which
 * JSON.stringify prints with the exact digits (for amounts of up to 15
 * significant digits, i.e. below 1e9 quote units); never feed the result back
 * into arithmetic.
 */
export function microsToDecimal(amountMicros: number): number {
  if (!Number.isSafeInteger(amountMicros)) throw new RangeError(`micros must be a safe integer, got ${amountMicros}`);
  return amountMicros / MICROS_PER_UNIT;
}

/** Integer cents -> decimal number for the wire (see microsToDecimal). */
export function centsToDecimal(amountCents: number): number {
  if (!Number.isSafeInteger(amountCents)) throw new RangeError(`cents must be a safe integer, got ${amountCents}`);
  return amountCents / 100;
}
