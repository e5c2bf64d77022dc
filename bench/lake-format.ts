/**
 * Arrow IPC vs Parquet for the data lake's 1-minute candle partitions
 * (`candles/<PAIR>/1m/<YEAR>.*`, one object per pair and UTC year): size and
 * decode speed on a real year of EUR_USD minutes (histdata 2018, 372,607 rows).
 *
 *   npx tsx bench/lake-format.ts [--quick]
 *
 * Every format is decoded to the same shape the replay reads today
 * (`CandleColumns`: one Float64Array `t` and nine Int32Arrays per batch or row
 * group) and must round-trip exactly: every column of every row is compared
 * with the input, and any difference throws. Figures: bytes, encode ms, decode
 * ms (median after a warm-up), and "decode + iterate" (decode, then sum `bc`),
 * so a lazy decoder that defers work to first access is not flattered.
 *
 * Timing: performance.now(), a forced full GC before each timed call, median
 * of 5 runs (2 with --quick); encode: median of 3 (1). The round-trip check is
 * the decode's warm-up (and the sum loop is warmed on its batches); decode +
 * iterate gets one more untimed call.
 *
 * Decoders: apache-arrow and hyparquet are pure JS and run in workerd (a Worker
 * bundle resolves hyparquet's "browser" export; its default "node" entry imports
 * fs). hyparquet's built-in snappy decoder is pure JS. hyparquet-compressors
 * adds GZIP/BROTLI/ZSTD/LZ4 in pure JS, but its index compiles the hysnappy
 * WASM at import (`new WebAssembly.Module(bytes)`), which workerd refuses
 * ("Wasm code generation disallowed by embedder"), so a Worker must import the
 * single decompressor it needs (e.g. `hyparquet-compressors/src/gzip.js`), not
 * the index; `parquet+snappy/wasm` is here only to show what the WASM buys in
 * Node. Writers run in Node only (the importer); Node 20's zlib has gzip and
 * brotli but no zstd, and nothing installed compresses ZSTD/LZ4, so those
 * codecs (for Parquet and for Arrow IPC body compression) are not measured.
 * Results: bench/results/lake-format.json.
 */
import { existsSync } from "node:fs";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { pathToFileURL } from "node:url";
import v8 from "node:v8";
import vm from "node:vm";
import zlib from "node:zlib";
import { parquetMetadata, parquetRead, type ColumnData, type Compressors as ReadCompressors, type DecodedArray } from "hyparquet";
import { compressors as hyparquetCompressors } from "hyparquet-compressors";
import { parquetWriteBuffer, type ColumnSource } from "hyparquet-writer";
import type { Candle } from "../src/domain/candle.ts";
import { getInstrument } from "../src/domain/instruments.ts";
import { BATCH_ROWS, CANDLE_INT_COLUMNS, candleBatches, candlesToArrowIPC, type CandleColumns } from "../src/ingest/candle-arrow.ts";
import { parseZone } from "../src/ingest/time-zone.ts";
import { readHistdataM1 } from "../scripts/import.ts";

const ROOT = path.resolve(import.meta.dirname, "..");
const DATA_FILE = path.resolve(ROOT, "..", "shared", "data", "m1_histdata", "DAT_ASCII_EURUSD_M1_2018.csv.gz");
const RESULT_FILE = path.join(ROOT, "bench", "results", "lake-format.json");
const LIBRARIES = ["apache-arrow", "hyparquet", "hyparquet-writer", "hyparquet-compressors", "hysnappy", "fzstd"] as const;

type IntColumn = (typeof CANDLE_INT_COLUMNS)[number];
type WriteCompressors = NonNullable<Parameters<typeof parquetWriteBuffer>[0]["compressors"]>;
type Codec = NonNullable<Parameters<typeof parquetWriteBuffer>[0]["codec"]>;
type Encoding = NonNullable<ColumnSource["encoding"]>;

// ---- formats ------------------------------------------------------------------------

interface LakeFormat {
  name: string;
  description: string;
  /** Size reference only (not a candidate for the stored object). */
  reference: boolean;
  /** What decodes it, and whether that runs in workerd. */
  decoder: string;
  workerd: boolean;
  encode(candles: readonly Candle[]): Uint8Array;
  decode(bytes: Uint8Array): Promise<CandleColumns[]>;
}

