/**
 * The currency pairs the runtime knows. Prices are held as integers in units of
 * the pair's display precision ("points": 1e-5 for EUR_USD, 1e-3 for USD_JPY),
 * so that a price never drifts through float arithmetic.
 */
export interface Instrument {
  /** OANDA-style symbol, e.g. "EUR_USD". */
  readonly symbol: string;
  readonly base: string;
  readonly quote: string;
  /** Decimal exponent of one pip: -4 for most pairs, -2 for JPY quotes. */
  readonly pipLocation: number;
  /** Digits after the decimal point on the wire: 5, or 3 for JPY quotes. */
  readonly displayPrecision: number;
  /** Widest spread accepted on a tick by default, in pips. */
  readonly maxSpreadPipsDefault: number;
  /**
   * A rough level of the pair (decimal): the centre of the plausible-price range
   * (price-band.ts), which is a factor of 4 either way, wide enough for every
   * level these pairs have seen since 2000 and narrow enough to refuse a price
   * off by a factor of ten (a misplaced decimal point, a JPY price on a USD pair).
   */
  readonly referenceMid: number;
}

function pair(base: string, quote: string, maxSpreadPipsDefault: number, referenceMid: number): Instrument {
  const jpy = quote === "JPY";
  return {
    symbol: `${base}_${quote}`,
    base,
    quote,
    pipLocation: jpy ? -2 : -4,
    displayPrecision: jpy ? 3 : 5,
    maxSpreadPipsDefault,
    referenceMid,
  };
}

/*
 * Default spread caps are generous on purpose: real off-hours spreads around the
 * daily roll reach 10+ pips on EUR_USD (see ../shared/data ticks), and a feed
 * that rejects the roll loses candles. Tighter caps are configuration.
 */
const LIST: readonly Instrument[] = [
  pair("EUR", "USD", 50, 1.1),
  pair("USD", "JPY", 50, 130),
  pair("GBP", "USD", 60, 1.4),
  pair("AUD", "USD", 60, 0.75),
  pair("USD", "CHF", 60, 1.0),
  pair("USD", "CAD", 60, 1.25),
  pair("EUR", "JPY", 80, 140),
  pair("GBP", "JPY", 100, 170),
  pair("NZD", "USD", 60, 0.65),
  pair("EUR", "GBP", 60, 0.8),
  // The other crosses of the eight majors, then two liquid USD pairs outside them.
  pair("EUR", "CHF", 80, 1.15),
  pair("EUR", "CAD", 100, 1.45),
  pair("EUR", "AUD", 100, 1.6),
  pair("EUR", "NZD", 120, 1.75),
  pair("GBP", "CHF", 100, 1.5),
  pair("GBP", "CAD", 120, 1.8),
  pair("GBP", "AUD", 120, 2.0),
  pair("GBP", "NZD", 150, 2.2),
  pair("AUD", "JPY", 80, 90),
  pair("AUD", "CHF", 100, 0.75),
  pair("AUD", "CAD", 100, 0.95),
  pair("AUD", "NZD", 100, 1.1),
  pair("NZD", "JPY", 100, 80),
  pair("NZD", "CHF", 100, 0.65),
  pair("NZD", "CAD", 100, 0.85),
  pair("CAD", "JPY", 80, 100),
  pair("CAD", "CHF", 100, 0.8),
  pair("CHF", "JPY", 100, 120),
  pair("USD", "SGD", 80, 1.4),
  pair("USD", "MXN", 400, 15),
];

export const INSTRUMENTS: ReadonlyMap<string, Instrument> = new Map(LIST.map((i) => [i.symbol, i]));

export const SYMBOLS: readonly string[] = LIST.map((i) => i.symbol);

export function findInstrument(symbol: string): Instrument | undefined {
  return INSTRUMENTS.get(symbol);
}

export function getInstrument(symbol: string): Instrument {
  const found = INSTRUMENTS.get(symbol);
  if (!found) throw new Error(`unknown instrument ${symbol}`);
  return found;
}

/** Points (price integer units) in one pip: 10 for every pair here. */
export function pointsPerPip(instrument: Instrument): number {
  return 10 ** (instrument.displayPrecision + instrument.pipLocation);
}
