/**
 * Overnight financing (rollover): a position held over the 17:00 New York
 * roll pays or earns interest on its notional for each night. Wednesday's roll
 * counts three nights (spot value dates skip the weekend), Saturday's and
 * Sunday's none, so a full week charges seven. Rates are annual percentages
 * on the notional in the quote currency, per side; positive = the holder pays.
 * Exact: integer micros, rounded half away from zero.
 */
import { newYorkOffsetMs } from "../fx-time.ts";
import type { Instrument } from "../instruments.ts";
import { divRoundHalfAway, microsPerUnitPoint } from "./money.ts";
import type { Side } from "./types.ts";

export interface FinancingRates {
  /** Annual rate charged to a long position, percent (negative = credited). */
  longPct: number;
  shortPct: number;
}

export const NO_FINANCING: Readonly<FinancingRates> = Object.freeze({ longPct: 0, shortPct: 0 });

/** Rates are taken to 4 decimals of a percent (0.0001% = 1e-6). */
const RATE_SCALE = 1_000_000n;

/** Nights charged at the roll at `rollMs` (a 17:00 New York instant). */
export function rolloverNights(rollMs: number): number {
  const weekday = new Date(rollMs + newYorkOffsetMs(rollMs)).getUTCDay();
  if (weekday === 3) return 3;
  return weekday === 0 || weekday === 6 ? 0 : 1;
}

/**
 * Signed P&L effect of holding `units` on `side` over `nights` at `pricePoints`,
 * quote micros: -(notional * rate / 100 / 365 * nights).
 */
export function financingQuoteMicros(side: Side, units: number, pricePoints: number, nights: number, rates: FinancingRates, instrument: Instrument): number {
  const pct = side === "buy" ? rates.longPct : rates.shortPct;
  if (nights === 0 || pct === 0) return 0;
  const notionalMicros = BigInt(units) * BigInt(pricePoints) * microsPerUnitPoint(instrument);
  const rate = BigInt(Math.round(pct * Number(RATE_SCALE) / 100));
  return Number(divRoundHalfAway(-notionalMicros * rate * BigInt(nights), RATE_SCALE * 365n));
}