function arrowFormat(): LakeFormat {
  return {
    name: "arrow-ipc",
    description: "Arrow IPC file, 64Ki-row record batches, uncompressed (today's format)",
    reference: false,
    decoder: "apache-arrow tableFromIPC (pure JS, columns are views on the bytes)",
    workerd: true,
    encode: (candles) => candlesToArrowIPC(candles),
    decode: async (bytes) => [...candleBatches(bytes)],
  };
}

function arrowGzipFormat(): LakeFormat {
  return {
    name: "arrow-ipc+gzip",
    description: "the Arrow file gzip'd (node:zlib level 6), as R2/HTTP might send it; reference only",
    reference: true,
    decoder: "node:zlib gunzip + apache-arrow (in a Worker: DecompressionStream)",
    workerd: true,
    encode: (candles) => zlib.gzipSync(candlesToArrowIPC(candles)),
    decode: async (bytes) => [...candleBatches(zlib.gunzipSync(bytes))],
  };
}

interface ParquetVariant {
  name: string;
  description: string;
  codec: Codec;
  /** t as DOUBLE (decodes to Float64Array) or INT64 (BigInt64Array, converted). */
  tType: "DOUBLE" | "INT64";
  /** Encoding forced on every column; undefined: writer default (dictionary when it halves the size, else PLAIN). */
  encoding?: Encoding;
  writeCompressors?: WriteCompressors;
  readCompressors?: ReadCompressors;
  decoder: string;
  workerd: boolean;
}

/** Only the decompressors that do not need WASM (hyparquet's own snappy is pure JS). */
const pureJsReadCompressors: ReadCompressors = {
  GZIP: required(hyparquetCompressors.GZIP, "GZIP"),
  BROTLI: required(hyparquetCompressors.BROTLI, "BROTLI"),
  ZSTD: required(hyparquetCompressors.ZSTD, "ZSTD"),
};

function required<T>(x: T | undefined, name: string): T {
  if (x === undefined) throw new Error(`hyparquet-compressors has no ${name} decompressor`);
  return x;
}

function parquetFormat(v: ParquetVariant): LakeFormat {
  return {
    name: v.name,
    description: v.description,
    reference: false,
    decoder: v.decoder,
    workerd: v.workerd,
    encode: (candles) => encodeParquet(candles, v),
    decode: (bytes) => decodeParquet(bytes, v),
  };
}

function parquetVariants(): ParquetVariant[] {
  const gzip: WriteCompressors = { GZIP: (input) => zlib.gzipSync(input, { level: 6 }) };
  const brotli: WriteCompressors = {
    BROTLI: (input) => zlib.brotliCompressSync(input, { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 6, [zlib.constants.BROTLI_PARAM_SIZE_HINT]: input.byteLength } }),
  };
  const pure = "hyparquet (pure JS)";
  return [
    { name: "parquet", description: "Parquet, default encodings, UNCOMPRESSED", codec: "UNCOMPRESSED", tType: "DOUBLE", decoder: pure, workerd: true },
    { name: "parquet-plain", description: "Parquet, every column PLAIN (no dictionary), UNCOMPRESSED", codec: "UNCOMPRESSED", tType: "DOUBLE", encoding: "PLAIN", decoder: pure, workerd: true },
    { name: "parquet-plain+snappy", description: "Parquet, every column PLAIN (no dictionary), SNAPPY", codec: "SNAPPY", tType: "DOUBLE", encoding: "PLAIN", decoder: `${pure}, built-in JS snappy`, workerd: true },
    { name: "parquet+snappy", description: "Parquet, default encodings, SNAPPY (hyparquet-writer's built-in codec)", codec: "SNAPPY", tType: "DOUBLE", decoder: `${pure}, built-in JS snappy`, workerd: true },
    {
      name: "parquet+snappy/wasm", description: "same bytes as parquet+snappy, decoded with hysnappy (WASM) from hyparquet-compressors", codec: "SNAPPY", tType: "DOUBLE",
      readCompressors: { SNAPPY: required(hyparquetCompressors.SNAPPY, "SNAPPY") }, decoder: "hyparquet + hysnappy WASM", workerd: false,
    },
    { name: "parquet+gzip", description: "Parquet, default encodings, GZIP (node:zlib level 6 to write)", codec: "GZIP", tType: "DOUBLE", writeCompressors: gzip, readCompressors: pureJsReadCompressors, decoder: `${pure} + hyparquet-compressors gunzip (JS)`, workerd: true },
    { name: "parquet+brotli", description: "Parquet, default encodings, BROTLI (node:zlib quality 6 to write)", codec: "BROTLI", tType: "DOUBLE", writeCompressors: brotli, readCompressors: pureJsReadCompressors, decoder: `${pure} + hyparquet-compressors brotli (JS)`, workerd: true },
    { name: "parquet-delta", description: "Parquet, t INT64, every column DELTA_BINARY_PACKED, UNCOMPRESSED", codec: "UNCOMPRESSED", tType: "INT64", encoding: "DELTA_BINARY_PACKED", decoder: pure, workerd: true },
    { name: "parquet-delta+snappy", description: "Parquet, t INT64, every column DELTA_BINARY_PACKED, SNAPPY", codec: "SNAPPY", tType: "INT64", encoding: "DELTA_BINARY_PACKED", decoder: `${pure}, built-in JS snappy`, workerd: true },
    { name: "parquet-delta+gzip", description: "Parquet, t INT64, every column DELTA_BINARY_PACKED, GZIP", codec: "GZIP", tType: "INT64", encoding: "DELTA_BINARY_PACKED", writeCompressors: gzip, readCompressors: pureJsReadCompressors, decoder: `${pure} + hyparquet-compressors gunzip (JS)`, workerd: true },
  ];
}

