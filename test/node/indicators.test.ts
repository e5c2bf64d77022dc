/**
 * IndicatorSet (src/domain/indicators.ts) against published reference values, plus properties.
 *
 * References (see shared/data/SOURCES.md, section "indicator_refs"):
 * - StockCharts ChartSchool spreadsheets as shipped with the `ta` Python library (cs-*.csv)
 * - LEAN's indicator test data (SPY daily)
 * - Tulip Indicators' atoz.txt (values from Achelis, "Technical Analysis from A to Z")
 *
 * Tolerances follow each file's published rounding (half a unit in the last printed digit, with
 * some room for rounding of the printed inputs). Where a reference seeds an average differently
 * from trading-signals, we compare only after the seed difference has decayed below the
 * tolerance, and say so next to the check.
 */
import fs from "node:fs";
import path from "node:path";
import { describe, it, expect } from "vitest";
import fc from "fast-check";
import { EMA, RMA, RSI } from "trading-signals";
import {
  DEFAULT_INDICATOR_CONFIG,
  IndicatorSet,
  candleToMidHLC,
  roundIndicatorValues,
  type IndicatorConfig,
  type IndicatorValues,
} from "../../src/domain/indicators.ts";
import type { Candle } from "../../src/domain/candle.ts";

const REF_DIR = path.resolve(import.meta.dirname, "../../../shared/data/indicator_refs");
const haveRefs = fs.existsSync(REF_DIR);
if (!haveRefs) console.warn(`indicator reference data not found at ${REF_DIR}: skipping the reference-value tests`);

type Row = Record<string, number | null>;

/** Plain CSV with a header; blank and NaN cells become null. */
function readCsv(rel: string): Row[] {
  const [header, ...lines] = fs.readFileSync(path.join(REF_DIR, rel), "utf8").trim().split(/\r?\n/);
  const keys = (header ?? "").split(",");
  return lines.map((line) => {
    const cells = line.split(",");
    const row: Row = {};
    keys.forEach((k, i) => {
      const cell = cells[i]?.trim() ?? "";
      row[k] = cell === "" || cell === "NaN" ? null : Number(cell);
    });
    return row;
  });
}

function num(row: Row, key: string): number {
  const v = row[key];
  if (v === null || v === undefined || !Number.isFinite(v)) throw new Error(`missing input ${key}`);
  return v;
}

const cfg = (over: Partial<IndicatorConfig>): IndicatorConfig => ({ ...DEFAULT_INDICATOR_CONFIG, ...over });
const closeOnly = (close: number) => ({ high: close, low: close, close });

interface Pair {
  i: number;
  ref: number | null | undefined;
  got: number | null | undefined;
}

/**
 * Compare rows i >= from where the reference is not blank; ours must be present there and within
 * tol. Returns the number of rows compared, which must exceed minRows (so the check can fail).
 */
function check(label: string, pairs: Pair[], tol: number, minRows: number, from = 0): number {
  const bad: string[] = [];
  let compared = 0;
  for (const { i, ref, got } of pairs) {
    if (i < from || ref === null || ref === undefined) continue;
    compared++;
    if (got === null || got === undefined || !(Math.abs(got - ref) <= tol)) bad.push(`${label} row ${i}: ref ${ref} got ${got}`);
  }
  expect(bad.slice(0, 5)).toEqual([]);
  expect(compared).toBeGreaterThan(minRows);
  return compared;
}

/** Index of the first non-null value, to check that warm-up lengths agree. */
const firstIndex = (xs: Array<number | null | undefined>): number => xs.findIndex((x) => x !== null && x !== undefined);

function run(config: IndicatorConfig, candles: Array<{ high: number; low: number; close: number }>): IndicatorValues[] {
  const set = new IndicatorSet(config);
  return candles.map((c) => set.update(c));
}

// ---------------------------------------------------------------------------------------------
// Tulip atoz.txt: "name params" line, comment lines, then {inputs...} and {expected...} arrays.
interface TulipEntry {
  name: string;
  params: number[];
  arrays: number[][];
}

