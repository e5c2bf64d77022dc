import { existsSync } from "node:fs";
import path from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { CandleAggregator } from "../../src/domain/candle-aggregator.ts";
import { getInstrument } from "../../src/domain/instruments.ts";
import {
  barToTicks,
  detectFormat,
  isHeaderLine,
  parseBidAskBar,
  parseHistdataM1,
  parseHistdataTick,
  parseIsoTick,
  parseQuote,
  type HistoryFormat,
  type M1Bar,
} from "../../src/ingest/history-formats.ts";
import { readLines } from "../../src/ingest/read-lines.ts";
import { parseZone } from "../../src/ingest/time-zone.ts";

const DATA = path.resolve(import.meta.dirname, "../../../shared/data");
const present = existsSync(path.join(DATA, "ticks")) && existsSync(path.join(DATA, "m1_histdata"));
if (!present) console.warn(`history-formats: real-data cases skipped, no data at ${DATA}`);

const EST = parseZone("EST");
const UTC = parseZone("UTC");
const NEW_YORK = parseZone("America/New_York");
const EUR_USD = getInstrument("EUR_USD");
const USD_JPY = getInstrument("USD_JPY");
const iso = (ms: number): string => new Date(ms).toISOString();

/** The header (if any) and the first data line of a real file. */
async function firstLines(file: string): Promise<{ header: string | undefined; data: string }> {
  let header: string | undefined;
  for await (const line of readLines(path.join(DATA, file))) {
    if (isHeaderLine(line)) header = line;
    else return { header, data: line };
  }
  throw new Error(`${file} has no data line`);
}

