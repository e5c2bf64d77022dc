/**
 * The portfolio's limit checks on one approval request, pure: the book (every
 * pair's net units and mid, with the outstanding reservations and the request
 * already in it) against the limits, in a fixed order (conversion, gross,
 * the request's pair, each currency's net, open positions). The first limit
 * broken is the refusal.
 */
import type { PortfolioLimits, PortfolioRejection } from "../../../schemas/portfolio.ts";
import { exposure, type PairBook } from "./exposure.ts";

export type ApprovalAnswer = { approved: true } | { approved: false; rejection: PortfolioRejection };

export interface LimitCheck {
  /** Every pair's net units and mid, the reservations and the request included. */
  book: Readonly<Record<string, PairBook>>;
  /** The request's pair. */
  pair: string;
  /** Open positions with the request's new one counted; null when the request opens none. */
  openPositionsAfter: number | null;
  limits: PortfolioLimits;
  accountCurrency: string;
}

/** The first limit the book breaks, or null when it fits every limit. */
export function checkLimits(c: LimitCheck): PortfolioRejection | null {
  const { limits } = c;
  const exp = exposure(c.book, c.accountCurrency);
  if (!exp.ok) return { type: "no_conversion_rate", currency: exp.missing };
  const e = exp.value;
  if (e.gross > limits.maxGrossExposure) return { type: "max_gross_exposure", limit: limits.maxGrossExposure, actual: round(e.gross) };
  const pairExposure = e.perPair[c.pair] ?? 0;
  if (pairExposure > limits.maxExposurePerPair) return { type: "max_exposure_per_pair", limit: limits.maxExposurePerPair, actual: round(pairExposure) };
  for (const [currency, amount] of Object.entries(e.perCurrency)) {
    if (Math.abs(amount) > limits.maxNetExposurePerCurrency) {
      return { type: "max_net_exposure", currency, limit: limits.maxNetExposurePerCurrency, actual: round(amount) };
    }
  }
  if (c.openPositionsAfter !== null && c.openPositionsAfter > limits.maxOpenPositions) {
    return { type: "max_open_positions", limit: limits.maxOpenPositions, actual: c.openPositionsAfter };
  }
  return null;
}

/**
 * Served pairs whose mid values a currency of the book in the account
 * currency and is not known yet (neither in the book nor the request's pair),
 * in the order to ask for them. `known` are the pairs in the book.
 */
export function linkingPairsToFetch(known: Iterable<string>, requestPair: string, accountCurrency: string, servedPairs: readonly string[]): string[] {
  const pairs = new Set(known);
  pairs.add(requestPair);
  const currencies = new Set<string>();
  for (const pair of pairs) for (const c of pair.split("_")) currencies.add(c);
  const out: string[] = [];
  for (const c of currencies) {
    if (c === accountCurrency) continue;
    const linking = [`${c}_${accountCurrency}`, `${accountCurrency}_${c}`].find((p) => servedPairs.includes(p));
    if (!linking || linking === requestPair || pairs.has(linking)) continue;
    out.push(linking);
  }
  return out;
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}
