/**
 * The data-lake importer: Arrow IPC round trips of candles and ticks, the
 * manifest schema and merge helpers, row validation and deduplication, zip
 * input, merging into existing partitions and manifests (idempotent
 * re-import), and real files imported into a fresh local R2 (STATE_DIR)
 * then read back through a second platform proxy: a histdata M1 year, and
 * OANDA ticks whose 1m candles must equal OANDA's own 1m bid/ask bars.
 * Most merge tests use an in-memory bucket with the R2 methods the importer
 * uses; the proxy itself is exercised by the real-file imports.
 */
import { execFile, execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import zlib from "node:zlib";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  aggregateMinutes,
  importFile,
  mergeCandles,
  mergeTicks,
  parseArgs,
  readHistdataM1,
  readTicks,
  UsageError,
  type ImportSummary,
} from "../../scripts/import.ts";
import type { DataObject } from "../../scripts/data-bucket.ts";
import { MemoryBucket } from "../support/memory-bucket.ts";
import type { Candle, Tick } from "../../src/domain/candle.ts";
import { getInstrument } from "../../src/domain/instruments.ts";
import { toPoints } from "../../src/domain/price.ts";
import { candleBatches, candlesFromArrowIPC, candlesToArrowIPC } from "../../src/ingest/candle-arrow.ts";
import { bidAskBarToCandle, isHeaderLine, parseBidAskBar, parseHistdataM1 } from "../../src/ingest/history-formats.ts";
import {
  candleKey,
  candleManifestKey,
  ManifestError,
  mergePartitions,
  mergeSides,
  readCandleManifest,
  readTickManifest,
  tickKey,
  tickManifestKey,
  utcMonth,
  type CandleManifest,
} from "../../src/ingest/lake-manifest.ts";
import { readLines } from "../../src/ingest/read-lines.ts";
import { tickBatches, tickColumns, tickColumnsFromArrowIPC, ticksFromArrowIPC, ticksToArrowIPC } from "../../src/ingest/tick-arrow.ts";
import { parseZone } from "../../src/ingest/time-zone.ts";
import { listZipEntries, readInputLines, ZipError } from "../../src/ingest/zip-input.ts";

const ROOT = path.resolve(import.meta.dirname, "../..");
const DATA = path.resolve(ROOT, "../shared/data");
const FILE = path.join(DATA, "m1_histdata/DAT_ASCII_EURUSD_M1_2018.csv.gz");
const M1_2019 = path.join(DATA, "m1_histdata/DAT_ASCII_EURUSD_M1_2019.csv.gz");
const OANDA_TICKS = path.join(DATA, "ticks/lean_oanda_EURUSD_ticks_20140501-20140515.csv.gz");
const OANDA_BARS = path.join(DATA, "bars_bidask/lean_oanda_EURUSD_M1_bidask_15days_2014-2018.csv.gz");
const HISTDATA_TICKS = path.join(DATA, "ticks/histdata_EURUSD_T_20200101.csv.gz");
const TRUEFX_TICKS = path.join(DATA, "ticks/truefx_USDJPY_ticks_20130101.csv.gz");
const present = existsSync(FILE);
const ticksPresent = [M1_2019, OANDA_TICKS, OANDA_BARS, HISTDATA_TICKS, TRUEFX_TICKS].every(existsSync);
if (!present) console.warn(`import: real-data import skipped, no file at ${FILE}`);
if (!ticksPresent) console.warn(`import: real tick / bar imports skipped, files missing under ${DATA}`);