describe.skipIf(!present)("real first lines", () => {
  const cases: [string, HistoryFormat, boolean][] = [
    ["m1_histdata/DAT_ASCII_EURUSD_M1_2018.csv.gz", "histdata_m1", false],
    ["m1_histdata/DAT_ASCII_USDJPY_M1_2019.csv.gz", "histdata_m1", false],
    ["ticks/histdata_EURUSD_T_20200101.csv.gz", "histdata_tick", false],
    ["ticks/lean_fxcm_EURUSD_ticks_20140501-20140515.csv.gz", "lean_tick", true],
    ["ticks/lean_oanda_EURUSD_ticks_20140501-20140515.csv.gz", "lean_tick", true],
    ["ticks/truefx_USDJPY_ticks_20130101.csv.gz", "truefx_tick", true],
    ["bars_bidask/lean_oanda_EURUSD_M1_bidask_15days_2014-2018.csv.gz", "lean_bidask_m1", true],
    ["bars_bidask/lean_fxcm_EURUSD_M1_bidask_17days_2011-2018.csv.gz", "lean_bidask_m1", true],
  ];
  it.each(cases)("%s is detected as %s", async (file, format, hasHeader) => {
    const { header, data } = await firstLines(file);
    expect(header !== undefined).toBe(hasHeader);
    expect(detectFormat(data)).toBe(format);
  });

  it("histdata M1: EURUSD 2018 first bar, on the EST clock and on the New York clock (same in winter)", async () => {
    const { data } = await firstLines("m1_histdata/DAT_ASCII_EURUSD_M1_2018.csv.gz");
    const bar = { ts: Date.UTC(2018, 0, 1, 22), open: 1.20037, high: 1.201, low: 1.20037, close: 1.201 };
    expect(parseHistdataM1(data, 1, EST)).toEqual({ ok: true, value: bar });
    expect(parseHistdataM1(data, 1, NEW_YORK)).toEqual({ ok: true, value: bar });
  });

  it("histdata M1: USDJPY 2019 first bar", async () => {
    const { data } = await firstLines("m1_histdata/DAT_ASCII_USDJPY_M1_2019.csv.gz");
    expect(parseHistdataM1(data, 1, EST)).toEqual({
      ok: true,
      value: { ts: Date.UTC(2019, 0, 1, 22), open: 109.648, high: 109.65, low: 109.648, close: 109.65 },
    });
  });

  it("histdata ticks: ms in the timestamp, EST clock", async () => {
    const { data } = await firstLines("ticks/histdata_EURUSD_T_20200101.csv.gz");
    const r = parseHistdataTick(data, 1, EST);
    expect(r).toEqual({ ok: true, value: { ts: Date.parse("2020-01-01T22:00:00.065Z"), bid: 1.1212, ask: 1.12172 } });
  });

  it("LEAN FXCM ticks: fixed -05:00 offset in the timestamp (zone argument ignored)", async () => {
    const { data } = await firstLines("ticks/lean_fxcm_EURUSD_ticks_20140501-20140515.csv.gz");
    const r = parseIsoTick(data, 2, NEW_YORK);
    expect(r).toEqual({ ok: true, value: { ts: Date.parse("2014-05-01T05:00:01.787Z"), bid: 1.38727, ask: 1.38729 } });
  });

  it("LEAN OANDA ticks: Z", async () => {
    const { data } = await firstLines("ticks/lean_oanda_EURUSD_ticks_20140501-20140515.csv.gz");
    expect(parseIsoTick(data, 2, EST)).toEqual({
      ok: true,
      value: { ts: Date.parse("2014-05-01T00:00:00.292Z"), bid: 1.38676, ask: 1.38686 },
    });
  });

  it("TrueFX ticks: space separator, microseconds, +00:00", async () => {
    const { data } = await firstLines("ticks/truefx_USDJPY_ticks_20130101.csv.gz");
    expect(parseQuote("truefx_tick", data, 2, EST)).toEqual({
      ok: true,
      value: { ts: Date.parse("2013-01-01T22:00:00.295Z"), bid: 86.655, ask: 86.728 },
    });
  });

  it("LEAN bid/ask M1 bars, UTC and -05:00", async () => {
    const oanda = await firstLines("bars_bidask/lean_oanda_EURUSD_M1_bidask_15days_2014-2018.csv.gz");
    expect(parseBidAskBar(oanda.data, 2, EST)).toEqual({
      ok: true,
      value: {
        ts: Date.parse("2014-05-01T00:00:00Z"),
        bidOpen: 1.38676, bidHigh: 1.38686, bidLow: 1.38669, bidClose: 1.38686,
        askOpen: 1.38686, askHigh: 1.38697, askLow: 1.3868, askClose: 1.38697,
      },
    });
    const fxcm = await firstLines("bars_bidask/lean_fxcm_EURUSD_M1_bidask_17days_2011-2018.csv.gz");
    const r = parseBidAskBar(fxcm.data, 2, UTC);
    expect(r.ok && iso(r.value.ts)).toBe("2011-03-07T05:00:00.000Z");
  });

  it("whole files parse with no bad rows and ordered timestamps", { timeout: 60_000 }, async () => {
    const files: [string, (line: string, n: number) => { ok: boolean; value?: { ts: number } }][] = [
      ["ticks/histdata_EURUSD_T_20200101.csv.gz", (l, n) => parseHistdataTick(l, n, EST)],
      ["ticks/truefx_USDJPY_ticks_20130101.csv.gz", (l, n) => parseIsoTick(l, n, UTC)],
      // SOURCES.md: the 2018 histdata clock is New York local time; no repeated hour falls in trading time.
      ["m1_histdata/DAT_ASCII_EURUSD_M1_2018.csv.gz", (l, n) => parseHistdataM1(l, n, NEW_YORK)],
    ];
    const counts: Record<string, number> = {};
    for (const [file, parse] of files) {
      let lineNo = 0;
      let rows = 0;
      let bad = 0;
      let unordered = 0;
      let last = Number.NEGATIVE_INFINITY;
      for await (const line of readLines(path.join(DATA, file))) {
        lineNo++;
        if (isHeaderLine(line)) continue;
        const r = parse(line, lineNo);
        if (!r.ok || !r.value) { bad++; continue; }
        rows++;
        if (r.value.ts < last) unordered++;
        last = r.value.ts;
      }
      counts[file] = rows;
      expect({ file, bad, unordered }).toEqual({ file, bad: 0, unordered: 0 });
    }
    expect(Object.values(counts)).toEqual([9_500, 1_000, 372_607]);
  });
});

