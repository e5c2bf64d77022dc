/**
 * The prices and levels of an order checked against the market before it is
 * stored or sent, for every order (reduce-only ones too: a reduce-only limit
 * at Infinity once made every later order of its pair fail). A level that
 * passes here can always be applied to the position the order opens, so a
 * fill can never be refused for its protection.
 *
 * Rules (prices in points, the quote the latest of the pair):
 * - every price is a safe integer of at least one point (a decimal that rounds
 *   to 0 points is no price) and within ORDER_PRICE_BAND_FRACTION of the mid;
 * - a stop entry is beyond the market (a buy stop above the ask, a sell stop
 *   below the bid), otherwise it would trigger at once;
 * - a stop loss is below the price a long is closed at, a take profit above it
 *   (and the reverse for a short). That price is the entry price of a limit or
 *   stop order, and for a market order the side of the quote the position
 *   closes on (the bid for a long), so a level that would fire on the very
 *   next quote is refused rather than opening and closing a position at once;
 * - distances in pips (trailing stop, break-even, add levels) are at least one point.
 */
import type { RiskRejection } from "../../../schemas/trading.ts";
import type { Instrument } from "../instruments.ts";
import { orderPriceBand } from "../price-band.ts";
import { isPipDistance, isPricePoints, toPoints } from "../price.ts";
import type { OrderIntent, Quote } from "./types.ts";

export type PriceRejection = Extract<RiskRejection, { type: "invalid_price" }>;
type PriceField = PriceRejection["field"];

/** Null when every price and level of `intent` is a price of the pair at all (needs no quote). */
export function checkPriceForm(intent: OrderIntent, instrument: Instrument): PriceRejection | null {
  for (const [field, value] of levelsOf(intent)) {
    if (value !== undefined && !isPricePoints(value)) return refuse(field, "not_a_price");
  }
  const pips: [PriceField, number | undefined][] = [
    ["trailingStopPips", intent.trailingStopPips],
    ["breakEven", intent.breakEven?.triggerPips],
    ["addLevels", intent.addLevels?.offsetPips],
  ];
  for (const [field, value] of pips) {
    if (value !== undefined && !isPipDistance(value, instrument)) return refuse(field, "below_one_point");
  }
  return null;
}

/** Null when every price and level of `intent` sits where it belongs against the pair's quote (null: none yet). */
export function checkPriceBand(intent: OrderIntent, quote: Quote | null): PriceRejection | null {
  const levels = levelsOf(intent).filter(([, value]) => value !== undefined) as [PriceField, number][];
  if (levels.length === 0) return null;
  if (quote === null) return refuse(levels[0]![0], "no_quote");
  const band = orderPriceBand((quote.bid + quote.ask) / 2);
  for (const [field, value] of levels) {
    if (!(value >= band.low && value <= band.high)) return refuse(field, "out_of_band");
  }
  const long = intent.side === "buy";
  if (intent.type === "stop" && intent.price !== undefined && !(long ? intent.price > quote.ask : intent.price < quote.bid)) {
    return refuse("price", "wrong_side");
  }
  // Where the position this order opens is closed from: its entry, or the quote it would close on now.
  const reference = intent.type !== "market" && intent.price !== undefined ? intent.price : long ? quote.bid : quote.ask;
  if (intent.stopLoss !== undefined && !(long ? intent.stopLoss < reference : intent.stopLoss > reference)) return refuse("stopLoss", "wrong_side");
  if (intent.takeProfit !== undefined && !(long ? intent.takeProfit > reference : intent.takeProfit < reference)) return refuse("takeProfit", "wrong_side");
  return null;
}

function levelsOf(intent: OrderIntent): [PriceField, number | undefined][] {
  return [["price", intent.price], ["stopLoss", intent.stopLoss], ["takeProfit", intent.takeProfit]];
}

function refuse(field: PriceField, problem: PriceRejection["problem"]): PriceRejection {
  return { type: "invalid_price", field, problem };
}

/** A request's decimal prices and pip distances as the API takes them (POST /api/trade/execute). */
export interface DecimalLevels {
  price?: number | undefined;
  stopLoss?: number | undefined;
  takeProfit?: number | undefined;
  trailingStopPips?: number | undefined;
  breakEven?: { triggerPips: number } | undefined;
  addLevels?: { offsetPips: number } | undefined;
}

/**
 * Which decimals of a request are no price of the pair at all (they round to
 * less than one point), as the API's error details: refused as bad input
 * before anything is recorded, while checkPriceBand's market checks come with
 * the order's risk checks.
 */
export function subPointIssues(levels: DecimalLevels, instrument: Instrument): { path: string; message: string }[] {
  const point = 10 ** -instrument.displayPrecision;
  const issues: { path: string; message: string }[] = [];
  for (const path of ["price", "stopLoss", "takeProfit"] as const) {
    const value = levels[path];
    if (value === undefined) continue;
    const points = toPoints(value, instrument);
    if (!isPricePoints(points)) issues.push({ path, message: `not a price of ${instrument.symbol}: rounds to ${points} points of ${point}` });
  }
  const pips: [string, number | undefined][] = [["trailingStopPips", levels.trailingStopPips], ["breakEven.triggerPips", levels.breakEven?.triggerPips], ["addLevels.offsetPips", levels.addLevels?.offsetPips]];
  for (const [path, value] of pips) {
    if (value !== undefined && !isPipDistance(value, instrument)) issues.push({ path, message: `less than one point of ${instrument.symbol} (${point})` });
  }
  return issues;
}