const hasZipCommand = (() => {
  try {
    execFileSync("zip", ["-v"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
})();
if (!hasZipCommand) console.warn("import: no zip command, the Info-ZIP archive test is skipped (hand-built zips are still tested)");

const EUR_USD = getInstrument("EUR_USD");
const EST = parseZone("EST");
const UTC = parseZone("UTC");
const quiet = (): void => {};

// ------------------------------------------------------------------ helpers

/** The R2 methods the importer uses, in memory; list pages hold 2 keys to exercise cursors. */
class ImportBucket extends MemoryBucket {
  constructor() {
    super(2);
  }
  json(key: string): unknown {
    const b = this.objects.get(key);
    return b ? JSON.parse(new TextDecoder().decode(b)) : undefined;
  }
  candles(key: string): Candle[] {
    return candlesFromArrowIPC(this.objects.get(key) as Uint8Array);
  }
}

/** A zip archive built by hand (stored or deflated entries, optionally with data descriptors). */
function makeZip(entries: { name: string; data: string | Uint8Array; method?: 0 | 8; descriptor?: boolean }[]): Uint8Array {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const e of entries) {
    const raw = Buffer.from(e.data);
    const method = e.method ?? 8;
    const body = method === 8 ? zlib.deflateRawSync(raw) : raw;
    const crc = zlib.crc32(raw);
    const name = Buffer.from(e.name);
    const flags = e.descriptor ? 0x8 : 0;
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(flags, 6);
    local.writeUInt16LE(method, 8);
    // With a data descriptor, crc and sizes are 0 here and follow the data.
    local.writeUInt32LE(e.descriptor ? 0 : crc, 14);
    local.writeUInt32LE(e.descriptor ? 0 : body.length, 18);
    local.writeUInt32LE(e.descriptor ? 0 : raw.length, 22);
    local.writeUInt16LE(name.length, 26);
    const descriptor = Buffer.alloc(e.descriptor ? 16 : 0);
    if (e.descriptor) {
      descriptor.writeUInt32LE(0x08074b50, 0);
      descriptor.writeUInt32LE(crc, 4);
      descriptor.writeUInt32LE(body.length, 8);
      descriptor.writeUInt32LE(raw.length, 12);
    }
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE(20, 4);
    central.writeUInt16LE(20, 6);
    central.writeUInt16LE(flags, 8);
    central.writeUInt16LE(method, 10);
    central.writeUInt32LE(crc, 16);
    central.writeUInt32LE(body.length, 20);
    central.writeUInt32LE(raw.length, 24);
    central.writeUInt16LE(name.length, 28);
    central.writeUInt32LE(offset, 42);
    locals.push(local, name, body, descriptor);
    centrals.push(central, name);
    offset += local.length + name.length + body.length + descriptor.length;
  }
  const cd = Buffer.concat(centrals);
  const eocd = Buffer.alloc(22);
  eocd.writeUInt32LE(0x06054b50, 0);
  eocd.writeUInt16LE(entries.length, 8);
  eocd.writeUInt16LE(entries.length, 10);
  eocd.writeUInt32LE(cd.length, 12);
  eocd.writeUInt32LE(offset, 16);
  return new Uint8Array(Buffer.concat([...locals, cd, eocd]));
}

async function collect(lines: AsyncIterable<string>): Promise<string[]> {
  const out: string[] = [];
  for await (const l of lines) out.push(l);
  return out;
}

/** Non-blank lines of a (gzip) file. */
async function fileLines(file: string): Promise<string[]> {
  return (await collect(readLines(file))).filter((l) => l.trim() !== "");
}

function histdataCandle(line: string): Candle {
  const r = parseHistdataM1(line, 0, EST);
  if (!r.ok) throw new Error(r.error.reason);
  const [bo, bh, bl, bc] = [r.value.open, r.value.high, r.value.low, r.value.close].map((x) => toPoints(x, EUR_USD)) as [number, number, number, number];
  return { t: r.value.ts, bo, bh, bl, bc, ao: bo, ah: bh, al: bl, ac: bc, n: 0 };
}

type Proxy = { env: { DATA: { get(key: string): Promise<DataObject | null> } }; dispose(): Promise<void> };

/** A second platform proxy on a STATE_DIR, as `npm start` would open it (full project config). */
async function openProxy(stateDir: string): Promise<Proxy> {
  process.env.CLOUDFLARE_CF_FETCH_ENABLED = "false";
  process.env.WRANGLER_SEND_METRICS = "false";
  const { getPlatformProxy } = await import("wrangler");
  return (await getPlatformProxy({ configPath: path.join(ROOT, "wrangler.jsonc"), persist: { path: path.join(stateDir, "v3") } })) as unknown as Proxy;
}

async function bytesOf(proxy: Proxy, key: string): Promise<Uint8Array> {
  const obj = await proxy.env.DATA.get(key);
  if (!obj) throw new Error(`no object ${key}`);
  return new Uint8Array(await obj.arrayBuffer());
}

// ------------------------------------------------------------------ Arrow

const int32 = fc.integer({ min: -2_147_483_648, max: 2_147_483_647 });
const candleArb: fc.Arbitrary<Candle> = fc.record({
  t: fc.integer({ min: 0, max: 2 ** 52 }),
  bo: int32, bh: int32, bl: int32, bc: int32, ao: int32, ah: int32, al: int32, ac: int32,
  n: fc.integer({ min: 0, max: 2_147_483_647 }),
});
const tickArb: fc.Arbitrary<Tick> = fc.record({ ts: fc.integer({ min: 0, max: 2 ** 52 }), bid: int32, ask: int32 });

describe("candlesToArrowIPC / candlesFromArrowIPC", () => {
  it("round-trips any candles exactly", () => {
    fc.assert(
      fc.property(fc.array(candleArb, { maxLength: 50 }), (candles) => {
        expect(candlesFromArrowIPC(candlesToArrowIPC(candles))).toEqual(candles);
      }),
      { numRuns: 200 },
    );
  });

  it("writes record batches of at most batchRows and reads them back in order", () => {
    fc.assert(
      fc.property(fc.array(candleArb, { maxLength: 40 }), fc.integer({ min: 1, max: 9 }), (candles, batchRows) => {
        const bytes = candlesToArrowIPC(candles, batchRows);
        const sizes = [...candleBatches(bytes)].map((b) => b.length);
        expect(sizes.reduce((a, b) => a + b, 0)).toBe(candles.length);
        expect(sizes.every((n) => n <= batchRows)).toBe(true);
        expect(candlesFromArrowIPC(bytes)).toEqual(candles);
      }),
      { numRuns: 100 },
    );
  });

  it("rejects values that would not survive the round trip", () => {
    const c: Candle = { t: 0, bo: 1, bh: 1, bl: 1, bc: 1, ao: 1, ah: 1, al: 1, ac: 1, n: 0 };
    expect(() => candlesToArrowIPC([{ ...c, bo: 1.5 }])).toThrow(RangeError);
    expect(() => candlesToArrowIPC([{ ...c, ah: 2 ** 31 }])).toThrow(RangeError);
    expect(() => candlesToArrowIPC([{ ...c, t: 0.5 }])).toThrow(RangeError);
  });
});

describe("ticksToArrowIPC / tick batches", () => {
  it("round-trips any ticks exactly, through objects and through columns", () => {
    fc.assert(
      fc.property(fc.array(tickArb, { maxLength: 60 }), (ticks) => {
        const bytes = ticksToArrowIPC(ticks);
        expect(ticksFromArrowIPC(bytes)).toEqual(ticks);
        const cols = tickColumnsFromArrowIPC(bytes);
        expect(cols.length).toBe(ticks.length);
        expect([...cols.t]).toEqual(ticks.map((t) => t.ts));
        expect([...cols.ask]).toEqual(ticks.map((t) => t.ask));
      }),
      { numRuns: 200 },
    );
  });

  it("writes record batches of at most batchRows (65,536 by default) as typed-array columns", () => {
    fc.assert(
      fc.property(fc.array(tickArb, { maxLength: 40 }), fc.integer({ min: 1, max: 9 }), (ticks, batchRows) => {
        const batches = [...tickBatches(ticksToArrowIPC(ticks, batchRows))];
        expect(batches.reduce((a, b) => a + b.length, 0)).toBe(ticks.length);
        expect(batches.every((b) => b.length <= batchRows && b.t instanceof Float64Array && b.bid instanceof Int32Array)).toBe(true);
      }),
      { numRuns: 100 },
    );
    const many = Array.from({ length: 65_536 * 2 + 5 }, (_, i) => ({ ts: i, bid: i, ask: i + 1 }));
    expect([...tickBatches(ticksToArrowIPC(many))].map((b) => b.length)).toEqual([65_536, 65_536, 5]);
  });

  it("rejects values that would not survive the round trip", () => {
    expect(() => ticksToArrowIPC([{ ts: 0.5, bid: 1, ask: 1 }])).toThrow(RangeError);
    expect(() => ticksToArrowIPC([{ ts: 0, bid: 1.5, ask: 1 }])).toThrow(RangeError);
    expect(() => ticksToArrowIPC([{ ts: 0, bid: 1, ask: 2 ** 31 }])).toThrow(RangeError);
  });
});

// ------------------------------------------------------------------ manifest helpers

describe("lake manifest", () => {
  const part = (year: number, rows = 1) => ({ key: candleKey("EUR_USD", year), year, rows, fromMs: Date.UTC(year, 0, 2), toMs: Date.UTC(year, 11, 30), sides: "bid" as const });
  const manifest = (partitions: unknown[]): Record<string, unknown> => ({
    pair: "EUR_USD", timeframe: "1m", partitions, source: "a.csv", tz: "EST", importedAt: "2026-01-02T03:04:05.678Z",
  });

  it("builds the keys", () => {
    expect(candleKey("EUR_USD", 2018)).toBe("candles/EUR_USD/1m/2018.arrow");
    expect(candleManifestKey("EUR_USD")).toBe("candles/EUR_USD/manifest.json");
    expect(tickKey("USD_JPY", "2014-05")).toBe("ticks/USD_JPY/2014-05.arrow");
    expect(tickManifestKey("USD_JPY")).toBe("ticks/USD_JPY/manifest.json");
    expect(utcMonth(Date.UTC(2014, 4, 31, 23, 59, 59, 999))).toBe("2014-05");
    expect(() => tickKey("EUR_USD", "2014-13")).toThrow(RangeError);
    expect(() => candleKey("eurusd", 2018)).toThrow(RangeError);
  });

  it("reads a first-version manifest (no sides, no sources) with defaults", () => {
    const { sides: _s, ...legacy } = part(2018);
    const m = readCandleManifest(JSON.stringify(manifest([legacy])));
    expect(m.partitions[0]?.sides).toBe("bid");
    expect(m.sources).toEqual(["a.csv"]);
  });

  it("refuses unsorted, misplaced, mis-keyed or malformed manifests", () => {
    expect(() => readCandleManifest(manifest([part(2019), part(2018)]))).toThrow(/sorted by year/);
    expect(() => readCandleManifest(manifest([part(2018), part(2018)]))).toThrow(ManifestError);
    expect(() => readCandleManifest(manifest([{ ...part(2018), fromMs: Date.UTC(2017, 5, 1) }]))).toThrow(/UTC year/);
    expect(() => readCandleManifest(manifest([{ ...part(2018), key: "candles/EUR_USD/1m/x.arrow" }]))).toThrow(/partition keys/);
    expect(() => readCandleManifest("{")).toThrow(/not JSON/);
    expect(() => readCandleManifest({ ...manifest([]), timeframe: "5m" })).toThrow(ManifestError);
    expect(() => readTickManifest({ ...manifest([]), kind: "ticks", partitions: [{ key: "ticks/EUR_USD/2014-05.arrow", month: "2014-05", rows: 1, fromMs: Date.UTC(2014, 5, 1), toMs: Date.UTC(2014, 5, 1), crossed: 0 }] })).toThrow(/UTC month/);
  });

  it("mergePartitions replaces by key and keeps the partitions sorted; mergeSides", () => {
    const merged = mergePartitions([part(2019, 5), part(2016)], [part(2018), part(2019, 7)], (p) => p.year);
    expect(merged.map((p) => [p.year, p.rows])).toEqual([[2016, 1], [2018, 1], [2019, 7]]);
    expect(mergeSides(undefined, 0, "bidask", 3)).toBe("bidask");
    expect(mergeSides("bid", 0, "bidask", 3)).toBe("bidask"); // every stored row replaced
    expect(mergeSides("bid", 2, "bidask", 3)).toBe("mixed");
    expect(mergeSides("bidask", 2, "bidask", 3)).toBe("bidask");
  });
});

// ------------------------------------------------------------------ pure merges

describe("mergeCandles / mergeTicks / aggregateMinutes", () => {
  const sortedTicks = fc
    .array(fc.record({ ts: fc.integer({ min: 0, max: 400_000 }), bid: fc.integer({ min: 1, max: 9 }), ask: fc.integer({ min: 1, max: 9 }) }), { maxLength: 40 })
    .map((ts) => ts.sort((a, b) => a.ts - b.ts));

  it("mergeTicks: imported ticks replace every stored tick of their millisecond; merging with itself is the identity", () => {
    fc.assert(
      fc.property(sortedTicks, sortedTicks, (stored, imported) => {
        const { ticks, replaced } = mergeTicks(tickColumns(stored), tickColumns(imported));
        const importedMs = new Set(imported.map((t) => t.ts));
        const expected = [...stored.filter((t) => !importedMs.has(t.ts)), ...imported].sort((a, b) => a.ts - b.ts);
        // Within a millisecond only one side survives, so the stable sort gives the order.
        expect([...Array(ticks.length).keys()].map((i) => ({ ts: ticks.t[i], bid: ticks.bid[i], ask: ticks.ask[i] }))).toEqual(expected);
        expect(replaced).toBe(stored.filter((t) => importedMs.has(t.ts)).length);
        const self = mergeTicks(tickColumns(imported), tickColumns(imported));
        expect(self.replaced).toBe(imported.length);
        expect([...self.ticks.t]).toEqual(imported.map((t) => t.ts));
      }),
      { numRuns: 200 },
    );
  });

  it("mergeCandles: imported candles replace stored ones at the same start", () => {
    const c = (t: number, v: number): Candle => ({ t, bo: v, bh: v, bl: v, bc: v, ao: v, ah: v, al: v, ac: v, n: 0 });
    const { candles, replaced } = mergeCandles([c(0, 1), c(60_000, 1), c(180_000, 1)], [c(60_000, 2), c(120_000, 2)]);
    expect(candles.map((x) => [x.t, x.bo])).toEqual([[0, 1], [60_000, 2], [120_000, 2], [180_000, 1]]);
    expect(replaced).toBe(1);
  });

  it("aggregateMinutes closes the last minute too", () => {
    const candles = aggregateMinutes(tickColumns([{ ts: 1_000, bid: 5, ask: 6 }, { ts: 2_000, bid: 7, ask: 8 }, { ts: 61_000, bid: 3, ask: 4 }]));
    expect(candles).toEqual([
      { t: 0, bo: 5, bh: 7, bl: 5, bc: 7, ao: 6, ah: 8, al: 6, ac: 8, n: 2 },
      { t: 60_000, bo: 3, bh: 3, bl: 3, bc: 3, ao: 4, ah: 4, al: 4, ac: 4, n: 1 },
    ]);
  });
});

// ------------------------------------------------------------------ reading small files

describe("reading, validation, zip input and arguments", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "import-unit-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("M1: counts bad rows by kind, drops later duplicates, sorts non-monotonic rows", async () => {
    const file = path.join(dir, "small.csv");
    await writeFile(
      file,
      [
        "20180101 170200;1.200500;1.200600;1.200400;1.200500;0",
        "20180101 170000;1.200370;1.201000;1.200370;1.201000;0", // earlier: non-monotonic
        "20180101 170100;1.201000;1.201000;1.200900;1.200950;0",
        "20180101 170100;1.300000;1.300000;1.300000;1.300000;0", // duplicate of 17:01, dropped
        "20180101 17x100;1.2;1.2;1.2;1.2;0", // bad timestamp
        "20180101 170300;1.2;1.1;1.2;1.2;0", // high below open: bad_ohlc
        "20180101 170400;1.2;1.2;1.2", // field count
        "",
      ].join("\n"),
    );
    const r = await readHistdataM1(file, EUR_USD, EST);
    expect(r.candles.map((c) => c.t)).toEqual([0, 1, 2].map((m) => Date.UTC(2018, 0, 1, 22, m)));
    expect(r.candles[1]).toEqual({ t: Date.UTC(2018, 0, 1, 22, 1), bo: 120100, bh: 120100, bl: 120090, bc: 120095, ao: 120100, ah: 120100, al: 120090, ac: 120095, n: 0 });
    expect(r).toMatchObject({ rows: 3, bad: 3, duplicates: 1, nonMonotonic: 1, badByKind: { bad_timestamp: 1, bad_ohlc: 1, field_count: 1 } });
    expect(r.badSamples[0]).toMatch(/^5: bad timestamp/);
    expect(r.timestampSamples).toEqual(["line 2: 2018-01-01T22:00:00.000Z before 2018-01-01T22:02:00.000Z", "2018-01-01T22:01:00.000Z: duplicate bar, the later row dropped"]);
  });

  it("ticks: bad rows counted and skipped, crossed kept, exact repeats dropped, same-ms ticks kept, order fixed", async () => {
    const file = path.join(dir, "ticks.csv");
    await writeFile(
      file,
      [
        "timestamp,bid,ask",
        "2014-05-01T00:00:02.000Z,1.38700,1.38710",
        "2014-05-01T00:00:01.000Z,1.38690,1.38700", // earlier: non-monotonic
        "2014-05-01T00:00:02.000Z,1.38700,1.38710", // exact repeat: duplicate
        "2014-05-01T00:00:02.000Z,1.38705,1.38712", // same ms, other quote: kept
        "2014-05-01T00:00:03.000Z,1.38720,1.38715", // crossed: kept and counted
        "2014-05-01T00:00:04.000Z,-1.3,1.38715", // bad number
        "2014-05-01T00:00:04.000Z,0,1.38715", // not positive
        "2014-05-01T25:00:04.000Z,1.3,1.38715", // bad timestamp
        "2014-05-01T00:00:05.000Z,1.3", // field count
        "2014-05-01T00:00:06.000Z,99999.3,99999.4", // out of Int32 points
        "",
      ].join("\n"),
    );
    const r = await readTicks(file, EUR_USD, EST, "lean_tick");
    expect(r).toMatchObject({ rows: 4, bad: 5, duplicates: 1, nonMonotonic: 1, sameTimestamp: 1, crossed: 1, badByKind: { bad_number: 2, bad_timestamp: 1, field_count: 1, bad_price: 1 } });
    expect([...r.ticks.t].map((t) => t - Date.UTC(2014, 4, 1))).toEqual([1000, 2000, 2000, 3000]);
    expect([...r.ticks.bid]).toEqual([138690, 138700, 138705, 138720]);
    expect(r.timestampSamples).toEqual(["line 3: 2014-05-01T00:00:01.000Z before 2014-05-01T00:00:02.000Z", "2014-05-01T00:00:02.000Z: tick repeated exactly, dropped"]);

    const bucket = new ImportBucket();
    const s = await importFile({ file, pair: "EUR_USD", bucket, log: quiet });
    expect(s).toMatchObject({ kind: "ticks", format: "lean_tick", rows: 4, bad: 5, crossed: 1, candles: 1, replaced: 0, tickReplaced: 0 });
    expect(s.tickPartitions).toMatchObject([{ key: "ticks/EUR_USD/2014-05.arrow", rows: 4, crossed: 1 }]);
    expect(bucket.candles("candles/EUR_USD/1m/2014.arrow")).toEqual([{ t: Date.UTC(2014, 4, 1), bo: 138690, bh: 138720, bl: 138690, bc: 138720, ao: 138700, ah: 138715, al: 138700, ac: 138715, n: 4 }]);
  });

  it("reads the one .csv of a zip (deflated, stored, with data descriptors; a .txt report ignored)", async () => {
    const text = "20180101 170000;1.200370;1.201000;1.200370;1.201000;0\r\n20180101 170100;1.201000;1.201000;1.200900;1.200950;0\r\n";
    const variants = [
      [{ name: "DAT_ASCII_EURUSD_M1_2018.csv", data: `\ufeff${text}` }, { name: "DAT_ASCII_EURUSD_M1_2018.txt", data: "gaps" }],
      [{ name: "folder/", data: "", method: 0 as const }, { name: "folder/x.CSV", data: text, method: 0 as const }],
      [{ name: "x.csv", data: text, descriptor: true }],
    ];
    for (const [i, entries] of variants.entries()) {
      const zip = path.join(dir, `ok${i}.zip`);
      await writeFile(zip, makeZip(entries));
      expect(await collect(readInputLines(zip))).toEqual(text.trimEnd().split("\r\n"));
    }
    const r = await readHistdataM1(path.join(dir, "ok0.zip"), EUR_USD, EST);
    expect(r.rows).toBe(2);
  });

  it("refuses zips with no .csv, several .csv, a bad CRC, or that are not zips", async () => {
    const write = async (name: string, bytes: Uint8Array): Promise<string> => {
      const file = path.join(dir, name);
      await writeFile(file, bytes);
      return file;
    };
    const none = await write("none.zip", makeZip([{ name: "readme.txt", data: "x" }]));
    await expect(collect(readInputLines(none))).rejects.toThrow(/no \.csv entry in the zip \(entries: readme\.txt\)/);
    const two = await write("two.zip", makeZip([{ name: "a.csv", data: "1" }, { name: "b.csv", data: "2" }]));
    await expect(collect(readInputLines(two))).rejects.toThrow(/2 \.csv entries in the zip \(a\.csv, b\.csv\); expected exactly one/);
    const good = makeZip([{ name: "a.csv", data: "20180101 170000;1.2;1.2;1.2;1.2;0\n", method: 0 }]);
    const corrupt = good.slice();
    corrupt[35] = (corrupt[35] as number) ^ 0xff; // first data byte, after the 30-byte header and "a.csv"
    await expect(collect(readInputLines(await write("crc.zip", corrupt)))).rejects.toThrow(/CRC-32/);
    await expect(listZipEntries(await write("plain.zip", new TextEncoder().encode("not a zip at all, just text....")))).rejects.toThrow(ZipError);
    await expect(importFile({ file: two, pair: "EUR_USD", bucket: new ImportBucket(), log: quiet })).rejects.toThrow(UsageError);
  });

  it.skipIf(!hasZipCommand || !present)("reads a zip made by the zip command (Info-ZIP), like histdata's downloads", async () => {
    const lines = (await fileLines(FILE)).slice(0, 5_000);
    const csv = path.join(dir, "DAT_ASCII_EURUSD_M1_201801.csv");
    await writeFile(csv, `${lines.join("\n")}\n`);
    await writeFile(path.join(dir, "DAT_ASCII_EURUSD_M1_201801.txt"), "gap report\n");
    const zip = path.join(dir, "HISTDATA_COM_ASCII_EURUSD_M1201801.zip");
    await new Promise<void>((resolve, reject) =>
      execFile("zip", ["-q", "-j", zip, csv, path.join(dir, "DAT_ASCII_EURUSD_M1_201801.txt")], (err) => (err ? reject(err) : resolve())),
    );
    expect(await collect(readInputLines(zip))).toEqual(lines);
    const bucket = new ImportBucket();
    const s = await importFile({ file: zip, pair: "EUR_USD", bucket, log: quiet });
    expect(s).toMatchObject({ kind: "m1", format: "histdata_m1", rows: 5_000, source: "HISTDATA_COM_ASCII_EURUSD_M1201801.zip" });
    expect(bucket.candles("candles/EUR_USD/1m/2018.arrow")).toEqual(lines.map(histdataCandle));
  });

  it("refuses a file whose format it cannot tell", async () => {
    const file = path.join(dir, "odd.csv");
    await writeFile(file, "date,price\n2018-01-01,1.2\n");
    await expect(importFile({ file, pair: "EUR_USD", bucket: new ImportBucket(), log: quiet })).rejects.toThrow(/unknown format/);
    await expect(importFile({ file: path.join(dir, "missing.csv"), pair: "EUR_USD", bucket: new ImportBucket(), log: quiet })).rejects.toThrow(/no such file/);
    const empty = path.join(dir, "empty.csv");
    await writeFile(empty, "timestamp,bid,ask\n\n");
    await expect(importFile({ file: empty, pair: "EUR_USD", bucket: new ImportBucket(), log: quiet })).rejects.toThrow(/no data rows/);
  });

  it("parses arguments; bad ones are usage errors", () => {
    expect(parseArgs(["f.csv", "--pair", "EUR_USD"])).toEqual({ file: "f.csv", pair: "EUR_USD", tz: "EST", remote: false });
    expect(parseArgs(["f.zip", "--pair", "USD_JPY", "--tz", "America/New_York", "--remote"])).toEqual({ file: "f.zip", pair: "USD_JPY", tz: "America/New_York", remote: true });
    expect(() => parseArgs(["f.csv"])).toThrow(UsageError);
    expect(() => parseArgs(["f.csv", "--pair", "NOPE"])).toThrow(UsageError);
    expect(() => parseArgs(["f.csv", "--pair", "EUR_USD", "--tz", "Mars/Olympus"])).toThrow(UsageError);
    expect(() => parseArgs(["f.csv", "--pair", "EUR_USD", "--bogus"])).toThrow(UsageError);
  });
});