describe("bad rows are reported, not thrown", () => {
  const m1 = (line: string) => parseHistdataM1(line, 7, EST);
  it.each([
    ["20180101 170000;1.2;1.3;1.1;1.2", "field_count"],
    ["20180101 170000;1.2;1.3;1.1;1.2;0;9", "field_count"],
    ["", "field_count"],
    ["20180101 170000;1.2;abc;1.1;1.2;0", "bad_number"],
    ["20180101 170000;1.2;;1.1;1.2;0", "bad_number"],
    ["20180101 170000;1.2;1e5;1.1;1.2;0", "bad_number"],
    ["20180101 170000;1.2;Infinity;1.1;1.2;0", "bad_number"],
    ["20180101 170000;-1.2;1.3;1.1;1.2;0", "bad_number"],
    ["20180101 170000;0;1.3;1.1;1.2;0", "bad_number"],
    ["20180101 170000;1.2;1.3;1.1;1.2;x", "bad_number"],
    ["20180230 170000;1.2;1.3;1.1;1.2;0", "bad_timestamp"],
    ["20190229 170000;1.2;1.3;1.1;1.2;0", "bad_timestamp"],
    ["20181301 170000;1.2;1.3;1.1;1.2;0", "bad_timestamp"],
    ["20180101 240000;1.2;1.3;1.1;1.2;0", "bad_timestamp"],
    ["20180101 176000;1.2;1.3;1.1;1.2;0", "bad_timestamp"],
    ["2018010 1170000;1.2;1.3;1.1;1.2;0", "bad_timestamp"],
    ["20180101 170000;1.2;1.1;1.0;1.2;0", "bad_ohlc"],
    ["20180101 170000;1.2;1.3;1.25;1.2;0", "bad_ohlc"],
  ])("histdata M1 %j -> %s", (line, kind) => {
    const r = m1(line);
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.error.kind).toBe(kind);
      expect(r.error.line).toBe(7);
      expect(r.error.reason.length).toBeGreaterThan(0);
    }
  });

  it("accepts a leap day and trailing CR", () => {
    expect(m1("20160229 170000;1.2;1.3;1.1;1.2;0\r").ok).toBe(true);
  });

  it.each([
    ["2014-05-01T00:00:00.292Z,1.38676", "field_count"],
    ["2014-05-01T00:00:00.292Z,1.38676,1.38686,0", "field_count"],
    ["2014-05-01T00:00:00.292Z,x,1.38686", "bad_number"],
    ["2014-05-01T00:00:00.292Z,1.38676,", "bad_number"],
    ["2014-02-30T00:00:00.292Z,1.38676,1.38686", "bad_timestamp"],
    ["2014-05-01T25:00:00.292Z,1.38676,1.38686", "bad_timestamp"],
    ["2014-05-01T00:00:00.292+25:00,1.38676,1.38686", "bad_timestamp"],
    ["2014-05-01,1.38676,1.38686", "bad_timestamp"],
  ])("ISO tick %j -> %s", (line, kind) => {
    const r = parseIsoTick(line, 3, UTC);
    expect(r.ok ? "ok" : r.error.kind).toBe(kind);
  });

  it.each([
    ["20200101 170000065,1.1212,1.12172", "field_count"],
    ["20200101 17000006,1.1212,1.12172,0", "bad_timestamp"],
    ["20200132 170000065,1.1212,1.12172,0", "bad_timestamp"],
    ["20200101 170000065,1.1212,NaN,0", "bad_number"],
  ])("histdata tick %j -> %s", (line, kind) => {
    const r = parseHistdataTick(line, 4, EST);
    expect(r.ok ? "ok" : r.error.kind).toBe(kind);
  });

  it("crossed quotes parse (the runtime judges them)", () => {
    expect(parseIsoTick("2014-05-01T00:00:00.000-05:00,1.38730,1.38729", 1, UTC).ok).toBe(true);
  });

  it("ISO timestamps without an offset use the zone", () => {
    const r = parseIsoTick("2018-07-02 17:00:00,1.1,1.2", 1, NEW_YORK);
    expect(r.ok && iso(r.value.ts)).toBe("2018-07-02T21:00:00.000Z");
  });

  it("detectFormat: unknown lines give undefined; headers are recognised", () => {
    expect(detectFormat("hello,world")).toBeUndefined();
    expect(detectFormat("2014-05-01T00:00:00Z,1,2,3,4")).toBeUndefined();
    expect(isHeaderLine("timestamp,bid,ask")).toBe(true);
    expect(isHeaderLine("\uFEFFtimestamp,bid,ask")).toBe(true);
    expect(isHeaderLine("20180101 170000;1;1;1;1;0")).toBe(false);
  });
});

