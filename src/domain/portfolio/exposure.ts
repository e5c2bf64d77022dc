/**
 * Portfolio exposure in the account currency, from each pair's net units and
 * mid price. A EUR_USD long of 10,000 at 1.1 is +10,000 EUR and -11,000 USD;
 * every amount is valued in the account currency through the pairs' mids.
 * Exposure is a risk measure, not money: floats are fine here (P&L is exact
 * in position.ts).
 */
export interface PairBook {
  /** Signed net units of the pair (all strategies), base currency. */
  netUnits: number;
  /** Latest mid, decimal. */
  mid: number;
}

export interface Exposure {
  gross: number;
  perCurrency: Record<string, number>;
  perPair: Record<string, number>;
}

/** Value of one unit of `currency` in `account`, from the known mids; null when no pair links them. */
export function rateToAccount(currency: string, account: string, mids: Readonly<Record<string, number>>): number | null {
  if (currency === account) return 1;
  const direct = mids[`${currency}_${account}`];
  if (direct) return direct;
  const inverse = mids[`${account}_${currency}`];
  return inverse ? 1 / inverse : null;
}

export function exposure(book: Readonly<Record<string, PairBook>>, account: string): { ok: true; value: Exposure } | { ok: false; missing: string } {
  const mids: Record<string, number> = {};
  for (const [pair, b] of Object.entries(book)) mids[pair] = b.mid;
  const perCurrency: Record<string, number> = {};
  const perPair: Record<string, number> = {};
  let gross = 0;
  for (const [pair, b] of Object.entries(book)) {
    if (b.netUnits === 0) continue;
    const [base, quote] = pair.split("_") as [string, string];
    const baseRate = rateToAccount(base, account, mids);
    const quoteRate = rateToAccount(quote, account, mids);
    if (baseRate === null) return { ok: false, missing: base };
    if (quoteRate === null) return { ok: false, missing: quote };
    const baseValue = b.netUnits * baseRate;
    const quoteValue = -b.netUnits * b.mid * quoteRate;
    perCurrency[base] = (perCurrency[base] ?? 0) + baseValue;
    perCurrency[quote] = (perCurrency[quote] ?? 0) + quoteValue;
    perPair[pair] = Math.abs(baseValue);
    gross += Math.abs(baseValue);
  }
  return { ok: true, value: { gross, perCurrency, perPair } };
}