// ------------------------------------------------------------------ merging into an existing lake

describe.skipIf(!present || !ticksPresent)("merging into an existing lake (real files, in-memory bucket)", () => {
  let dir: string;
  let lines2018: string[];
  let lines2019: string[];
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "import-merge-"));
    lines2018 = await fileLines(FILE);
    lines2019 = await fileLines(M1_2019);
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  const slice = async (name: string, lines: string[]): Promise<string> => {
    const file = path.join(dir, name);
    await writeFile(file, `${lines.join("\n")}\n`);
    return file;
  };

  it("two years into one lake: both partitions in the manifest, sorted, with sources; re-import is idempotent", async () => {
    const bucket = new ImportBucket();
    const f2019 = await slice("EURUSD_2019_head.csv", lines2019.slice(0, 3_000));
    const f2018 = await slice("EURUSD_2018_tail.csv", lines2018.slice(-3_000));
    const a = await importFile({ file: f2019, pair: "EUR_USD", bucket, log: quiet });
    const b = await importFile({ file: f2018, pair: "EUR_USD", bucket, log: quiet });
    expect([a.replaced, b.replaced]).toEqual([0, 0]);
    const m = readCandleManifest(bucket.json("candles/EUR_USD/manifest.json"));
    expect(m.partitions).toEqual([
      { key: "candles/EUR_USD/1m/2018.arrow", year: 2018, rows: 3_000, fromMs: histdataCandle(lines2018.at(-3_000) as string).t, toMs: Date.UTC(2018, 11, 31, 21, 59), sides: "bid" },
      { key: "candles/EUR_USD/1m/2019.arrow", year: 2019, rows: 3_000, fromMs: histdataCandle(lines2019[0] as string).t, toMs: histdataCandle(lines2019[2_999] as string).t, sides: "bid" },
    ]);
    expect(m.sources).toEqual(["EURUSD_2019_head.csv", "EURUSD_2018_tail.csv"]);
    expect(m).toMatchObject({ source: "EURUSD_2018_tail.csv", tz: "EST", timeframe: "1m" });

    const before = new Map(bucket.objects);
    const again = await importFile({ file: f2018, pair: "EUR_USD", bucket, log: quiet });
    expect(again.replaced).toBe(again.rows);
    expect(again.partitions).toMatchObject([{ year: 2018, rows: 3_000, imported: 3_000, replaced: 3_000 }]);
    for (const key of ["candles/EUR_USD/1m/2018.arrow", "candles/EUR_USD/1m/2019.arrow"]) expect(bucket.objects.get(key)).toEqual(before.get(key));
    const m2 = readCandleManifest(bucket.json("candles/EUR_USD/manifest.json"));
    expect(m2.partitions).toEqual(m.partitions);
    expect(m2.sources).toEqual(m.sources);
  });

  it("an overlapping import merges rows by timestamp; a file across New Year (UTC) splits into two years", async () => {
    const bucket = new ImportBucket();
    await importFile({ file: await slice("a.csv", lines2018.slice(-3_000, -1_000)), pair: "EUR_USD", bucket, log: quiet });
    // The last 1,500 rows of 2018: 500 overlap the stored ones.
    const b = await slice("b.csv", lines2018.slice(-1_500));
    const s = await importFile({ file: b, pair: "EUR_USD", bucket, log: quiet });
    expect(s.partitions.map((p) => [p.year, p.rows, p.imported, p.replaced])).toEqual([[2018, 3_000, 1_500, 500]]);
    expect(s.replaced).toBe(500);
    expect(bucket.candles("candles/EUR_USD/1m/2018.arrow")).toEqual(lines2018.slice(-3_000).map(histdataCandle));

    // At UTC-08:00 the last hour of 2018 (16:00..16:59 local) is 2019-01-01 00:00..00:59 UTC.
    const split = new ImportBucket();
    const y = await importFile({ file: await slice("c.csv", lines2018.slice(-100)), pair: "EUR_USD", tz: "-08:00", bucket: split, log: quiet });
    expect(y.partitions.map((p) => p.year)).toEqual([2018, 2019]);
    expect(y.partitions[0]?.toMs).toBeLessThan(Date.UTC(2019, 0, 1));
    expect(y.partitions[1]).toMatchObject({ fromMs: Date.UTC(2019, 0, 1), toMs: Date.UTC(2019, 0, 1, 0, 59) });
    expect(y.partitions.reduce((sum, p) => sum + p.rows, 0)).toBe(100);
  });

  it("a partition missing from a first-version manifest is put back; bid/ask rows over bid rows make the year 'mixed'", async () => {
    const bucket = new ImportBucket();
    await importFile({ file: await slice("y2018.csv", lines2018.slice(0, 100)), pair: "EUR_USD", bucket, log: quiet });
    await importFile({ file: await slice("y2019.csv", lines2019.slice(0, 100)), pair: "EUR_USD", bucket, log: quiet });
    // What the first importer left after importing 2019 over 2018: a manifest with 2019 only, no sides or sources.
    const m = bucket.json("candles/EUR_USD/manifest.json") as CandleManifest;
    const legacy = { ...m, partitions: m.partitions.filter((p) => p.year === 2019).map(({ sides: _s, ...p }) => p) } as Record<string, unknown>;
    delete legacy.sources;
    await bucket.put("candles/EUR_USD/manifest.json", JSON.stringify(legacy));
    // OANDA bid/ask bars: ten of 2014 (a new year: 2018 is found in the bucket and put back), then ten of 2018 over the bid-only rows.
    const header = "timestamp,bid_open,bid_high,bid_low,bid_close,bid_size,ask_open,ask_high,ask_low,ask_close,ask_size";
    const bars = await fileLines(OANDA_BARS);
    const bars2014 = bars.filter((l) => l.startsWith("2014-05-01T00:0"));
    const bars2018 = bars.filter((l) => l.startsWith("2018-04-03T00:0"));
    const s14 = await importFile({ file: await slice("oanda_2014.csv", [header, ...bars2014]), pair: "EUR_USD", bucket, log: quiet });
    expect(s14).toMatchObject({ kind: "m1", format: "lean_bidask_m1", rows: 10 });
    const mid = readCandleManifest(bucket.json("candles/EUR_USD/manifest.json"));
    expect(mid.partitions.map((p) => [p.year, p.rows, p.sides])).toEqual([[2014, 10, "bidask"], [2018, 100, "bid"], [2019, 100, "bid"]]);
    await importFile({ file: await slice("oanda_2018.csv", [header, ...bars2018]), pair: "EUR_USD", bucket, log: quiet });
    const after = readCandleManifest(bucket.json("candles/EUR_USD/manifest.json"));
    expect(after.partitions.map((p) => [p.year, p.rows, p.sides])).toEqual([[2014, 10, "bidask"], [2018, 110, "mixed"], [2019, 100, "bid"]]);
    expect(after.sources).toEqual(["y2019.csv", "oanda_2014.csv", "oanda_2018.csv"]);
  });

  it("histdata ticks (EST clock): UTC month and year partitions; two halves imported one after the other equal the whole file", async () => {
    const whole = new ImportBucket();
    const s = await importFile({ file: HISTDATA_TICKS, pair: "EUR_USD", tz: "EST", bucket: whole, log: quiet });
    // SOURCES.md: 2020-01-01 17:00:00.065 .. 23:00:52.125 EST, 9,500 rows.
    expect(s).toMatchObject({ kind: "ticks", format: "histdata_tick", rows: 9_500, bad: 0, duplicates: 0, nonMonotonic: 0, crossed: 0 });
    expect(s.tickPartitions).toMatchObject([{ key: "ticks/EUR_USD/2020-01.arrow", month: "2020-01", rows: 9_500, fromMs: Date.parse("2020-01-01T22:00:00.065Z"), toMs: Date.parse("2020-01-02T04:00:52.125Z") }]);
    expect(s.partitions).toMatchObject([{ key: "candles/EUR_USD/1m/2020.arrow", rows: s.candles, fromMs: Date.parse("2020-01-01T22:00:00Z"), toMs: Date.parse("2020-01-02T04:00:00Z"), sides: "bidask" }]);
    const m = readTickManifest(whole.json("ticks/EUR_USD/manifest.json"));
    expect(m).toMatchObject({ pair: "EUR_USD", kind: "ticks", sources: ["histdata_EURUSD_T_20200101.csv.gz"], tz: "EST" });

    // Split inside a minute: the minute's candle must come from both halves.
    const lines = await fileLines(HISTDATA_TICKS);
    const cut = 4_750;
    expect(lines[cut - 1]?.slice(0, 13)).toBe(lines[cut]?.slice(0, 13));
    const halves = new ImportBucket();
    await importFile({ file: await slice("first.csv", lines.slice(0, cut)), pair: "EUR_USD", bucket: halves, log: quiet });
    const second = await importFile({ file: await slice("second.csv", lines.slice(cut)), pair: "EUR_USD", bucket: halves, log: quiet });
    expect(second.replaced).toBe(1); // the split minute, rebuilt from all its ticks
    for (const key of ["candles/EUR_USD/1m/2020.arrow", "ticks/EUR_USD/2020-01.arrow"]) expect(halves.objects.get(key)).toEqual(whole.objects.get(key));
  });

  it("TrueFX ticks with a header (USD_JPY, UTC offsets in the file)", async () => {
    const bucket = new ImportBucket();
    const s = await importFile({ file: TRUEFX_TICKS, pair: "USD_JPY", bucket, log: quiet });
    expect(s).toMatchObject({ kind: "ticks", format: "truefx_tick", rows: 1_000, bad: 0 });
    const ticks = ticksFromArrowIPC(bucket.objects.get("ticks/USD_JPY/2013-01.arrow") as Uint8Array);
    expect(ticks[0]).toEqual({ ts: Date.parse("2013-01-01T22:00:00.295Z"), bid: 86655, ask: 86728 });
  });
});