function readTulip(): TulipEntry[] {
  const entries: TulipEntry[] = [];
  for (const raw of fs.readFileSync(path.join(REF_DIR, "tulip_atoz/atoz.txt"), "utf8").split(/\r?\n/)) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    if (line.startsWith("{")) {
      const arr = line.replace(/[{}]/g, "").split(",").map((s) => Number(s.trim()));
      entries.at(-1)?.arrays.push(arr);
    } else {
      const [name = "", ...params] = line.split(/\s+/);
      entries.push({ name, params: params.map(Number), arrays: [] });
    }
  }
  return entries;
}

/** The entry's arrays, after checking it exists, has the expected shape and parses as numbers. */
function tulip(entries: TulipEntry[], name: string, params: number[], nArrays: number): number[][] {
  const e = entries.find((x) => x.name === name && x.params.join(" ") === params.join(" "));
  expect(e, `${name} ${params.join(" ")} in atoz.txt`).toBeDefined();
  expect(e?.arrays.length).toBe(nArrays);
  for (const a of e?.arrays ?? []) expect(a.every(Number.isFinite)).toBe(true);
  return e?.arrays ?? [];
}

/** Tulip outputs are aligned to the end of the inputs: output k belongs to input k + offset. */
function alignedPairs(expected: number[], got: Array<number | null | undefined>): Pair[] {
  const offset = got.length - expected.length;
  return got.map((g, i) => ({ i, ref: i >= offset ? expected[i - offset] : null, got: g }));
}