function toColumns(candles: readonly Candle[]): { t: Float64Array } & Record<IntColumn, Int32Array> {
  const n = candles.length;
  const t = new Float64Array(n);
  const ints = Object.fromEntries(CANDLE_INT_COLUMNS.map((k) => [k, new Int32Array(n)])) as Record<IntColumn, Int32Array>;
  for (let i = 0; i < n; i++) {
    const c = candles[i] as Candle;
    if (!Number.isSafeInteger(c.t)) throw new RangeError(`candle ${i}: t must be an integer epoch ms, got ${c.t}`);
    t[i] = c.t;
    for (const k of CANDLE_INT_COLUMNS) {
      const v = c[k];
      if (!Number.isInteger(v) || v !== (v | 0)) throw new RangeError(`candle ${i}: ${k} must be an Int32 integer, got ${v}`);
      ints[k][i] = v;
    }
  }
  return { t, ...ints };
}

function encodeParquet(candles: readonly Candle[], v: ParquetVariant): Uint8Array {
  const cols = toColumns(candles);
  const column = (name: string, data: DecodedArray, type: "DOUBLE" | "INT64" | "INT32"): ColumnSource => ({
    name, data, type, nullable: false, ...(v.encoding === undefined ? {} : { encoding: v.encoding }),
  });
  const t = v.tType === "DOUBLE" ? column("t", cols.t, "DOUBLE") : column("t", BigInt64Array.from(cols.t, (x) => BigInt(x)), "INT64");
  const buffer = parquetWriteBuffer({
    columnData: [t, ...CANDLE_INT_COLUMNS.map((k) => column(k, cols[k], "INT32"))],
    codec: v.codec,
    ...(v.writeCompressors === undefined ? {} : { compressors: v.writeCompressors }),
    rowGroupSize: BATCH_ROWS,
  });
  return new Uint8Array(buffer);
}

/** Float64 `t` from hyparquet's DOUBLE (Float64Array) or INT64 (BigInt64Array) column. */
function tColumn(data: DecodedArray): Float64Array {
  if (data instanceof Float64Array) return data;
  if (data instanceof BigInt64Array) {
    const out = new Float64Array(data.length);
    for (let i = 0; i < data.length; i++) out[i] = Number(data[i]);
    return out;
  }
  throw new Error(`parquet candles: column t decoded to ${data.constructor.name}, expected Float64Array or BigInt64Array`);
}

/**
 * Int32Array from hyparquet's INT32 column. PLAIN and DELTA_BINARY_PACKED pages
 * decode to Int32Array, but dictionary-encoded pages decode to a plain Array of
 * numbers: copied here, and the copy is part of the decode time.
 */
function intColumn(name: string, data: DecodedArray): Int32Array {
  if (data instanceof Int32Array) return data;
  if (Array.isArray(data)) return Int32Array.from(data as number[]);
  throw new Error(`parquet candles: column ${name} decoded to ${data.constructor.name}, expected Int32Array`);
}