// ------------------------------------------------------------------ real imports through the platform proxy

describe.skipIf(!present)("import a real histdata year into local R2", () => {
  let stateDir: string;
  let summary: ImportSummary;
  beforeAll(async () => {
    stateDir = await mkdtemp(path.join(tmpdir(), "import-state-"));
    summary = await importFile({ file: FILE, pair: "EUR_USD", tz: "EST", stateDir, log: quiet });
    console.info(`import: ${summary.rows} rows, ${summary.partitions.map((p) => `${p.key} ${p.bytes} bytes`).join(", ")}, ${summary.ms} ms`);
  });
  afterAll(async () => {
    if (stateDir) await rm(stateDir, { recursive: true, force: true });
  });

  it("reports the counts and one UTC-2018 partition", () => {
    // SOURCES.md: 372,607 rows; 2018-01-01 17:00 .. 2018-12-31 16:59 EST = 22:00 .. 21:59 UTC.
    expect(summary).toMatchObject({ kind: "m1", format: "histdata_m1", target: "local", bad: 0, replaced: 0, crossed: 0, tickPartitions: [] });
    expect(summary.rows).toBe(372_607 - summary.duplicates);
    expect(summary.partitions.map((p) => p.key)).toEqual(["candles/EUR_USD/1m/2018.arrow"]);
    expect(summary.partitions[0]).toMatchObject({ year: 2018, rows: summary.rows, fromMs: Date.UTC(2018, 0, 1, 22), toMs: Date.UTC(2018, 11, 31, 21, 59), sides: "bid" });
  });

  it("reads back through a second platform proxy on the same STATE_DIR", async () => {
    const lines = await fileLines(FILE);
    const proxy = await openProxy(stateDir);
    try {
      const bytes = await bytesOf(proxy, "candles/EUR_USD/1m/2018.arrow");
      expect(bytes.byteLength).toBe(summary.partitions[0]?.bytes);
      const candles = candlesFromArrowIPC(bytes);
      expect(candles.length).toBe(summary.rows);
      expect(candles[0]).toEqual(histdataCandle(lines[0] as string));
      expect(candles[candles.length - 1]).toEqual(histdataCandle(lines.at(-1) as string));
      for (let i = 1; i < candles.length; i++) if ((candles[i] as Candle).t <= (candles[i - 1] as Candle).t) throw new Error(`not strictly increasing at ${i}`);

      const manifest = readCandleManifest(await (await proxy.env.DATA.get("candles/EUR_USD/manifest.json"))?.text());
      expect(manifest).toMatchObject({
        pair: "EUR_USD",
        timeframe: "1m",
        source: "DAT_ASCII_EURUSD_M1_2018.csv.gz",
        sources: ["DAT_ASCII_EURUSD_M1_2018.csv.gz"],
        tz: "EST",
        partitions: [{ key: "candles/EUR_USD/1m/2018.arrow", year: 2018, rows: summary.rows, fromMs: Date.UTC(2018, 0, 1, 22), toMs: Date.UTC(2018, 11, 31, 21, 59), sides: "bid" }],
      });
      expect(Number.isNaN(Date.parse(manifest.importedAt))).toBe(false);
    } finally {
      await proxy.dispose();
    }
  });
});