describe.skipIf(!haveRefs)("reference values", () => {
  describe("StockCharts ChartSchool (cs-*.csv from the ta library)", () => {
    it("ATR 14 (Wilder, seeded with the mean of the first 14 TRs) matches cs-atr.csv within 1e-6", () => {
      const rows = readCsv("stockcharts_via_bukosabino_ta/cs-atr.csv");
      const out = run(cfg({ atrPeriod: 14 }), rows.map((r) => ({ high: num(r, "High"), low: num(r, "Low"), close: num(r, "Close") })));
      // The sheet prints 0 instead of blank before warm-up.
      const ref = rows.map((r) => (r.ATR === 0 ? null : r.ATR));
      expect(firstIndex(out.map((v) => v.atr))).toBe(firstIndex(ref));
      check("ATR14", out.map((v, i) => ({ i, ref: ref[i], got: v.atr })), 1e-6, 15);
    });

    it("Bollinger 20/2 (population SD) matches cs-bbands.csv within 1e-5", () => {
      const rows = readCsv("stockcharts_via_bukosabino_ta/cs-bbands.csv");
      const out = run(cfg({ bollingerPeriod: 20, bollingerStdDev: 2 }), rows.map((r) => closeOnly(num(r, "Close"))));
      expect(firstIndex(out.map((v) => v.bollinger?.middle))).toBe(firstIndex(rows.map((r) => r.MiddleBand)));
      check("BB mid", out.map((v, i) => ({ i, ref: rows[i]?.MiddleBand, got: v.bollinger?.middle })), 1e-5, 20);
      check("BB up", out.map((v, i) => ({ i, ref: rows[i]?.HighBand, got: v.bollinger?.upper })), 1e-5, 20);
      check("BB low", out.map((v, i) => ({ i, ref: rows[i]?.LowBand, got: v.bollinger?.lower })), 1e-5, 20);
    });

    it("EMA 12 and EMA 26 match the short_ema/long_ema columns of cs-macd.csv within 1e-7", () => {
      // Both seed the EMA with the first close (pandas ewm adjust=False), so they agree from bar 1;
      // IndicatorSet only reports from bar `period`.
      const rows = readCsv("stockcharts_via_bukosabino_ta/cs-macd.csv");
      const closes = rows.map((r) => closeOnly(num(r, "Close")));
      const e12 = run(cfg({ emaPeriod: 12 }), closes);
      const e26 = run(cfg({ emaPeriod: 26 }), closes);
      expect(firstIndex(e12.map((v) => v.ema))).toBe(11);
      check("EMA12", e12.map((v, i) => ({ i, ref: rows[i]?.short_ema, got: v.ema })), 1e-7, 100, 11);
      check("EMA26", e26.map((v, i) => ({ i, ref: rows[i]?.long_ema, got: v.ema })), 1e-7, 90, 25);
    });

    it("MACD 12/26/9 matches cs-macd.csv: line within 1e-7; signal and histogram within 1e-6 after bar 90", () => {
      const rows = readCsv("stockcharts_via_bukosabino_ta/cs-macd.csv");
      const out = run(cfg({}), rows.map((r) => closeOnly(num(r, "Close"))));
      // Ours appears at bar 26 + 9 - 1 = 34 (index 33), once the signal EMA has 9 values.
      expect(firstIndex(out.map((v) => v.macd?.macd))).toBe(33);
      check("MACD", out.map((v, i) => ({ i, ref: rows[i]?.MACD_line, got: v.macd?.macd })), 1e-7, 85, 33);
      // The sheet's signal column starts at row 3 from an unstated seed (it is not EMA9 of the
      // MACD column from any seed we can reproduce); the gap shrinks by 0.8 (= 1 - 2/10) a bar and
      // is below 2e-7 from index 90 on.
      check("signal", out.map((v, i) => ({ i, ref: rows[i]?.MACD_signal, got: v.macd?.signal })), 1e-6, 30, 90);
      check("hist", out.map((v, i) => ({ i, ref: rows[i]?.MACD_diff, got: v.macd?.histogram })), 1e-6, 30, 90);
    });

    it("RSI 14: cs-rsi.csv reproduces with the library RSI class under the ta seed, within 1e-6", () => {
      // cs-rsi.csv is computed by `ta` (pandas ewm alpha=1/14 starting from a zero change on the first
      // row), NOT by Wilder's SMA seed. IndicatorSet uses Wilder's seed (checked against LEAN and
      // Tulip below), so on these 19 rows it differs by 0.5..3.7 RSI points, far too short to decay.
      // We check the same library class instead, with RMA smoothing (EMA alpha=1/n seeded with the
      // first value) and the first close fed twice to make that first change zero.
      const rows = readCsv("stockcharts_via_bukosabino_ta/cs-rsi.csv");
      const rsi = new RSI(14, RMA);
      rsi.add(num(rows[0] ?? {}, "Close"));
      const got = rows.map((r) => rsi.add(num(r, "Close")));
      check("RSI14 (ta seed)", got.map((g, i) => ({ i, ref: rows[i]?.RSI, got: g })), 1e-6, 18);

      // And the wrapper's Wilder RSI is indeed different here (so the check above is not vacuous
      // about seeding), yet starts on the same bar.
      const wilder = run(cfg({ rsiPeriod: 14 }), rows.map((r) => closeOnly(num(r, "Close"))));
      expect(firstIndex(wilder.map((v) => v.rsi))).toBe(firstIndex(rows.map((r) => r.RSI)));
      const maxGap = Math.max(...wilder.map((v, i) => (v.rsi === null ? 0 : Math.abs(v.rsi - (rows[i]?.RSI ?? v.rsi)))));
      expect(maxGap).toBeGreaterThan(0.5);
      expect(maxGap).toBeLessThan(5);
    });
  });

  describe("LEAN test data (SPY daily)", () => {
    it("spy_with_indicators.txt: SMA14, EMA14, RSI14 Wilder and MACD 12/26 line", () => {
      // Close is a DJIA-level series (~13,000) printed with 2 decimals; SMA/EMA printed with 2,
      // RSI with 5, MACD with 4 decimals.
      const rows = readCsv("lean_testdata/spy_with_indicators.txt");
      const out = run(cfg({ smaPeriod: 14, emaPeriod: 14, rsiPeriod: 14 }), rows.map((r) => closeOnly(num(r, "Close"))));
      expect(firstIndex(out.map((v) => v.sma))).toBe(firstIndex(rows.map((r) => r.SMA14)));
      check("SMA14", out.map((v, i) => ({ i, ref: rows[i]?.SMA14, got: v.sma })), 0.01, 450);
      // LEAN seeds EMA14 with SMA14; the library seeds with the first close. The gap decays by
      // 13/15 a bar: ~47 at the start, below the print rounding (0.005) from bar 100 on.
      check("EMA14", out.map((v, i) => ({ i, ref: rows[i]?.EMA14, got: v.ema })), 0.01, 380, 100);
      // Same seed (SMA of the first 14 changes): agrees from the first value.
      expect(firstIndex(out.map((v) => v.rsi))).toBe(firstIndex(rows.map((r) => r["RSI 14 Wilder"])));
      check("RSI14W", out.map((v, i) => ({ i, ref: rows[i]?.["RSI 14 Wilder"], got: v.rsi })), 1e-5, 450);
      // LEAN seeds both MACD EMAs with SMAs (slow one decays by 25/27 a bar): the gap is ~12 at
      // first, 2e-4 from bar 200 on, against a print rounding of 5e-5.
      check("MACD", out.map((v, i) => ({ i, ref: rows[i]?.["MACD 12 26"], got: v.macd?.macd })), 1e-3, 280, 200);
    });

    it("spy_atr_wilder.txt: ATR14 Wilder within 1e-5 from the first value", () => {
      const rows = readCsv("lean_testdata/spy_atr_wilder.txt");
      const out = run(cfg({ atrPeriod: 14 }), rows.map((r) => ({ high: num(r, "High"), low: num(r, "Low"), close: num(r, "Close") })));
      const key = "Average True Range 14";
      expect(firstIndex(out.map((v) => v.atr))).toBe(firstIndex(rows.map((r) => r[key])));
      check("ATR14W", out.map((v, i) => ({ i, ref: rows[i]?.[key], got: v.atr })), 1e-5, 480);
    });

    it("spy_bollinger_bands.txt: BB 20/2 within 1e-4 (LEAN's own test uses 1e-3)", () => {
      const rows = readCsv("lean_testdata/spy_bollinger_bands.txt");
      const out = run(cfg({}), rows.map((r) => ({ high: num(r, "High"), low: num(r, "Low"), close: num(r, "Close") })));
      const [mid, top, bottom] = ["Moving Average 20", "Bollinger Bands® 20 2 Top", "Bollinger Bands® 20 2 Bottom"] as const;
      expect(firstIndex(out.map((v) => v.bollinger?.middle))).toBe(firstIndex(rows.map((r) => r[mid])));
      check("BB mid", out.map((v, i) => ({ i, ref: rows[i]?.[mid], got: v.bollinger?.middle })), 1e-4, 470);
      check("BB top", out.map((v, i) => ({ i, ref: rows[i]?.[top], got: v.bollinger?.upper })), 1e-4, 470);
      check("BB bottom", out.map((v, i) => ({ i, ref: rows[i]?.[bottom], got: v.bollinger?.lower })), 1e-4, 470);
    });

    it("spy_with_macd.txt: MACD 12/26/9 line, signal and histogram within 1e-4", () => {
      // The reference starts at row 179 (monthly bars from 1988), long after the SMA-vs-first-close
      // seed gap has decayed; printed with 6-7 significant digits.
      const rows = readCsv("lean_testdata/spy_with_macd.txt");
      const out = run(cfg({}), rows.map((r) => ({ high: num(r, "High"), low: num(r, "Low"), close: num(r, "Close") })));
      check("MACD", out.map((v, i) => ({ i, ref: rows[i]?.MACD, got: v.macd?.macd })), 1e-4, 180);
      check("signal", out.map((v, i) => ({ i, ref: rows[i]?.Signal, got: v.macd?.signal })), 1e-4, 180);
      check("hist", out.map((v, i) => ({ i, ref: rows[i]?.Histogram, got: v.macd?.histogram })), 1e-4, 180);
    });

    it("spy_ema.csv: EMA14 (full precision) within 1e-8 once LEAN's SMA seed has decayed (bar 150)", () => {
      const rows = readCsv("lean_testdata/spy_ema.csv");
      const out = run(cfg({ emaPeriod: 14 }), rows.map((r) => closeOnly(num(r, "close"))));
      expect(firstIndex(out.map((v) => v.ema))).toBe(firstIndex(rows.map((r) => r.EMA14)));
      check("EMA14", out.map((v, i) => ({ i, ref: rows[i]?.EMA14, got: v.ema })), 1e-8, 200, 150);
    });
  });

  describe("Tulip Indicators atoz.txt (Achelis, printed with 3-4 decimals)", () => {
    const entries = haveRefs ? readTulip() : [];

    it("sma 5 within 1e-3", () => {
      const [input = [], expected = []] = tulip(entries, "sma", [5], 2);
      const out = run(cfg({ smaPeriod: 5 }), input.map(closeOnly));
      expect(firstIndex(out.map((v) => v.sma))).toBe(input.length - expected.length);
      check("sma5", alignedPairs(expected, out.map((v) => v.sma)), 1e-3, 3);
    });

    it("ema 5 within 1e-3 (both seed with the first close)", () => {
      const [input = [], expected = []] = tulip(entries, "ema", [5], 2);
      // Tulip prints from bar 1; IndicatorSet from bar 5, so check the library class for all bars.
      const lib = new EMA(5);
      check("ema5 (lib)", alignedPairs(expected, input.map((x) => lib.add(x))), 1e-3, 7);
      const out = run(cfg({ emaPeriod: 5 }), input.map(closeOnly));
      check("ema5", alignedPairs(expected, out.map((v) => v.ema)), 1e-3, 3, 4);
    });

    it("rsi 5 (Wilder) within 1e-3", () => {
      const [input = [], expected = []] = tulip(entries, "rsi", [5], 2);
      const out = run(cfg({ rsiPeriod: 5 }), input.map(closeOnly));
      expect(firstIndex(out.map((v) => v.rsi))).toBe(input.length - expected.length);
      check("rsi5", alignedPairs(expected, out.map((v) => v.rsi)), 1e-3, 14);
    });

    it("atr 4 within 1e-3", () => {
      const [high = [], low = [], close = [], expected = []] = tulip(entries, "atr", [4], 4);
      const out = run(cfg({ atrPeriod: 4 }), close.map((c, i) => ({ high: high[i] ?? NaN, low: low[i] ?? NaN, close: c })));
      expect(firstIndex(out.map((v) => v.atr))).toBe(close.length - expected.length);
      check("atr4", alignedPairs(expected, out.map((v) => v.atr)), 1e-3, 16);
    });

    it("bbands 5 2 within 1e-3", () => {
      const [input = [], lower = [], middle = [], upper = []] = tulip(entries, "bbands", [5, 2], 4);
      const out = run(cfg({ bollingerPeriod: 5, bollingerStdDev: 2 }), input.map(closeOnly));
      expect(firstIndex(out.map((v) => v.bollinger?.middle))).toBe(input.length - middle.length);
      check("bb lower", alignedPairs(lower, out.map((v) => v.bollinger?.lower)), 1e-3, 17);
      check("bb middle", alignedPairs(middle, out.map((v) => v.bollinger?.middle)), 1e-3, 17);
      check("bb upper", alignedPairs(upper, out.map((v) => v.bollinger?.upper)), 1e-3, 17);
    });

    it("macd 12 26 9: Tulip/Achelis use alphas 0.15 and 0.075, reproduced within 1e-6 with those alphas", () => {
      const [input = [], macd = [], signal = [], hist = []] = tulip(entries, "macd", [12, 26, 9], 4);
      // Tulip's macd.c special-cases 12/26 to the book's rounded smoothing constants 0.15 and
      // 0.075 instead of 2/13 and 2/27, so the standard MACD does not converge to it. We rebuild it
      // from the library's EMA class (alpha = 2/(n+1): n = 37/3 gives 0.15, n = 77/3 gives 0.075),
      // both seeded with the first close, signal EMA(9) seeded with the first MACD at bar 26 --
      // the same seeding as the library's MACD class.
      const fast = new EMA(37 / 3);
      const slow = new EMA(77 / 3);
      const sig = new EMA(9);
      const offset = input.length - macd.length;
      expect(offset).toBe(25);
      const rebuilt = input.map((x, i) => {
        const m = (fast.add(x) ?? NaN) - (slow.add(x) ?? NaN);
        if (i < offset) return null;
        const s = sig.add(m) ?? NaN;
        return { macd: m, signal: s, histogram: m - s };
      });
      check("macd (0.15/0.075)", alignedPairs(macd, rebuilt.map((v) => v?.macd)), 1e-6, 29);
      check("signal (0.15/0.075)", alignedPairs(signal, rebuilt.map((v) => v?.signal)), 1e-6, 29);
      check("hist (0.15/0.075)", alignedPairs(hist, rebuilt.map((v) => v?.histogram)), 1e-6, 29);

      // The standard MACD (IndicatorSet) starts on bar 34 and stays visibly apart (~0.01).
      const out = run(cfg({}), input.map(closeOnly));
      expect(firstIndex(out.map((v) => v.macd?.macd))).toBe(33);
      const gaps = alignedPairs(macd, out.map((v) => v.macd?.macd)).filter((p) => p.got != null && p.ref != null).map((p) => Math.abs((p.got ?? 0) - (p.ref ?? 0)));
      expect(gaps.length).toBe(22);
      expect(Math.max(...gaps)).toBeGreaterThan(1e-3);
      expect(Math.max(...gaps)).toBeLessThan(0.1);
    });
  });
});