/** Pieces of one column inside one row group, joined into one array (one piece per row group is the usual case). */
function joinChunks(chunks: ColumnData[], rows: number): DecodedArray {
  if (chunks.length === 1 && (chunks[0] as ColumnData).columnData.length === rows) return (chunks[0] as ColumnData).columnData;
  chunks.sort((a, b) => a.rowStart - b.rowStart);
  const first = (chunks[0] as ColumnData).columnData;
  if (!ArrayBuffer.isView(first)) throw new Error("parquet candles: expected typed-array chunks");
  const out = new (first.constructor as new (n: number) => Int32Array | Float64Array | BigInt64Array)(rows);
  let at = 0;
  for (const c of chunks) {
    (out as Int32Array).set(c.columnData as Int32Array, at);
    at += c.columnData.length;
  }
  if (at !== rows) throw new Error(`parquet candles: row group chunks hold ${at} rows, expected ${rows}`);
  return out;
}

/**
 * Parquet bytes to typed columns per row group: parquetRead with onChunk only
 * (no onComplete, so hyparquet never builds row objects); each callback hands
 * over one column chunk of one row group as a typed array.
 */
async function decodeParquet(bytes: Uint8Array, v: { readCompressors?: ReadCompressors }): Promise<CandleColumns[]> {
  const file = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength
    ? (bytes.buffer as ArrayBuffer)
    : (bytes.slice().buffer as ArrayBuffer);
  const metadata = parquetMetadata(file);
  const groupStarts: number[] = [];
  const groupRows: number[] = [];
  let start = 0;
  for (const rg of metadata.row_groups) {
    groupStarts.push(start);
    groupRows.push(Number(rg.num_rows));
    start += Number(rg.num_rows);
  }
  const pieces = groupStarts.map(() => new Map<string, ColumnData[]>());
  const groupOf = (rowStart: number): number => {
    let lo = 0;
    let hi = groupStarts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if ((groupStarts[mid] as number) <= rowStart) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  };
  await parquetRead({
    file,
    metadata,
    ...(v.readCompressors === undefined ? {} : { compressors: v.readCompressors }),
    onChunk: (chunk) => {
      const g = pieces[groupOf(chunk.rowStart)] as Map<string, ColumnData[]>;
      const list = g.get(chunk.columnName);
      if (list) list.push(chunk);
      else g.set(chunk.columnName, [chunk]);
    },
  });
  return pieces.map((g, i) => {
    const rows = groupRows[i] as number;
    const get = (name: string): DecodedArray => {
      const chunks = g.get(name);
      if (!chunks) throw new Error(`parquet candles: row group ${i} has no column ${name}`);
      return joinChunks(chunks, rows);
    };
    const ints = Object.fromEntries(CANDLE_INT_COLUMNS.map((k) => [k, intColumn(k, get(k))])) as Record<IntColumn, Int32Array>;
    return { length: rows, t: tColumn(get("t")), ...ints };
  });
}

// ---- checks -------------------------------------------------------------------------

/** Every column of every row equals the input, or throw naming the first difference. */
function assertRoundTrip(format: string, candles: readonly Candle[], batches: readonly CandleColumns[]): void {
  let row = 0;
  for (const b of batches) {
    if (b.t.length !== b.length) throw new Error(`${format}: batch t has ${b.t.length} values, length says ${b.length}`);
    for (const k of CANDLE_INT_COLUMNS) if (b[k].length !== b.length) throw new Error(`${format}: batch ${k} has ${b[k].length} values, length says ${b.length}`);
    for (let i = 0; i < b.length; i++, row++) {
      const c = candles[row];
      if (c === undefined) throw new Error(`${format}: decoded more rows than the ${candles.length} written`);
      if (b.t[i] !== c.t) throw new Error(`${format}: row ${row} t = ${b.t[i]}, expected ${c.t}`);
      for (const k of CANDLE_INT_COLUMNS) if (b[k][i] !== c[k]) throw new Error(`${format}: row ${row} ${k} = ${b[k][i]}, expected ${c[k]}`);
    }
  }
  if (row !== candles.length) throw new Error(`${format}: decoded ${row} rows, expected ${candles.length}`);
}

function sumBc(batches: readonly CandleColumns[]): number {
  let sum = 0;
  for (const b of batches) {
    const bc = b.bc;
    for (let i = 0; i < b.length; i++) sum += bc[i] as number;
  }
  return sum;
}

// ---- timing -------------------------------------------------------------------------

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

/**
 * A full GC before each timed call, so one format's garbage is not collected on
 * the next one's clock (Parquet decoding allocates its columns, Arrow does not).
 */