describe.skipIf(!ticksPresent)("import real OANDA ticks into local R2: the 1m candles equal OANDA's own 1m bid/ask bars", () => {
  let stateDir: string;
  let summary: ImportSummary;
  beforeAll(async () => {
    stateDir = await mkdtemp(path.join(tmpdir(), "import-ticks-"));
    summary = await importFile({ file: OANDA_TICKS, pair: "EUR_USD", stateDir, log: quiet });
    console.info(`import: OANDA ${summary.rows} ticks -> ${summary.candles} candles, ${summary.tickPartitions.map((p) => `${p.key} ${p.bytes} bytes`).join(", ")}, ${summary.ms} ms`);
  }, 120_000);
  afterAll(async () => {
    if (stateDir) await rm(stateDir, { recursive: true, force: true });
  });

  it("reports the counts (SOURCES.md: 532,903 rows, UTC, no crossed quotes)", () => {
    expect(summary).toMatchObject({ kind: "ticks", format: "lean_tick", bad: 0, nonMonotonic: 0, crossed: 0, replaced: 0, tickReplaced: 0 });
    // One row repeats the previous one exactly (same ms, bid and ask) and is dropped.
    expect(summary.duplicates).toBe(1);
    expect(summary.rows).toBe(532_903 - summary.duplicates);
    expect(summary.tickPartitions).toMatchObject([{ key: "ticks/EUR_USD/2014-05.arrow", month: "2014-05", rows: summary.rows, crossed: 0 }]);
  });

  it("reads back through a second proxy: 15,366 of 15,366 candles equal the published bars; tick rows round-trip", async () => {
    const reference: Candle[] = [];
    let lineNo = 0;
    for await (const line of readLines(OANDA_BARS)) {
      lineNo++;
      if (isHeaderLine(line)) continue;
      const r = parseBidAskBar(line, lineNo, UTC);
      if (!r.ok) throw new Error(r.error.reason);
      if (r.value.ts < Date.UTC(2015, 0, 1)) reference.push(bidAskBarToCandle(r.value, EUR_USD));
    }
    const proxy = await openProxy(stateDir);
    try {
      const candles = candlesFromArrowIPC(await bytesOf(proxy, "candles/EUR_USD/1m/2014.arrow"));
      const ohlc = (c: Candle) => [c.t, c.bo, c.bh, c.bl, c.bc, c.ao, c.ah, c.al, c.ac];
      const equal = candles.filter((c, i) => reference[i] !== undefined && ohlc(c).join() === ohlc(reference[i] as Candle).join()).length;
      expect(reference.length).toBe(15_366);
      expect(candles.length).toBe(15_366);
      expect(equal).toBe(15_366);
      expect(candles.reduce((s, c) => s + c.n, 0)).toBe(summary.rows);

      const tickBytes = await bytesOf(proxy, "ticks/EUR_USD/2014-05.arrow");
      const batches = [...tickBatches(tickBytes)];
      expect(batches.every((b) => b.length <= 65_536)).toBe(true);
      const ticks = tickColumnsFromArrowIPC(tickBytes);
      expect(ticks.length).toBe(summary.rows);
      for (let i = 1; i < ticks.length; i++) if ((ticks.t[i] as number) < (ticks.t[i - 1] as number)) throw new Error(`ticks out of order at ${i}`);
      expect(ticks.t[0]).toBe(summary.tickPartitions[0]?.fromMs);

      const tm = readTickManifest(await (await proxy.env.DATA.get("ticks/EUR_USD/manifest.json"))?.text());
      expect(tm.partitions).toEqual([{ key: "ticks/EUR_USD/2014-05.arrow", month: "2014-05", rows: summary.rows, fromMs: ticks.t[0], toMs: ticks.t[ticks.length - 1], crossed: 0 }]);
      const cm = readCandleManifest(await (await proxy.env.DATA.get("candles/EUR_USD/manifest.json"))?.text());
      expect(cm.partitions).toEqual([{ key: "candles/EUR_USD/1m/2014.arrow", year: 2014, rows: 15_366, fromMs: reference[0]?.t, toMs: reference.at(-1)?.t, sides: "bidask" }]);
    } finally {
      await proxy.dispose();
    }
  });
});

