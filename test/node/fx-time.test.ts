/**
 * Candle buckets tile time: every instant is in exactly one bucket of each
 * timeframe, and a bucket ends where the next begins, across New York's DST
 * changes too (a day's last 4h candle on such a day once ran past the roll).
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { TIMEFRAMES } from "../../src/domain/candle.ts";
import { bucketEnd, bucketStart } from "../../src/domain/fx-time.ts";

describe("fx-time buckets", () => {
  it("property: a bucket holds its instant and ends where the next bucket starts", () => {
    const instant = fc.integer({ min: Date.UTC(2015, 0, 1), max: Date.UTC(2035, 0, 1) });
    fc.assert(
      fc.property(instant, fc.constantFrom(...TIMEFRAMES), (t, tf) => {
        const start = bucketStart(tf, t);
        const end = bucketEnd(tf, start);
        expect(start).toBeLessThanOrEqual(t);
        expect(end).toBeGreaterThan(t);
        expect(bucketStart(tf, end)).toBe(end);
        expect(bucketStart(tf, end - 1)).toBe(start);
      }),
      { numRuns: 20_000 },
    );
  });

  it("ends the last 4h candle of a DST-change day at that day's roll", () => {
    // 2019-11-03: New York leaves summer time; the FX day rolls at 22:00Z from then on.
    const lastOfDay = bucketStart("4h", Date.parse("2019-11-03T21:30:00Z"));
    expect(new Date(lastOfDay).toISOString()).toBe("2019-11-03T21:00:00.000Z");
    expect(new Date(bucketEnd("4h", lastOfDay)).toISOString()).toBe("2019-11-03T22:00:00.000Z");
    // 2019-03-10: into summer time; the day that opened at 22:00Z rolls at 21:00Z.
    const spring = bucketStart("4h", Date.parse("2019-03-10T18:30:00Z"));
    expect(new Date(bucketEnd("4h", spring)).toISOString()).toBe("2019-03-10T21:00:00.000Z");
  });
});