let gc: (() => void) | undefined;
function forceGc(): void {
  if (!gc) {
    v8.setFlagsFromString("--expose-gc");
    gc = vm.runInNewContext("gc") as () => void;
  }
  gc();
}

/** Median ms of `runs` calls after `warmup` untimed calls. */
async function timeMedian(warmup: number, runs: number, fn: () => unknown): Promise<{ medianMs: number; samplesMs: number[] }> {
  for (let i = 0; i < warmup; i++) await fn();
  const samplesMs: number[] = [];
  for (let i = 0; i < runs; i++) {
    forceGc();
    const t0 = performance.now();
    await fn();
    samplesMs.push(performance.now() - t0);
  }
  return { medianMs: median(samplesMs), samplesMs };
}

// ---- measurement --------------------------------------------------------------------

export interface FormatFigures {
  name: string;
  description: string;
  reference: boolean;
  decoder: string;
  workerd: boolean;
  bytes: number;
  bytesPerRow: number;
  /** bytes / Arrow IPC bytes. */
  sizeVsArrow: number;
  encodeMs: number;
  decodeMs: number;
  decodeRowsPerSec: number;
  decodeIterateMs: number;
  decodeIterateRowsPerSec: number;
  /** decodeIterateMs / Arrow's decodeIterateMs. */
  decodeIterateVsArrow: number;
  /**
   * Fetch bandwidth (MB/s) below which this format reaches decoded columns
   * sooner than Arrow IPC (its smaller download pays for its slower decode):
   * (Arrow bytes - bytes) / (decodeIterateMs - Arrow's). null when it is not
   * both smaller and slower than Arrow.
   */
  breakEvenMBps: number | null;
  samples: { encodeMs: number[]; decodeMs: number[]; decodeIterateMs: number[] };
}

export interface LakeFormatFigures {
  input: { file: string; pair: string; rows: number; batchRows: number; firstT: string; lastT: string; csvReadMs: number };
  mode: "quick" | "full";
  runs: number;
  warmup: number;
  encodeRuns: number;
  formats: FormatFigures[];
  recommendation: string;
  totalSeconds: number;
}

export class NoDataError extends Error {}

const r = (x: number, digits = 2): number => Math.round(x * 10 ** digits) / 10 ** digits;

export async function measureLakeFormats(options: { quick: boolean }): Promise<LakeFormatFigures> {
  const started = performance.now();
  if (!existsSync(DATA_FILE)) throw new NoDataError(`skipped: no data at ${DATA_FILE}`);
  const readStarted = performance.now();
  const { candles } = await readHistdataM1(DATA_FILE, getInstrument("EUR_USD"), parseZone("EST"));
  const csvReadMs = r(performance.now() - readStarted, 0);
  if (candles.length === 0) throw new Error(`no candles in ${DATA_FILE}`);
  const runs = options.quick ? 2 : 5;
  const warmup = 1;
  const encodeRuns = options.quick ? 1 : 3;
  const expectedSum = candles.reduce((s, c) => s + c.bc, 0);

  const formats: LakeFormat[] = [arrowFormat(), arrowGzipFormat(), ...parquetVariants().map(parquetFormat)];
  const figures: FormatFigures[] = [];
  for (const f of formats) {
    let encoded: Uint8Array | undefined;
    const encode = await timeMedian(0, encodeRuns, () => {
      encoded = f.encode(candles);
    });
    const bytes = encoded as Uint8Array;
    const checked = await f.decode(bytes);
    assertRoundTrip(f.name, candles, checked);
    // Warm the iterate loop up on this format's own batches, so the first format is not charged its JIT.
    for (let i = 0; i < 3; i++) if (sumBc(checked) !== expectedSum) throw new Error(`${f.name}: sum of bc mismatch`);
    // The round-trip check above was the decode's warm-up.
    const decode = await timeMedian(warmup - 1, runs, () => f.decode(bytes));
    const decodeIterate = await timeMedian(warmup, runs, async () => {
      const sum = sumBc(await f.decode(bytes));
      if (sum !== expectedSum) throw new Error(`${f.name}: sum of bc ${sum}, expected ${expectedSum}`);
    });
    figures.push({
      name: f.name,
      description: f.description,
      reference: f.reference,
      decoder: f.decoder,
      workerd: f.workerd,
      bytes: bytes.byteLength,
      bytesPerRow: r(bytes.byteLength / candles.length),
      sizeVsArrow: 0,
      encodeMs: r(encode.medianMs, 1),
      decodeMs: r(decode.medianMs, 2),
      decodeRowsPerSec: Math.round(candles.length / (decode.medianMs / 1000)),
      decodeIterateMs: r(decodeIterate.medianMs, 2),
      decodeIterateRowsPerSec: Math.round(candles.length / (decodeIterate.medianMs / 1000)),
      decodeIterateVsArrow: 0,
      breakEvenMBps: null,
      samples: {
        encodeMs: encode.samplesMs.map((x) => r(x, 2)),
        decodeMs: decode.samplesMs.map((x) => r(x, 2)),
        decodeIterateMs: decodeIterate.samplesMs.map((x) => r(x, 2)),
      },
    });
  }
  const arrow = figures[0] as FormatFigures;
  for (const f of figures) {
    f.sizeVsArrow = r(f.bytes / arrow.bytes, 3);
    f.decodeIterateVsArrow = r(f.decodeIterateMs / arrow.decodeIterateMs, 2);
    const savedBytes = arrow.bytes - f.bytes;
    const extraMs = f.decodeIterateMs - arrow.decodeIterateMs;
    f.breakEvenMBps = f !== arrow && savedBytes > 0 && extraMs > 0 ? r(savedBytes / 1e6 / (extraMs / 1000), 0) : null;
  }
  return {
    input: {
      file: path.relative(ROOT, DATA_FILE),
      pair: "EUR_USD",
      rows: candles.length,
      batchRows: BATCH_ROWS,
      firstT: new Date((candles[0] as Candle).t).toISOString(),
      lastT: new Date((candles[candles.length - 1] as Candle).t).toISOString(),
      csvReadMs,
    },
    mode: options.quick ? "quick" : "full",
    runs,
    warmup,
    encodeRuns,
    formats: figures,
    recommendation: recommend(figures),
    totalSeconds: r((performance.now() - started) / 1000, 1),
  };
}