// ------------------------------------------------------------------ the CLI

describe.skipIf(!ticksPresent)("the CLI", () => {
  const run = (args: string[], env: NodeJS.ProcessEnv) =>
    new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(process.execPath, [path.join(ROOT, "node_modules/tsx/dist/cli.mjs"), path.join(ROOT, "scripts/import.ts"), ...args], { env, cwd: ROOT }, (err, stdout, stderr) =>
        resolve({ code: err ? Number(err.code) : 0, stdout, stderr }),
      );
    });
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "import-cli-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("imports a zip into STATE_DIR: JSON summary alone on stdout, progress on stderr; bad arguments exit 2", { timeout: 30_000 }, async () => {
    const zip = path.join(dir, "HISTDATA_COM_ASCII_EURUSD_T202001.zip");
    await writeFile(zip, makeZip([{ name: "DAT_ASCII_EURUSD_T_202001.csv", data: zlib.gunzipSync(await readFile(HISTDATA_TICKS)) }, { name: "DAT_ASCII_EURUSD_T_202001.txt", data: "gaps" }]));
    const stateDir = path.join(dir, "state");
    const r = await run([zip, "--pair", "EUR_USD"], { ...process.env, STATE_DIR: stateDir });
    expect(r.code).toBe(0);
    const summary = JSON.parse(r.stdout) as ImportSummary;
    expect(summary).toMatchObject({ kind: "ticks", format: "histdata_tick", rows: 9_500, source: "HISTDATA_COM_ASCII_EURUSD_T202001.zip", target: "local", tickManifestKey: "ticks/EUR_USD/manifest.json" });
    expect(r.stderr).toMatch(/wrote ticks\/EUR_USD\/2020-01\.arrow/);
    expect(existsSync(path.join(stateDir, "v3", "r2"))).toBe(true);
    const bad = await run([zip, "--pair", "EUR_USD", "--tz", "Mars/Olympus"], process.env);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/unknown time zone Mars\/Olympus[\s\S]*--remote/);
  });

  it("--remote without a wrangler login fails with exit 1 and says how to log in", { timeout: 30_000 }, async () => {
    // A fresh HOME / XDG_CONFIG_HOME: no wrangler login, whatever the machine running the test has.
    const home = path.join(dir, "home");
    await mkdir(home, { recursive: true });
    const { CLOUDFLARE_API_TOKEN: _t, CLOUDFLARE_ACCOUNT_ID: _a, ...env } = process.env;
    const r = await run([HISTDATA_TICKS, "--pair", "EUR_USD", "--remote"], { ...env, HOME: home, XDG_CONFIG_HOME: path.join(home, ".config"), CI: "true" });
    expect(r.code).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(/--remote: could not open R2 bucket fx-data[\s\S]*wrangler login/);
  });
});

