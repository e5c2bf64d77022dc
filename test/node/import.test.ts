/**
 * The data-lake importer: Arrow IPC round trip of candles, row validation and
 * deduplication on a small file, and a real histdata year imported into a
 * fresh local R2 (STATE_DIR) then read back through a second platform proxy.
 */
import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { importFile, readHistdataM1, UsageError, parseArgs, type ImportSummary } from "../../scripts/import.ts";
import type { Candle } from "../../src/domain/candle.ts";
import { getInstrument } from "../../src/domain/instruments.ts";
import { toPoints } from "../../src/domain/price.ts";
import { candleBatches, candlesFromArrowIPC, candlesToArrowIPC } from "../../src/ingest/candle-arrow.ts";
import { parseHistdataM1 } from "../../src/ingest/history-formats.ts";
import { readLines } from "../../src/ingest/read-lines.ts";
import { parseZone } from "../../src/ingest/time-zone.ts";

const DATA = path.resolve(import.meta.dirname, "../../../shared/data");
const FILE = path.join(DATA, "m1_histdata/DAT_ASCII_EURUSD_M1_2018.csv.gz");
const present = existsSync(FILE);
if (!present) console.warn(`import: real-data import skipped, no file at ${FILE}`);

const EUR_USD = getInstrument("EUR_USD");
const EST = parseZone("EST");

const int32 = fc.integer({ min: -2_147_483_648, max: 2_147_483_647 });
const candleArb: fc.Arbitrary<Candle> = fc.record({
  t: fc.integer({ min: 0, max: 2 ** 52 }),
  bo: int32, bh: int32, bl: int32, bc: int32, ao: int32, ah: int32, al: int32, ac: int32,
  n: fc.integer({ min: 0, max: 2_147_483_647 }),
});

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

describe("readHistdataM1 and arguments", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "import-unit-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("counts bad rows by kind, drops later duplicates, sorts non-monotonic rows", async () => {
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
  });

  it("parses arguments; bad ones are usage errors", () => {
    expect(parseArgs(["f.csv", "--pair", "EUR_USD"])).toEqual({ file: "f.csv", pair: "EUR_USD", tz: "EST" });
    expect(parseArgs(["f.csv", "--pair", "USD_JPY", "--tz", "America/New_York"]).tz).toBe("America/New_York");
    expect(() => parseArgs(["f.csv"])).toThrow(UsageError);
    expect(() => parseArgs(["f.csv", "--pair", "NOPE"])).toThrow(UsageError);
    expect(() => parseArgs(["f.csv", "--pair", "EUR_USD", "--tz", "Mars/Olympus"])).toThrow(UsageError);
    expect(() => parseArgs(["f.csv", "--pair", "EUR_USD", "--bogus"])).toThrow(UsageError);
  });
});

describe.skipIf(!present)("import a real histdata year into local R2", () => {
  let stateDir: string;
  let summary: ImportSummary;
  beforeAll(async () => {
    stateDir = await mkdtemp(path.join(tmpdir(), "import-state-"));
    summary = await importFile({ file: FILE, pair: "EUR_USD", tz: "EST", stateDir, log: () => {} });
    console.info(`import: ${summary.rows} rows, ${summary.partitions.map((p) => `${p.key} ${p.bytes} bytes`).join(", ")}, ${summary.ms} ms`);
  });
  afterAll(async () => {
    if (stateDir) await rm(stateDir, { recursive: true, force: true });
  });

  it("reports the counts and one UTC-2018 partition", () => {
    // SOURCES.md: 372,607 rows; 2018-01-01 17:00 .. 2018-12-31 16:59 EST = 22:00 .. 21:59 UTC.
    expect(summary.bad).toBe(0);
    expect(summary.rows).toBe(372_607 - summary.duplicates);
    expect(summary.partitions.map((p) => p.key)).toEqual(["candles/EUR_USD/1m/2018.arrow"]);
    expect(summary.partitions[0]).toMatchObject({ year: 2018, rows: summary.rows, fromMs: Date.UTC(2018, 0, 1, 22), toMs: Date.UTC(2018, 11, 31, 21, 59) });
  });

  it("reads back through a second platform proxy on the same STATE_DIR", async () => {
    // The first and last data rows of the file, parsed independently.
    let first: string | undefined;
    let last = "";
    for await (const line of readLines(FILE)) {
      if (line.trim() === "") continue;
      first ??= line;
      last = line;
    }
    const toCandle = (line: string): Candle => {
      const r = parseHistdataM1(line, 0, EST);
      if (!r.ok) throw new Error(r.error.reason);
      const [bo, bh, bl, bc] = [r.value.open, r.value.high, r.value.low, r.value.close].map((x) => toPoints(x, EUR_USD)) as [number, number, number, number];
      return { t: r.value.ts, bo, bh, bl, bc, ao: bo, ah: bh, al: bl, ac: bc, n: 0 };
    };

    process.env.CLOUDFLARE_CF_FETCH_ENABLED = "false";
    process.env.WRANGLER_SEND_METRICS = "false";
    const { getPlatformProxy } = await import("wrangler");
    type Obj = { arrayBuffer(): Promise<ArrayBuffer>; text(): Promise<string> };
    const proxy = await getPlatformProxy<{ DATA: { get(key: string): Promise<Obj | null> } }>({
      configPath: path.resolve(import.meta.dirname, "../../wrangler.jsonc"),
      persist: { path: path.join(stateDir, "v3") },
    });
    try {
      const obj = await proxy.env.DATA.get("candles/EUR_USD/1m/2018.arrow");
      expect(obj).not.toBeNull();
      const bytes = new Uint8Array(await (obj as Obj).arrayBuffer());
      expect(bytes.byteLength).toBe(summary.partitions[0]?.bytes);
      const candles = candlesFromArrowIPC(bytes);
      expect(candles.length).toBe(summary.rows);
      expect(candles[0]).toEqual(toCandle(first as string));
      expect(candles[candles.length - 1]).toEqual(toCandle(last));
      for (let i = 1; i < candles.length; i++) if ((candles[i] as Candle).t <= (candles[i - 1] as Candle).t) throw new Error(`not strictly increasing at ${i}`);

      const manifestObj = await proxy.env.DATA.get("candles/EUR_USD/manifest.json");
      const manifest = JSON.parse(await (manifestObj as Obj).text());
      expect(manifest).toMatchObject({
        pair: "EUR_USD",
        timeframe: "1m",
        source: "DAT_ASCII_EURUSD_M1_2018.csv.gz",
        tz: "EST",
        partitions: [{ key: "candles/EUR_USD/1m/2018.arrow", year: 2018, rows: summary.rows, fromMs: Date.UTC(2018, 0, 1, 22), toMs: Date.UTC(2018, 11, 31, 21, 59) }],
      });
      expect(Number.isNaN(Date.parse(manifest.importedAt))).toBe(false);
    } finally {
      await proxy.dispose();
    }
  });
});