/**
 * Derived from the figures, nothing hard-coded: which format decodes + iterates
 * faster (Arrow against the fastest Parquet a Worker can decode), the size
 * ratios, and the Parquet variant with the best size/decode trade-off (highest
 * break-even fetch bandwidth).
 */
function recommend(figures: readonly FormatFigures[]): string {
  const arrow = figures.find((f) => f.name === "arrow-ipc");
  const parquet = figures.filter((f) => !f.reference && f.workerd && f.name.startsWith("parquet"));
  if (!arrow || parquet.length === 0) return "no comparison possible";
  const fastest = parquet.reduce((a, b) => (b.decodeIterateMs < a.decodeIterateMs ? b : a));
  const mb = (b: number): string => `${(b / 1e6).toFixed(2)} MB`;
  const speed = arrow.decodeIterateMs <= fastest.decodeIterateMs
    ? `Better decode speed: Arrow IPC, ${r(fastest.decodeIterateMs / arrow.decodeIterateMs, 1)}x faster to decode + iterate than the fastest Worker-decodable Parquet (${fastest.name}, ${fastest.decodeIterateMs} ms vs ${arrow.decodeIterateMs} ms, ${mb(fastest.bytes)} = ${r(fastest.bytes / arrow.bytes, 2)}x Arrow's ${mb(arrow.bytes)}).`
    : `Better decode speed: ${fastest.name}, ${r(arrow.decodeIterateMs / fastest.decodeIterateMs, 1)}x faster to decode + iterate than Arrow IPC (${fastest.decodeIterateMs} ms vs ${arrow.decodeIterateMs} ms, ${mb(fastest.bytes)} = ${r(fastest.bytes / arrow.bytes, 2)}x Arrow's ${mb(arrow.bytes)}).`;
  const tradeOffs = parquet.filter((f) => f.breakEvenMBps !== null);
  if (tradeOffs.length === 0) return speed;
  const best = tradeOffs.reduce((a, b) => ((b.breakEvenMBps as number) > (a.breakEvenMBps as number) ? b : a));
  return `${speed} Best size/speed trade-off: ${best.name}, ${mb(best.bytes)} = ${r(best.bytes / arrow.bytes, 3)}x Arrow (${r(arrow.bytes / best.bytes, 1)}x smaller), ${best.decodeIterateMs} ms to decode + iterate; it reaches typed columns before Arrow whenever the object is fetched at under ${best.breakEvenMBps} MB/s.`;
}

// ---- output -------------------------------------------------------------------------