// ---------------------------------------------------------------------------------------------
// Properties.

const price = fc.double({ min: 0.5, max: 500, noNaN: true, noDefaultInfinity: true });
const offset = fc.double({ min: 0, max: 0.4, noNaN: true, noDefaultInfinity: true });
const hlc = fc.tuple(price, offset, offset).map(([c, up, down]) => ({ high: c + up, low: c - down, close: c }));
const smallConfig: fc.Arbitrary<IndicatorConfig> = fc
  .record({
    smaPeriod: fc.integer({ min: 1, max: 12 }),
    emaPeriod: fc.integer({ min: 1, max: 12 }),
    rsiPeriod: fc.integer({ min: 2, max: 12 }),
    atrPeriod: fc.integer({ min: 1, max: 12 }),
    bollingerPeriod: fc.integer({ min: 1, max: 12 }),
    bollingerStdDev: fc.double({ min: 0.5, max: 3, noNaN: true }),
    macdFast: fc.integer({ min: 1, max: 8 }),
    macdSlow: fc.integer({ min: 9, max: 14 }),
    macdSignal: fc.integer({ min: 1, max: 6 }),
  });

describe("IndicatorSet properties", () => {
  it("averages of a constant series equal the constant; bands collapse; ATR of flat bars is 0", () => {
    fc.assert(
      fc.property(price, fc.integer({ min: 35, max: 80 }), (p, n) => {
        const set = new IndicatorSet();
        let v = set.values();
        for (let i = 0; i < n; i++) v = set.update(closeOnly(p));
        const near = (x: number | null | undefined, want: number) => expect(Math.abs((x ?? NaN) - want)).toBeLessThanOrEqual(1e-9 * Math.max(1, Math.abs(want)));
        near(v.sma, p);
        near(v.ema, p);
        near(v.bollinger?.middle, p);
        near(v.bollinger?.upper, p);
        near(v.bollinger?.lower, p);
        near(v.atr, 0);
        near(v.macd?.macd, 0);
      }),
    );
  });

  it("RSI stays within [0, 100] and the bands are ordered upper >= middle >= lower", () => {
    fc.assert(
      fc.property(smallConfig, fc.array(hlc, { minLength: 1, maxLength: 80 }), (config, candles) => {
        const set = new IndicatorSet(config);
        for (const c of candles) {
          const v = set.update(c);
          if (v.rsi !== null) {
            expect(v.rsi).toBeGreaterThanOrEqual(0);
            expect(v.rsi).toBeLessThanOrEqual(100);
          }
          if (v.bollinger !== null) {
            expect(v.bollinger.upper).toBeGreaterThanOrEqual(v.bollinger.middle);
            expect(v.bollinger.middle).toBeGreaterThanOrEqual(v.bollinger.lower);
          }
          if (v.atr !== null) expect(v.atr).toBeGreaterThanOrEqual(0);
        }
      }),
    );
  });

  it("each value is null before its warm-up and a finite number from then on", () => {
    fc.assert(
      fc.property(smallConfig, fc.array(hlc, { minLength: 1, maxLength: 60 }), (config, candles) => {
        const set = new IndicatorSet(config);
        expect(set.values()).toEqual({ sma: null, ema: null, rsi: null, atr: null, bollinger: null, macd: null });
        candles.forEach((c, i) => {
          const bars = i + 1;
          const v = set.update(c);
          expect(set.values()).toEqual(v);
          const expectWarm = (x: number | null | undefined, warmAt: number) => {
            if (bars < warmAt) expect(x).toBeNull();
            else expect(Number.isFinite(x)).toBe(true);
          };
          expectWarm(v.sma, config.smaPeriod);
          expectWarm(v.ema, config.emaPeriod);
          expectWarm(v.rsi, config.rsiPeriod + 1);
          expectWarm(v.atr, config.atrPeriod);
          expectWarm(v.bollinger?.lower ?? null, config.bollingerPeriod);
          expectWarm(v.macd?.histogram ?? null, config.macdSlow + config.macdSignal - 1);
        });
      }),
    );
  });

  it("roundIndicatorValues never gives -0 (a tiny negative rounds to plain 0)", () => {
    const v: IndicatorValues = { sma: -1e-17, ema: null, rsi: null, atr: null, bollinger: null, macd: { macd: -2e-17, signal: 0, histogram: -2e-17 } };
    const r = roundIndicatorValues(v, 0);
    expect(Object.is(r.sma, 0)).toBe(true);
    expect(Object.is(r.macd?.histogram, 0)).toBe(true);
  });

  it("roundIndicatorValues rounds every number to the given digits and keeps nulls", () => {
    fc.assert(
      fc.property(smallConfig, fc.array(hlc, { minLength: 1, maxLength: 40 }), fc.integer({ min: 0, max: 8 }), (config, candles, digits) => {
        const set = new IndicatorSet(config);
        let v = set.values();
        for (const c of candles) v = set.update(c);
        const r = roundIndicatorValues(v, digits);
        const flat = (x: IndicatorValues) => [x.sma, x.ema, x.rsi, x.atr, x.bollinger?.upper ?? null, x.bollinger?.middle ?? null, x.bollinger?.lower ?? null, x.macd?.macd ?? null, x.macd?.signal ?? null, x.macd?.histogram ?? null];
        const before = flat(v);
        flat(r).forEach((x, k) => {
          const b = before[k];
          if (b === null || b === undefined) return expect(x).toBeNull();
          expect(Math.abs((x ?? NaN) - b)).toBeLessThanOrEqual(0.5 * 10 ** -digits + 1e-9);
          expect(x).toBe(Number((x ?? NaN).toFixed(digits)));
        });
      }),
    );
  });
});

describe("candleToMidHLC and config checks", () => {
  it("takes bid/ask mids in decimal price", () => {
    const c: Candle = { t: 0, bo: 108_000, bh: 108_100, bl: 107_900, bc: 108_050, ao: 108_002, ah: 108_104, al: 107_902, ac: 108_052, n: 3 };
    expect(candleToMidHLC(c, 5)).toEqual({ high: 1.08102, low: 1.07901, close: 1.08051 });
    expect(candleToMidHLC(c, 3)).toEqual({ high: 108.102, low: 107.901, close: 108.051 });
  });

  it("rejects bad config and non-finite input", () => {
    expect(() => new IndicatorSet(cfg({ smaPeriod: 0 }))).toThrow(RangeError);
    expect(() => new IndicatorSet(cfg({ rsiPeriod: 1 }))).toThrow(RangeError);
    expect(() => new IndicatorSet(cfg({ macdFast: 26, macdSlow: 12 }))).toThrow(RangeError);
    expect(() => new IndicatorSet().update({ high: 1, low: 1, close: NaN })).toThrow(RangeError);
  });
});