// ------------------------------------------------------------------ an import stopped part-way

describe("an import stopped between its writes (write-ahead manifests)", () => {
  /** The in-memory bucket, whose puts fail from the `killAt`-th on, as if the import were killed there. */
  class KilledBucket extends ImportBucket {
    puts = 0;
    killAt = Number.POSITIVE_INFINITY;
    override async put(key: string, value: Uint8Array | string): Promise<void> {
      if (this.puts++ >= this.killAt) throw new Error(`killed before writing ${key}`);
      return super.put(key, value);
    }
    /** The next `n` puts succeed, then the import is "killed". */
    killAfter(n: number): void {
      this.puts = 0;
      this.killAt = n;
    }
  }

  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "import-killed-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  const MAX = Number.MAX_SAFE_INTEGER;

  /** `n` histdata M1 bars (EST clock) from `fromUtcMs`, one a minute. */
  const m1File = async (name: string, fromUtcMs: number, n: number): Promise<string> => {
    const lines = Array.from({ length: n }, (_, i) => {
      const est = new Date(fromUtcMs + i * 60_000 - 5 * 3_600_000).toISOString();
      const price = (1.1 + (i % 50) / 10_000).toFixed(5);
      return `${est.slice(0, 10).replaceAll("-", "")} ${est.slice(11, 19).replaceAll(":", "")};${price};${price};${price};${price};0`;
    });
    const file = path.join(dir, name);
    await writeFile(file, `${lines.join("\n")}\n`);
    return file;
  };
  /** `n` ISO ticks from `fromUtcMs`, one every 3 s. */
  const tickFile = async (name: string, fromUtcMs: number, n: number): Promise<string> => {
    const lines = Array.from({ length: n }, (_, i) => `${new Date(fromUtcMs + i * 3_000).toISOString()},${(1.1 + (i % 7) / 10_000).toFixed(5)},${(1.1002 + (i % 7) / 10_000).toFixed(5)}`);
    const file = path.join(dir, name);
    await writeFile(file, `timestamp,bid,ask\n${lines.join("\n")}\n`);
    return file;
  };

  /** Times of every row the readers see through the manifests, and of every row the bucket's partition objects hold. */
  const seen = async (bucket: ImportBucket) => {
    const { loadCandleManifest, loadTickManifest, lakeBatches, lakeTickBatches } = await import("../../src/replay/lake-reader.ts");
    const read = async (batches: AsyncIterable<{ cols: { t: Float64Array }; start: number; end: number }>) => {
      const t: number[] = [];
      for await (const b of batches) t.push(...b.cols.t.subarray(b.start, b.end));
      return t.sort((a, b) => a - b);
    };
    const stored = (pattern: RegExp, times: (bytes: Uint8Array) => number[]) =>
      [...bucket.objects].filter(([key]) => pattern.test(key)).flatMap(([, bytes]) => times(bytes)).sort((a, b) => a - b);
    const hasTicks = bucket.objects.has(tickManifestKey("EUR_USD"));
    return {
      candles: await read(lakeBatches(bucket, await loadCandleManifest(bucket, "EUR_USD"), 0, MAX)),
      candleObjects: stored(/^candles\/EUR_USD\/1m\/\d{4}\.arrow$/, (b) => candlesFromArrowIPC(b).map((c) => c.t)),
      ticks: hasTicks ? await read(lakeTickBatches(bucket, await loadTickManifest(bucket, "EUR_USD"), 0, MAX)) : [],
      tickObjects: stored(/^ticks\/EUR_USD\/\d{4}-\d{2}\.arrow$/, (b) => ticksFromArrowIPC(b).map((t) => t.ts)),
    };
  };

  /** Every entry settled (none pending) and describing exactly its object's rows. */
  const settled = (bucket: ImportBucket) => {
    const m = readCandleManifest(bucket.json(candleManifestKey("EUR_USD")));
    const entries: { key: string; rows: number; pending?: true | undefined }[] = [...m.partitions];
    if (bucket.objects.has(tickManifestKey("EUR_USD"))) entries.push(...readTickManifest(bucket.json(tickManifestKey("EUR_USD"))).partitions);
    return entries.map((p) => ({ key: p.key, pending: p.pending ?? false, rows: p.rows, stored: p.key.startsWith("ticks/") ? ticksFromArrowIPC(bucket.objects.get(p.key) as Uint8Array).length : bucket.candles(p.key).length }));
  };

  it("candles: killed at any write, every row in the bucket is read through the manifest; the next import settles the rest", async () => {
    const lastYear = await m1File("a.csv", Date.UTC(2018, 11, 31, 10), 100);
    // Over New Year (UTC): extends 2018 and starts 2019, a partition the lake does not have yet.
    const overNewYear = await m1File("b.csv", Date.UTC(2018, 11, 31, 23), 120);
    const later = await m1File("c.csv", Date.UTC(2020, 2, 2), 30);
    const base = new KilledBucket();
    await importFile({ file: lastYear, pair: "EUR_USD", bucket: base, log: quiet });
    const full = new KilledBucket();
    for (const [k, v] of base.objects) full.objects.set(k, v);
    await importFile({ file: overNewYear, pair: "EUR_USD", bucket: full, log: quiet });
    const writes = full.puts;
    expect(writes).toBeGreaterThanOrEqual(3);
    for (let killAt = 0; killAt < writes; killAt++) {
      const bucket = new KilledBucket();
      for (const [k, v] of base.objects) bucket.objects.set(k, v);
      bucket.killAfter(killAt);
      await expect(importFile({ file: overNewYear, pair: "EUR_USD", bucket, log: quiet }), `killed at write ${killAt}`).rejects.toThrow(/killed/);
      const after = await seen(bucket);
      // Nothing orphaned: what the bucket holds is what a backtest reads, whether the partition made it or not.
      expect(after.candles, `killed at write ${killAt}`).toEqual(after.candleObjects);
      expect(after.candles.length, `killed at write ${killAt}`).toBeGreaterThanOrEqual(100);
      // The stopped import is not recorded as imported.
      expect(readCandleManifest(bucket.json(candleManifestKey("EUR_USD"))).sources).toEqual(["a.csv"]);
      // The next import, of another file, leaves every entry settled and true to its object.
      bucket.killAfter(Number.POSITIVE_INFINITY);
      await importFile({ file: later, pair: "EUR_USD", bucket, log: quiet });
      for (const e of settled(bucket)) expect(e, `killed at write ${killAt}`).toMatchObject({ pending: false, rows: e.stored });
      expect((await seen(bucket)).candles.length).toBe(after.candles.length + 30);
      // And re-running the stopped import completes it.
      await importFile({ file: overNewYear, pair: "EUR_USD", bucket, log: quiet });
      expect((await seen(bucket)).candles.length).toBe(100 + 120 + 30);
    }
  });

  it("ticks: killed at any write, every tick and candle in the bucket is read through the manifests", async () => {
    const may = await tickFile("may.csv", Date.UTC(2014, 4, 31, 23, 50), 100);
    // Over the month's end: extends May, starts June.
    const overMonthEnd = await tickFile("june.csv", Date.UTC(2014, 4, 31, 23, 58), 100);
    const base = new KilledBucket();
    await importFile({ file: may, pair: "EUR_USD", tz: "UTC", bucket: base, log: quiet });
    const full = new KilledBucket();
    for (const [k, v] of base.objects) full.objects.set(k, v);
    await importFile({ file: overMonthEnd, pair: "EUR_USD", tz: "UTC", bucket: full, log: quiet });
    const writes = full.puts;
    for (let killAt = 0; killAt < writes; killAt++) {
      const bucket = new KilledBucket();
      for (const [k, v] of base.objects) bucket.objects.set(k, v);
      bucket.killAfter(killAt);
      await expect(importFile({ file: overMonthEnd, pair: "EUR_USD", tz: "UTC", bucket, log: quiet })).rejects.toThrow(/killed/);
      const after = await seen(bucket);
      expect(after.ticks, `killed at write ${killAt}`).toEqual(after.tickObjects);
      expect(after.candles, `killed at write ${killAt}`).toEqual(after.candleObjects);
      bucket.killAfter(Number.POSITIVE_INFINITY);
      await importFile({ file: overMonthEnd, pair: "EUR_USD", tz: "UTC", bucket, log: quiet });
      for (const e of settled(bucket)) expect(e, `killed at write ${killAt}`).toMatchObject({ pending: false, rows: e.stored });
      expect(await seen(bucket)).toEqual(await seen(full));
    }
  });
});