function printTable(f: LakeFormatFigures): void {
  const headers = ["format", "bytes", "B/row", "x arrow", "encode ms", "decode ms", "rows/s", "dec+iter ms", "rows/s", "break-even", "workerd"];
  const rows = f.formats.map((x) => [
    x.reference ? `${x.name} (ref)` : x.name,
    x.bytes.toLocaleString("en-US"),
    x.bytesPerRow.toFixed(2),
    x.sizeVsArrow.toFixed(3),
    x.encodeMs.toFixed(1),
    x.decodeMs.toFixed(2),
    (x.decodeRowsPerSec / 1e6).toFixed(1) + " M",
    x.decodeIterateMs.toFixed(2),
    (x.decodeIterateRowsPerSec / 1e6).toFixed(1) + " M",
    x.breakEvenMBps === null ? "-" : `${x.breakEvenMBps} MB/s`,
    x.workerd ? "yes" : "no",
  ]);
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((row) => String(row[i]).length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number))).join("  ");
  console.log(line(headers));
  console.log(widths.map((w) => "-".repeat(w)).join("  "));
  for (const row of rows) console.log(line(row));
}

const NOTES = [
  "decode = bytes to CandleColumns (Float64Array t + nine Int32Array per batch/row group); dec+iter also sums bc. Arrow columns are views on the file bytes (no copy); hyparquet allocates its columns.",
  "hyparquet returns dictionary-encoded INT32 pages (the writer's default when a dictionary halves the size) as plain JS Arrays: converted to Int32Array inside the timed decode. PLAIN and DELTA_BINARY_PACKED pages come back as Int32Array.",
  "DOUBLE decodes to Float64Array; INT64 decodes to BigInt64Array (converted with Number() inside the timed decode; exact below 2^53). A TIMESTAMP logical type would decode to Date objects, so t is plain INT64.",
  "parquetRead with onChunk and no onComplete never builds row objects; parquetReadObjects does and is not used.",
  "hyparquet-compressors' index instantiates the hysnappy WASM at import; workerd refuses runtime WASM compilation, so a Worker must deep-import the pure-JS decompressor it needs (src/gzip.js, src/brotli.js) and use hyparquet's built-in JS snappy.",
  "Not measured: ZSTD/LZ4 (no compressor in Node 20 zlib or node_modules), Arrow IPC body compression (same reason).",
  "breakEvenMBps: fetch bandwidth below which the smaller object reaches decoded columns before Arrow IPC.",
];

async function libraryVersions(): Promise<Record<string, string | null>> {
  const out: Record<string, string | null> = {};
  for (const name of LIBRARIES) {
    try {
      const pkg = JSON.parse(await readFile(path.join(ROOT, "node_modules", name, "package.json"), "utf8")) as { version?: string };
      out[name] = pkg.version ?? null;
    } catch {
      out[name] = null;
    }
  }
  return out;
}

function machine(): Record<string, string | number> {
  const cpus = os.cpus();
  return {
    node: process.version,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    cpuModel: cpus[0]?.model.trim() ?? "unknown",
    cores: cpus.length,
    totalMemoryMB: Math.round(os.totalmem() / 2 ** 20),
  };
}

async function main(): Promise<void> {
  const quick = process.argv.includes("--quick");
  let figures: LakeFormatFigures;
  try {
    figures = await measureLakeFormats({ quick });
  } catch (err) {
    if (err instanceof NoDataError) {
      console.log(err.message);
      return;
    }
    throw err;
  }
  console.log(`lake format: ${figures.input.rows.toLocaleString("en-US")} EUR_USD 1m candles (${figures.input.file}), ${figures.mode} run, median of ${figures.runs} after ${figures.warmup} warm-up, ${figures.totalSeconds} s`);
  console.log("every format round-trips exactly (all columns, all rows checked); dec+iter = decode then sum bc\n");
  printTable(figures);
  console.log(`\n${figures.recommendation}`);
  const result = { name: "lake-format", date: new Date().toISOString(), machine: machine(), versions: await libraryVersions(), ...figures, notes: NOTES };
  await mkdir(path.dirname(RESULT_FILE), { recursive: true });
  await writeFile(RESULT_FILE, JSON.stringify(result, null, 2) + "\n");
  console.log(`\nwrote ${path.relative(ROOT, RESULT_FILE)}`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    console.error(err instanceof Error ? (err.stack ?? err.message) : err);
    process.exit(1);
  });
}
