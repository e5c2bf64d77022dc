/**
 * Money is integer and exact: P&L in quote micros, account amounts in cents
 * rounded half away from zero on the exact rational value. References below
 * are written independently (BigInt, a different rounding formula) so a shared
 * mistake cannot make both sides agree.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { getInstrument } from "../../src/domain/instruments.ts";
import { MAX_PRICE_POINTS } from "../../src/domain/price.ts";
import type { ConversionRate } from "../../src/domain/trading/money.ts";
import {
  centsToDecimal,
  convertQuoteMicrosToAccountCents,
  divRoundHalfAway,
  MAX_UNITS,
  microsToDecimal,
  pnlQuoteMicros,
} from "../../src/domain/trading/money.ts";

const EUR_USD = getInstrument("EUR_USD");
const USD_JPY = getInstrument("USD_JPY");
const GBP_USD = getInstrument("GBP_USD");
const EUR_JPY = getInstrument("EUR_JPY");

/** Half away from zero as floor((2|n| + |d|) / 2|d|), sign applied after. */
function refRound(n: bigint, d: bigint): bigint {
  const an = n < 0n ? -n : n;
  const ad = d < 0n ? -d : d;
  const q = (2n * an + ad) / (2n * ad);
  return n < 0n !== d < 0n ? -q : q;
}

/** Decimal string of an integer with `digits` fractional digits, by string surgery. */
function refDecimal(value: number, digits: number): string {
  const negative = value < 0;
  const s = String(Math.abs(value)).padStart(digits + 1, "0");
  const int = s.slice(0, s.length - digits);
  const frac = s.slice(s.length - digits).replace(/0+$/, "");
  const body = frac ? `${int}.${frac}` : int;
  return negative && body !== "0" ? `-${body}` : body;
}

const cents = (micros: number, quote: string, account: string, rates: ConversionRate[]) => {
  const r = convertQuoteMicrosToAccountCents(micros, quote, account, rates);
  if (!r.ok) throw new Error(JSON.stringify(r.error));
  return r.value;
};

describe("pnlQuoteMicros", () => {
  it("EUR_USD: buy 100,000 at 1.10000, sell at 1.10250 = +250.00 USD", () => {
    const micros = pnlQuoteMicros(100_000, 110_000, 110_250, "buy", EUR_USD);
    expect(micros).toBe(250_000_000);
    expect(microsToDecimal(micros)).toBe(250);
    expect(cents(micros, "USD", "USD", [])).toBe(25_000);
    expect(pnlQuoteMicros(100_000, 110_000, 110_250, "sell", EUR_USD)).toBe(-250_000_000);
  });

  it("USD_JPY: 100,000 units from 150.000 to 151.000 = +100,000 JPY = 662.25 USD at 151.000", () => {
    const micros = pnlQuoteMicros(100_000, 150_000, 151_000, "buy", USD_JPY);
    expect(micros).toBe(100_000_000_000); // 100,000 JPY
    // 100,000 / 151 = 662.2516... USD -> 66,225.16 cents -> 66,225
    const usd = cents(micros, "JPY", "USD", [{ instrument: USD_JPY, points: 151_000 }]);
    expect(usd).toBe(66_225);
    expect(centsToDecimal(usd)).toBe(662.25);
  });

  it("equals units x move x 10^(6 - precision), exactly, and long = -short", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(EUR_USD, USD_JPY, GBP_USD, EUR_JPY),
        fc.integer({ min: 0, max: MAX_UNITS }),
        fc.integer({ min: 1, max: 400_000 }),
        fc.integer({ min: -8_000, max: 8_000 }),
        (inst, units, entry, move) => {
          const exit = Math.max(0, entry + move);
          const long = pnlQuoteMicros(units, entry, exit, "buy", inst);
          const expected = BigInt(units) * BigInt(exit - entry) * 10n ** BigInt(6 - inst.displayPrecision);
          expect(BigInt(long)).toBe(expected);
          expect(pnlQuoteMicros(units, entry, exit, "sell", inst) + long).toBe(0);
        },
      ),
      { numRuns: 2_000 },
    );
  });

  it("refuses inputs outside the integer model with RangeError", () => {
    expect(() => pnlQuoteMicros(MAX_UNITS + 1, 1, 2, "buy", EUR_USD)).toThrow(RangeError);
    expect(() => pnlQuoteMicros(1.5, 1, 2, "buy", EUR_USD)).toThrow(RangeError);
    expect(() => pnlQuoteMicros(-1, 1, 2, "buy", EUR_USD)).toThrow(RangeError);
    expect(() => pnlQuoteMicros(1, MAX_PRICE_POINTS + 1, 2, "buy", EUR_USD)).toThrow(RangeError);
    expect(() => pnlQuoteMicros(1, 1.5, 2, "buy", EUR_USD)).toThrow(RangeError);
    // In range on input, but the exact result passes 2^53: 1e9 units x 10 yen.
    expect(() => pnlQuoteMicros(MAX_UNITS, 150_000, 160_000, "buy", USD_JPY)).toThrow(RangeError);
    expect(pnlQuoteMicros(MAX_UNITS, 150_000, 159_000, "buy", USD_JPY)).toBe(9e15);
  });
});

