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
}

function pair(base: string, quote: string, maxSpreadPipsDefault: number): Instrument {
  const jpy = quote === "JPY";
  return {
    symbol: `${base}_${quote}`,
    base,
    quote,
    pipLocation: jpy ? -2 : -4,
    displayPrecision: jpy ? 3 : 5,
    maxSpreadPipsDefault,
  };
}

/*
 * Default spread caps are generous on purpose: real off-hours spreads around the
 * daily roll reach 10+ pips on EUR_USD (see ../shared/data ticks), and a feed
 * that rejects the roll loses candles. Tighter caps are configuration.
 */
const LIST: readonly Instrument[] = [
  pair("EUR", "USD", 50),
  pair("USD", "JPY", 50),
  pair("GBP", "USD", 60),
  pair("AUD", "USD", 60),
  pair("USD", "CHF", 60),
  pair("USD", "CAD", 60),
  pair("EUR", "JPY", 80),
  pair("GBP", "JPY", 100),
  pair("NZD", "USD", 60),
  pair("EUR", "GBP", 60),
  // The other crosses of the eight majors, then two liquid USD pairs outside them.
  pair("EUR", "CHF", 80),
  pair("EUR", "CAD", 100),
  pair("EUR", "AUD", 100),
  pair("EUR", "NZD", 120),
  pair("GBP", "CHF", 100),
  pair("GBP", "CAD", 120),
  pair("GBP", "AUD", 120),
  pair("GBP", "NZD", 150),
  pair("AUD", "JPY", 80),
  pair("AUD", "CHF", 100),
  pair("AUD", "CAD", 100),
  pair("AUD", "NZD", 100),
  pair("NZD", "JPY", 100),
  pair("NZD", "CHF", 100),
  pair("NZD", "CAD", 100),
  pair("CAD", "JPY", 80),
  pair("CAD", "CHF", 100),
  pair("CHF", "JPY", 100),
  pair("USD", "SGD", 80),
  pair("USD", "MXN", 400),
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