describe("barToTicks", () => {
  const barArb = fc
    .record({
      instrument: fc.constantFrom(EUR_USD, USD_JPY),
      minute: fc.integer({ min: 25_000_000, max: 30_000_000 }), // minutes since epoch: 2017..2027
      open: fc.integer({ min: 50_000, max: 200_000 }),
      close: fc.integer({ min: 50_000, max: 200_000 }),
      up: fc.integer({ min: 0, max: 500 }),
      down: fc.integer({ min: 0, max: 500 }),
      spreadPoints: fc.integer({ min: 0, max: 80 }),
    })
    .map((r) => {
      const scale = 10 ** r.instrument.displayPrecision;
      const highPoints = Math.max(r.open, r.close) + r.up;
      const lowPoints = Math.min(r.open, r.close) - r.down;
      const bar: M1Bar = { ts: r.minute * 60_000, open: r.open / scale, high: highPoints / scale, low: lowPoints / scale, close: r.close / scale };
      return { ...r, bar, highPoints, lowPoints };
    });

  it("property: 4 ordered ticks in the bar's minute whose aggregate is the bar (bid) and bar + spread (ask)", () => {
    fc.assert(
      fc.property(barArb, ({ instrument, bar, open, close, highPoints, lowPoints, spreadPoints }) => {
        const ticks = barToTicks(bar, spreadPoints, instrument);
        expect(ticks).toHaveLength(4);
        for (let i = 1; i < ticks.length; i++) expect(ticks[i]!.ts).toBeGreaterThan(ticks[i - 1]!.ts);
        expect(ticks[0]!.ts).toBe(bar.ts);
        expect(ticks[3]!.ts).toBe(bar.ts + 59_999);
        for (const t of ticks) expect(t.ask - t.bid).toBe(spreadPoints);
        // Up bars visit the low first, down bars the high first.
        expect(ticks.map((t) => t.bid)).toEqual(close >= open ? [open, lowPoints, highPoints, close] : [open, highPoints, lowPoints, close]);

        const agg = new CandleAggregator();
        const closed = ticks.flatMap((t) => agg.onTick(t)).concat(agg.closeDue(bar.ts + 60_000));
        const oneMinute = closed.filter((c) => c.tf === "1m");
        expect(oneMinute).toHaveLength(1);
        expect(oneMinute[0]!.candle).toEqual({
          t: bar.ts,
          bo: open, bh: highPoints, bl: lowPoints, bc: close,
          ao: open + spreadPoints, ah: highPoints + spreadPoints, al: lowPoints + spreadPoints, ac: close + spreadPoints,
          n: 4,
        });
      }),
      { numRuns: 1000 },
    );
  });

  it("rejects a non-integer or negative spread", () => {
    const bar = { ts: 0, open: 1, high: 1, low: 1, close: 1 };
    expect(() => barToTicks(bar, 1.5, EUR_USD)).toThrow(RangeError);
    expect(() => barToTicks(bar, -1, EUR_USD)).toThrow(RangeError);
  });
});
