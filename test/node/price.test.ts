import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { getInstrument, INSTRUMENTS, pointsPerPip, SYMBOLS } from "../../src/domain/instruments.ts";
import { pipsToPoints, pointsToPips, toDecimal, toPoints } from "../../src/domain/price.ts";

const REQUIRED = ["EUR_USD", "USD_JPY", "GBP_USD", "AUD_USD", "USD_CHF", "USD_CAD", "EUR_JPY", "GBP_JPY"];
const instrumentArb = fc.constantFrom(...SYMBOLS).map(getInstrument);

describe("instruments", () => {
  it("has the required pairs with pip location and precision", () => {
    for (const s of REQUIRED) expect(INSTRUMENTS.has(s)).toBe(true);
    expect(getInstrument("EUR_USD")).toMatchObject({ base: "EUR", quote: "USD", pipLocation: -4, displayPrecision: 5 });
    expect(getInstrument("USD_JPY")).toMatchObject({ base: "USD", quote: "JPY", pipLocation: -2, displayPrecision: 3 });
    expect(getInstrument("GBP_JPY")).toMatchObject({ pipLocation: -2, displayPrecision: 3 });
    for (const s of SYMBOLS) expect(pointsPerPip(getInstrument(s))).toBe(10);
  });
});

describe("fixed-point prices", () => {
  it("integer points -> decimal -> points is the identity", () => {
    fc.assert(
      fc.property(instrumentArb, fc.integer({ min: 1, max: 2 ** 40 }), (inst, points) => {
        expect(toPoints(toDecimal(points, inst), inst)).toBe(points);
      }),
      { numRuns: 5_000 },
    );
  });

  it("a decimal written with the pair's precision survives points and back, and prints the same", () => {
    fc.assert(
      fc.property(instrumentArb, fc.integer({ min: 1, max: 99_999_999 }), (inst, points) => {
        const text = (points / 10 ** inst.displayPrecision).toFixed(inst.displayPrecision);
        const wire = Number(text);
        const back = toDecimal(toPoints(wire, inst), inst);
        expect(back).toBe(wire);
        expect(back.toFixed(inst.displayPrecision)).toBe(text);
        expect(JSON.parse(JSON.stringify(back))).toBe(wire);
      }),
      { numRuns: 5_000 },
    );
  });

  it("rounds extra digits half away from zero and rejects non-finite input", () => {
    const eur = getInstrument("EUR_USD");
    expect(toPoints(1.234565, eur)).toBe(123_457);
    expect(toPoints(1.234564, eur)).toBe(123_456);
    expect(toPoints(-1.234565, eur)).toBe(-123_457);
    expect(toPoints(0.000005, eur)).toBe(1);
    expect(toPoints(1.10005, eur)).toBe(110_005);
    expect(toPoints(Number.NaN, eur)).toBeNaN();
    expect(toPoints(Number.POSITIVE_INFINITY, eur)).toBeNaN();
    expect(toDecimal(123_457, eur)).toBe(1.23457);
    expect(toDecimal(151_203, getInstrument("USD_JPY"))).toBe(151.203);
  });

  it("pips convert both ways", () => {
    const jpy = getInstrument("USD_JPY");
    expect(pipsToPoints(1.5, jpy)).toBe(15);
    expect(pointsToPips(15, jpy)).toBe(1.5);
    fc.assert(
      fc.property(instrumentArb, fc.integer({ min: 0, max: 1e6 }), (inst, p) => {
        expect(pipsToPoints(pointsToPips(p, inst), inst)).toBe(p);
      }),
    );
  });
});
