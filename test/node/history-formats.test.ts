import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { emptyReadStats, HttpFailure, pacedBatches, parseArgs, postTicks, readWireTicks, replay, UsageError } from "../../scripts/replay.ts";
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

/*
 * scripts/replay.ts: its parsing, batching and HTTP paths, against a local
 * stand-in server (the runtime itself is tested elsewhere).
 */
describe("scripts/replay.ts", () => {
  const ROOT = path.resolve(import.meta.dirname, "../..");
  let dir = "";
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "replay-test-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
    const out: T[] = [];
    for await (const x of it) out.push(x);
    return out;
  }

  async function* fromArray<T>(xs: readonly T[]): AsyncGenerator<T> {
    yield* xs;
  }

  /** A stand-in for the runtime's tick route: answers with `respond`, records the bodies. */
  async function standIn(respond: (ticks: { ts: number; bid: number; ask: number }[]) => [number, unknown]) {
    const bodies: { ticks: { ts: number; bid: number; ask: number }[] }[] = [];
    const paths: string[] = [];
    const server = createServer((req, res) => {
      let text = "";
      req.on("data", (c: Buffer) => (text += c.toString()));
      req.on("end", () => {
        const body = JSON.parse(text) as { ticks: { ts: number; bid: number; ask: number }[] };
        bodies.push(body);
        paths.push(`${req.method} ${req.url}`);
        const [status, answer] = respond(body.ticks);
        res.writeHead(status, { "content-type": "application/json" }).end(typeof answer === "string" ? answer : JSON.stringify(answer));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const address = server.address();
    const port = typeof address === "object" && address ? address.port : 0;
    return { url: `http://127.0.0.1:${port}`, bodies, paths, close: () => new Promise<void>((r) => server.close(() => r())) };
  }

  it("parseArgs: defaults and every option", () => {
    const o = parseArgs(["f.csv.gz", "--pair", "USD_JPY"]);
    expect(o).toMatchObject({ file: "f.csv.gz", speed: 60, url: "http://127.0.0.1:8787", spreadPoints: 10, batchSize: 500, dryRun: false });
    expect(o.instrument.symbol).toBe("USD_JPY");
    expect(o.zone).toMatchObject({ kind: "fixed", offsetMs: -5 * 3_600_000 });
    expect(o.limitTicks).toBe(Number.POSITIVE_INFINITY);
    const p = parseArgs([
      "--pair=EUR_USD", "x.csv", "--tz", "America/New_York", "--speed", "max", "--url", "http://h:1/", "--spread-pips", "0.5",
      "--from", "2018-01-01T00:00:00Z", "--to", "2018-02-01", "--batch", "1000", "--limit", "7", "--dry-run",
    ]);
    expect(p).toMatchObject({
      file: "x.csv", speed: "max", url: "http://h:1", spreadPoints: 5, batchSize: 1000, limitTicks: 7, dryRun: true,
      fromMs: Date.UTC(2018, 0, 1), toMs: Date.UTC(2018, 1, 1),
    });
    expect(p.zone).toMatchObject({ kind: "iana", name: "America/New_York" });
  });

  it.each([
    [[]],
    [["f.csv"]],
    [["f.csv", "--pair", "XXX_YYY"]],
    [["f.csv", "g.csv", "--pair", "EUR_USD"]],
    [["f.csv", "--pair", "EUR_USD", "--batch", "1001"]],
    [["f.csv", "--pair", "EUR_USD", "--speed", "0"]],
    [["f.csv", "--pair", "EUR_USD", "--tz", "Nowhere/Land"]],
    [["f.csv", "--pair", "EUR_USD", "--from", "yesterday"]],
    [["f.csv", "--pair", "EUR_USD", "--url", "ftp://x"]],
    [["f.csv", "--pair", "EUR_USD", "--speeed", "1"]],
    [["f.csv", "--pair"]],
  ])("parseArgs rejects %j", (argv) => {
    expect(() => parseArgs(argv)).toThrow(UsageError);
  });

  it.skipIf(!present)("histdata M1 rows become 4 wire ticks each, decimals at display precision, ask = bid + spread", async () => {
    const o = parseArgs([path.join(DATA, "m1_histdata/DAT_ASCII_EURUSD_M1_2018.csv.gz"), "--pair", "EUR_USD", "--limit", "8", "--spread-pips", "1.2"]);
    const stats = emptyReadStats();
    const ticks = await collect(readWireTicks(o, stats));
    const t0 = Date.UTC(2018, 0, 1, 22);
    // 20180101 170000;1.200370;1.201000;1.200370;1.201000 (up bar) then 170100;1.200830;1.200950;1.200170;1.200300 (down bar)
    expect(ticks).toEqual([
      { ts: t0, bid: 1.20037, ask: 1.20049 },
      { ts: t0 + 15_000, bid: 1.20037, ask: 1.20049 },
      { ts: t0 + 30_000, bid: 1.201, ask: 1.20112 },
      { ts: t0 + 59_999, bid: 1.201, ask: 1.20112 },
      { ts: t0 + 60_000, bid: 1.20083, ask: 1.20095 },
      { ts: t0 + 75_000, bid: 1.20095, ask: 1.20107 },
      { ts: t0 + 90_000, bid: 1.20017, ask: 1.20029 },
      { ts: t0 + 119_999, bid: 1.2003, ask: 1.20042 },
    ]);
    expect(stats).toMatchObject({ format: "histdata_m1", rows: 2, badRows: 0 });
  });

  it("bad rows are counted by kind and skipped; --from/--to filter by tick time", async () => {
    const file = path.join(dir, "ticks.csv");
    await writeFile(
      file,
      [
        "timestamp,bid,ask",
        "2014-05-01T00:00:00.292Z,1.38676,1.38686",
        "2014-05-01T00:00:01.000Z,1.38676",
        "2014-05-01T00:00:02.000Z,abc,1.38686",
        "2014-05-01T00:00:03.000Z,1.386761,1.38686", // more digits than the pair shows: rounded to 1.38676
        "",
        "2014-02-30T00:00:04.000Z,1.38676,1.38686",
        "2014-05-01T00:00:05.000Z,1.38690,1.38680", // crossed: parsed, the runtime decides
        "2014-05-01T00:00:06.000Z,1.38690,1.38700",
      ].join("\r\n"),
    );
    const stats = emptyReadStats();
    const o = parseArgs([file, "--pair", "EUR_USD", "--to", "2014-05-01T00:00:06Z"]);
    const ticks = await collect(readWireTicks(o, stats));
    expect(ticks).toEqual([
      { ts: Date.parse("2014-05-01T00:00:00.292Z"), bid: 1.38676, ask: 1.38686 },
      { ts: Date.parse("2014-05-01T00:00:03Z"), bid: 1.38676, ask: 1.38686 },
      { ts: Date.parse("2014-05-01T00:00:05Z"), bid: 1.3869, ask: 1.3868 },
    ]);
    expect(stats).toMatchObject({ format: "lean_tick", rows: 7, badRows: 3, outOfRange: 1, badByKind: { field_count: 1, bad_number: 1, bad_timestamp: 1 } });
    expect(stats.badSamples.map((b) => b.line)).toEqual([3, 4, 7]);
  });

  it("an unrecognised file is a usage error", async () => {
    const file = path.join(dir, "x.csv");
    await writeFile(file, "1;2;3\n");
    await expect(collect(readWireTicks(parseArgs([file, "--pair", "EUR_USD"]), emptyReadStats()))).rejects.toThrow(UsageError);
  });

  it("pacedBatches: --speed N spreads market time, --speed max packs full batches", async () => {
    const ticks = Array.from({ length: 1200 }, (_, i) => ({ ts: 1_000_000 + i * 1000, bid: 1, ask: 1 }));
    const max = await collect(pacedBatches(fromArray(ticks), 500, "max"));
    expect(max.map((b) => b.ticks.length)).toEqual([500, 500, 200]);
    expect(max.every((b) => b.dueWallMs === 0)).toBe(true);
    // 1 market second per tick at speed 10 = 100 ms wall per tick: 3 ticks fit the 250 ms window.
    const paced = await collect(pacedBatches(fromArray(ticks.slice(0, 10)), 500, 10));
    expect(paced.map((b) => b.ticks.length)).toEqual([3, 3, 3, 1]);
    expect(paced.map((b) => b.dueWallMs)).toEqual([200, 500, 800, 900]);
  });

  it("pacedBatches: a market gap (weekend) waits at most maxGapWallMs", async () => {
    const weekendMs = 48 * 3_600_000;
    const ticks = [0, 1000, 1000 + weekendMs, 2000 + weekendMs].map((ts) => ({ ts, bid: 1, ask: 1 }));
    const capped = await collect(pacedBatches(fromArray(ticks), 500, 60, 5_000));
    expect(capped.at(-1)!.dueWallMs).toBeCloseTo(1000 / 60 + 5_000 + 1000 / 60, 6);
    const uncapped = await collect(pacedBatches(fromArray(ticks), 500, 60));
    expect(uncapped.at(-1)!.dueWallMs).toBeCloseTo((2000 + weekendMs) / 60, 6);
  });

  it("replay: paces by market time, tallies accepted and rejected by type", async () => {
    let now = 0;
    const sleeps: number[] = [];
    const sent: number[] = [];
    const file = path.join(dir, "paced.csv");
    // Three ticks a market minute apart, the last one crossed.
    await writeFile(file, "2014-05-01T00:00:00Z,1.1,1.2\n2014-05-01T00:01:00Z,1.1,1.2\n2014-05-01T00:02:00Z,1.3,1.2\n");
    const summary = await replay(parseArgs([file, "--pair", "EUR_USD", "--speed", "60"]), {
      send: async (ticks) => {
        sent.push(ticks.length);
        const crossed = ticks.filter((t) => t.bid > t.ask).length;
        return { accepted: ticks.length - crossed, rejectedByType: crossed ? { crossed } : {} };
      },
      nowMs: () => now,
      sleepMs: async (ms) => {
        sleeps.push(ms);
        now += ms;
      },
      log: () => {},
      stopped: () => false,
    });
    expect(sleeps).toEqual([1000, 1000]); // a market minute is a wall second at --speed 60
    expect(sent).toEqual([1, 1, 1]);
    expect(summary).toMatchObject({ rows: 3, sent: 3, requests: 3, accepted: 2, rejected: 1, rejectedByType: { crossed: 1 }, badRows: 0 });
  });

  it("postTicks: sends the contract body, reads the answer, fails on 4xx/5xx and off-contract answers", async () => {
    const server = await standIn((ticks) =>
      ticks.length === 2
        ? [200, { accepted: 1, rejected: [{ index: 1, reason: { type: "out_of_order", ts: 1, lastTs: 2 } }] }]
        : ticks.length === 1
          ? [400, { error: { code: "invalid_ticks", message: "the request does not match the schema" } }]
          : [200, "not json"],
    );
    try {
      const ok = await postTicks(server.url, "EUR_USD", [{ ts: 2, bid: 1.1, ask: 1.2 }, { ts: 1, bid: 1.1, ask: 1.2 }]);
      expect(ok).toEqual({ accepted: 1, rejectedByType: { out_of_order: 1 } });
      expect(server.paths[0]).toBe("POST /api/pairs/EUR_USD/ticks");
      // Each batch under an id of its own: one sent again after a lost answer stores nothing twice.
      expect(server.bodies[0]).toEqual({ ticks: [{ ts: 2, bid: 1.1, ask: 1.2 }, { ts: 1, bid: 1.1, ask: 1.2 }], replay: true, batchId: expect.stringMatching(/^replay-[0-9a-f-]{36}$/) });
      await expect(postTicks(server.url, "EUR_USD", [{ ts: 1, bid: 1, ask: 1 }])).rejects.toThrow(/HTTP 400 invalid_ticks/);
      await expect(postTicks(server.url, "EUR_USD", [])).rejects.toThrow(HttpFailure);
    } finally {
      await server.close();
    }
    await expect(postTicks(server.url, "EUR_USD", [{ ts: 1, bid: 1, ask: 1 }])).rejects.toThrow(HttpFailure);
  });

  it.skipIf(!present)("the CLI end to end against a stand-in: exit 0 with a JSON summary, exit 1 on an HTTP error", { timeout: 30_000 }, async () => {
    const run = (args: string[]) =>
      new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
        execFile(process.execPath, [path.join(ROOT, "node_modules/tsx/dist/cli.mjs"), path.join(ROOT, "scripts/replay.ts"), ...args], (err, stdout, stderr) =>
          resolve({ code: err ? Number(err.code) : 0, stdout, stderr }),
        );
      });
    const file = path.join(DATA, "ticks/truefx_USDJPY_ticks_20130101.csv.gz");
    const good = await standIn((ticks) => [200, { accepted: ticks.length, rejected: [] }]);
    try {
      const r = await run([file, "--pair", "USD_JPY", "--speed", "max", "--batch", "300", "--url", good.url]);
      expect(r.code).toBe(0);
      const summary = JSON.parse(r.stdout.trim().split("\n").at(-1) ?? "{}") as Record<string, unknown>;
      expect(summary).toMatchObject({ format: "truefx_tick", rows: 1000, sent: 1000, requests: 4, accepted: 1000, rejected: 0 });
      expect(good.bodies.map((b) => b.ticks.length)).toEqual([300, 300, 300, 100]);
      expect(good.bodies[0]!.ticks[0]).toEqual({ ts: Date.parse("2013-01-01T22:00:00.295Z"), bid: 86.655, ask: 86.728 });
    } finally {
      await good.close();
    }
    const bad = await standIn(() => [503, { error: { code: "unavailable", message: "try later" } }]);
    try {
      const r = await run([file, "--pair", "USD_JPY", "--speed", "max", "--url", bad.url]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/HTTP 503 unavailable: try later/);
    } finally {
      await bad.close();
    }
  });
});