describe("divRoundHalfAway", () => {
  it("rounds half away from zero, symmetric in sign", () => {
    expect(divRoundHalfAway(5n, 10n)).toBe(1n);
    expect(divRoundHalfAway(-5n, 10n)).toBe(-1n);
    expect(divRoundHalfAway(15n, 10n)).toBe(2n);
    expect(divRoundHalfAway(14n, 10n)).toBe(1n);
    expect(divRoundHalfAway(-25n, 10n)).toBe(-3n);
    expect(divRoundHalfAway(7n, -2n)).toBe(-4n);
    expect(() => divRoundHalfAway(1n, 0n)).toThrow(RangeError);
  });

  it("matches an independent formula", () => {
    fc.assert(
      fc.property(fc.bigInt({ min: -(10n ** 30n), max: 10n ** 30n }), fc.bigInt({ min: 1n, max: 10n ** 20n }), fc.boolean(), (n, d, neg) => {
        const den = neg ? -d : d;
        expect(divRoundHalfAway(n, den)).toBe(refRound(n, den));
      }),
      { numRuns: 2_000 },
    );
  });
});

describe("convertQuoteMicrosToAccountCents", () => {
  it("same currency: micros / 10^4, half away from zero", () => {
    expect(cents(5_000, "USD", "USD", [])).toBe(1);
    expect(cents(-5_000, "USD", "USD", [])).toBe(-1);
    expect(cents(4_999, "USD", "USD", [])).toBe(0);
    expect(cents(15_000, "USD", "USD", [])).toBe(2);
    expect(cents(-25_000, "USD", "USD", [])).toBe(-3);
  });

  it("multiplies by QUOTE_ACCOUNT and divides by ACCOUNT_QUOTE", () => {
    // 1 GBP at GBP_USD 1.25000 = 1.25 USD
    expect(cents(1_000_000, "GBP", "USD", [{ instrument: GBP_USD, points: 125_000 }])).toBe(125);
    // 1 USD at USD_JPY 150.000 = 150 JPY = 15,000 JPY cents
    expect(cents(1_000_000, "USD", "JPY", [{ instrument: USD_JPY, points: 150_000 }])).toBe(15_000);
    // 1,000 JPY at EUR_JPY 160.000 = 6.25 EUR
    expect(cents(1_000_000_000, "JPY", "EUR", [{ instrument: EUR_JPY, points: 160_000 }])).toBe(625);
    // 1.00 USD at EUR_USD 1.10000 = 0.909090... EUR -> 91 cents; -1 USD -> -91
    expect(cents(1_000_000, "USD", "EUR", [{ instrument: EUR_USD, points: 110_000 }])).toBe(91);
    expect(cents(-1_000_000, "USD", "EUR", [{ instrument: EUR_USD, points: 110_000 }])).toBe(-91);
    // exact half: 0.5 JPY at 100.000 = 0.005 USD -> 1 cent (away from zero)
    expect(cents(500_000, "JPY", "USD", [{ instrument: USD_JPY, points: 100_000 }])).toBe(1);
    expect(cents(-500_000, "JPY", "USD", [{ instrument: USD_JPY, points: 100_000 }])).toBe(-1);
  });

  it("uses the first usable matching rate and ignores unusable ones", () => {
    const rates: ConversionRate[] = [
      { instrument: USD_JPY, points: 0 },
      { instrument: USD_JPY, points: 1.5 },
      { instrument: EUR_USD, points: 110_000 },
      { instrument: USD_JPY, points: 200_000 },
      { instrument: USD_JPY, points: 100_000 },
    ];
    expect(cents(1_000_000_000, "JPY", "USD", rates)).toBe(500);
  });

  it("fails as data when no pair links the currencies", () => {
    expect(convertQuoteMicrosToAccountCents(1, "CHF", "EUR", [{ instrument: USD_JPY, points: 150_000 }])).toEqual({
      ok: false,
      error: { type: "no_conversion_rate", from: "CHF", to: "EUR" },
    });
    expect(convertQuoteMicrosToAccountCents(1, "JPY", "USD", [])).toEqual({
      ok: false,
      error: { type: "no_conversion_rate", from: "JPY", to: "USD" },
    });
  });

  it("equals the exact rational rounded half away from zero, and is odd and monotonic", () => {
    const amount = fc.integer({ min: -(10 ** 13), max: 10 ** 13 });
    const rate = fc.integer({ min: 1, max: 400_000 });
    fc.assert(
      fc.property(amount, amount, rate, fc.constantFrom(EUR_USD, USD_JPY, GBP_USD), (a, b, points, inst) => {
        const rates = [{ instrument: inst, points }];
        const scale = 10n ** BigInt(inst.displayPrecision);
        // quote -> base divides by the price, base -> quote multiplies.
        const toBase = cents(a, inst.quote, inst.base, rates);
        expect(BigInt(toBase)).toBe(refRound(BigInt(a) * scale, BigInt(points) * 10_000n));
        const toQuote = cents(a, inst.base, inst.quote, rates);
        expect(BigInt(toQuote)).toBe(refRound(BigInt(a) * BigInt(points), scale * 10_000n));
        expect(cents(-a, inst.quote, inst.base, rates) + toBase).toBe(0);
        const [lo, hi] = a <= b ? [a, b] : [b, a];
        expect(cents(lo, inst.quote, inst.base, rates)).toBeLessThanOrEqual(cents(hi, inst.quote, inst.base, rates));
      }),
      { numRuns: 2_000 },
    );
  });

  it("throws RangeError on a non-integer amount", () => {
    expect(() => convertQuoteMicrosToAccountCents(0.5, "USD", "USD", [])).toThrow(RangeError);
  });
});

describe("wire decimals", () => {
  it("print the exact decimal of the integer amount", () => {
    expect(JSON.stringify(microsToDecimal(-1))).toBe("-0.000001");
    expect(JSON.stringify(centsToDecimal(66_225))).toBe("662.25");
    expect(JSON.stringify(centsToDecimal(-5))).toBe("-0.05");
    fc.assert(
      fc.property(fc.integer({ min: -(10 ** 15) + 1, max: 10 ** 15 - 1 }), (v) => {
        expect(JSON.stringify(microsToDecimal(v))).toBe(refDecimal(v, 6));
        expect(JSON.stringify(centsToDecimal(v))).toBe(refDecimal(v, 2));
      }),
      { numRuns: 5_000 },
    );
  });

  it("refuses non-integers", () => {
    expect(() => microsToDecimal(1.5)).toThrow(RangeError);
    expect(() => centsToDecimal(Number.NaN)).toThrow(RangeError);
  });
});
