/**
 * One clock across pairs (src/replay/bar-merge.ts): every bar of every pair
 * once, in time order, ties by pair symbol whatever order the pairs were
 * listed in (property); a pair out of order or listed twice is an error.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { Candle } from "../../src/domain/candle.ts";
import { CANDLE_INT_COLUMNS, type CandleColumns } from "../../src/ingest/candle-arrow.ts";
import { candleBatches, mergeBars, type PairBars } from "../../src/replay/bar-merge.ts";

const MINUTE = 60_000;
const T0 = Date.UTC(2024, 0, 2);

/** `times` (minutes from T0) as record batches of `batchRows`, with an empty batch where `gaps` says. */
function pairBars(pair: string, minutes: readonly number[], batchRows: number, emptyFirst = false): PairBars {
  const batches: { cols: CandleColumns; start: number; end: number }[] = [];
  const columns = (rows: readonly number[]): CandleColumns => {
    const t = Float64Array.from(rows, (m) => T0 + m * MINUTE);
    const ints = Object.fromEntries(CANDLE_INT_COLUMNS.map((k) => [k, Int32Array.from(rows, (m) => m * 10 + pair.charCodeAt(0))])) as Omit<CandleColumns, "length" | "t">;
    return { length: rows.length, t, ...ints };
  };
  if (emptyFirst) batches.push({ cols: columns([]), start: 0, end: 0 });
  for (let from = 0; from < minutes.length; from += batchRows) {
    const rows = minutes.slice(from, from + batchRows);
    batches.push({ cols: columns(rows), start: 0, end: rows.length });
  }
  return { pair, batches: candleBatches((async function* () { yield* batches; })()) };
}

async function merged(pairs: PairBars[]): Promise<[string, number, number][]> {
  const out: [string, number, number][] = [];
  await mergeBars(pairs, (pair, bar: Candle) => out.push([pair, (bar.t - T0) / MINUTE, bar.bc]));
  return out;
}

const PAIRS = ["AUD_USD", "EUR_USD", "GBP_USD", "USD_JPY", "USD_CHF"];

describe("merging the bars of several pairs", () => {
  it("gives every bar once, by time, ties by pair symbol, whatever the listing order and batch sizes", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uniqueArray(fc.constantFrom(...PAIRS), { minLength: 1, maxLength: 5 }),
        fc.array(fc.uniqueArray(fc.integer({ min: 0, max: 300 }), { maxLength: 120 }), { minLength: 5, maxLength: 5 }),
        fc.integer({ min: 1, max: 50 }),
        fc.boolean(),
        async (listed, minuteSets, batchRows, emptyFirst) => {
          const inputs = listed.map((pair, k) => ({ pair, minutes: [...(minuteSets[k] ?? [])].sort((a, b) => a - b) }));
          const expected = inputs
            .flatMap(({ pair, minutes }) => minutes.map((m) => [pair, m, m * 10 + pair.charCodeAt(0)] as [string, number, number]))
            .sort((a, b) => a[1] - b[1] || (a[0] < b[0] ? -1 : 1));
          const got = await merged(inputs.map(({ pair, minutes }) => pairBars(pair, minutes, batchRows, emptyFirst)));
          expect(got).toEqual(expected);
        },
      ),
      { numRuns: 200 },
    );
  });

  it("holds one batch per pair: a pair's next batch is read only when its current one is done", async () => {
    const pulled = new Map<string, number>();
    const counting = (bars: PairBars): PairBars => ({
      pair: bars.pair,
      batches: {
        next: async () => {
          pulled.set(bars.pair, (pulled.get(bars.pair) ?? 0) + 1);
          return bars.batches.next();
        },
      },
    });
    const minutes = Array.from({ length: 30 }, (_, i) => i);
    const delivered = new Map<string, number>();
    let worst = 0;
    let seen = 0;
    await mergeBars([counting(pairBars("EUR_USD", minutes, 10)), counting(pairBars("USD_JPY", minutes, 10))], (pair) => {
      seen++;
      delivered.set(pair, (delivered.get(pair) ?? 0) + 1);
      // Batches read but not yet delivered in full: never more than the one being delivered.
      for (const [p, n] of pulled) worst = Math.max(worst, n - Math.floor((delivered.get(p) ?? 0) / 10));
    });
    expect(seen).toBe(60);
    expect(worst).toBe(1);
  });

  it("refuses a pair whose bars go back in time, and a pair listed twice", async () => {
    await expect(merged([pairBars("EUR_USD", [1, 2, 5], 10), pairBars("USD_JPY", [3, 2], 10)])).rejects.toThrow(/USD_JPY: bars out of order/);
    await expect(merged([pairBars("EUR_USD", [1, 2], 1), pairBars("USD_JPY", [3, 4, 2], 2)])).rejects.toThrow(/USD_JPY: bars out of order/);
    await expect(merged([pairBars("EUR_USD", [1], 1), pairBars("EUR_USD", [2], 1)])).rejects.toThrow(/listed twice/);
  });
});
