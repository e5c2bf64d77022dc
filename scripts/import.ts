/**
 * Import a history file into the data lake, the R2 bucket bound as DATA:
 *
 *   npm run import -- <file> --pair EUR_USD [--tz EST] [--remote]
 *
 * Input: `.csv`, `.csv.gz` or `.zip` (histdata.com downloads: the single
 * `.csv` inside is read, a `.txt` gap report ignored). The format is detected
 * from the first data line (src/ingest/history-formats.ts):
 * - 1-minute bars: histdata ASCII M1 (bid only: ask = bid, sides "bid") or
 *   LEAN bid/ask M1 bars (sides "bidask");
 * - ticks: histdata ticks, LEAN / TrueFX ISO `timestamp,bid,ask` (header or not).
 *
 * Writes (layout and manifests: src/ingest/lake-manifest.ts):
 * - `candles/<PAIR>/1m/<YYYY>.arrow` per UTC year (src/ingest/candle-arrow.ts),
 *   for tick files the 1-minute bid/ask candles the live actor would build
 *   (domain CandleAggregator), and `candles/<PAIR>/manifest.json`;
 * - for tick files also `ticks/<PAIR>/<YYYY>-<MM>.arrow` per UTC month
 *   (src/ingest/tick-arrow.ts) and `ticks/<PAIR>/manifest.json`.
 * An existing partition is read and merged: imported rows replace stored rows
 * at the same timestamp (counted as `replaced`), so re-importing a file is
 * idempotent; manifests are merged, not rewritten. Each partition's entry is
 * put in the manifest (marked pending) before the partition itself, so an
 * import killed at any point leaves no rows that the manifests do not list;
 * the next import settles such entries from the bucket (lake-manifest.ts).
 *
 * Rows are validated (bad ones counted by kind and skipped, with samples),
 * sorted and deduplicated; duplicated and out-of-order timestamps are reported.
 * Tick files: ticks sharing a millisecond are all kept (feeds repeat
 * timestamps), an exact repeat of the previous tick (same ms, bid and ask) is
 * dropped as a duplicate; crossed quotes (bid > ask, real in FXCM data) are
 * counted and kept.
 *
 * Local R2 (default) is reached through wrangler's platform proxy on the same
 * state folder `npm start` uses: STATE_DIR (default .wrangler/state), whose
 * `v3` sub-folder is the proxy's persist path (Miniflare's defaultPersistRoot
 * in scripts/runtime.ts); no account needed. `--remote` writes to the real
 * bucket configured for DATA in wrangler.jsonc through wrangler's remote
 * bindings; it needs `npx wrangler login` (or CLOUDFLARE_API_TOKEN and
 * CLOUDFLARE_ACCOUNT_ID) and network access.
 *
 * Progress goes to stderr, one JSON summary to stdout.
 * Exit codes: 0 ok, 1 failure, 2 bad arguments or unusable input.
 */
import { existsSync } from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import type { Candle, Tick } from "../src/domain/candle.ts";
import { CandleAggregator } from "../src/domain/candle-aggregator.ts";
import { getInstrument, type Instrument } from "../src/domain/instruments.ts";
import { toPoints } from "../src/domain/price.ts";
import { candlesFromArrowIPC, candlesToArrowIPC } from "../src/ingest/candle-arrow.ts";
import {
  bidAskBarToCandle,
  detectFormat,
  isBarFormat,
  isHeaderLine,
  isQuoteFormat,
  parseBidAskBar,
  parseHistdataM1,
  parseQuote,
  type BarFormat,
  type HistoryFormat,
  type QuoteFormat,
  type RowError,
  type RowErrorKind,
} from "../src/ingest/history-formats.ts";
import {
  candleKey,
  candleManifestKey,
  mergePartitions,
  mergeSides,
  mergeSources,
  readCandleManifest,
  readTickManifest,
  tickKey,
  tickManifestKey,
  utcMonth,
  utcYear,
  type CandleManifest,
  type CandlePartition,
  type CandleSides,
  type LivePartition,
  type TickManifest,
  type TickPartition,
} from "../src/ingest/lake-manifest.ts";
import { tickColumnsFromArrowIPC, tickColumnsToArrowIPC, type TickColumns } from "../src/ingest/tick-arrow.ts";
import { parseZone, type Zone } from "../src/ingest/time-zone.ts";
import { readInputLines, ZipError } from "../src/ingest/zip-input.ts";
import { defaultStateDir, openDataBucket, RemoteError, type DataBucket, type OpenedBucket } from "./data-bucket.ts";

export { candleKey } from "../src/ingest/lake-manifest.ts";
export type { CandleManifest as Manifest, CandlePartition, CandleSides, TickManifest, TickPartition } from "../src/ingest/lake-manifest.ts";


/** Bad arguments or unusable input (exit code 2). */
export class UsageError extends Error {}


export interface ImportOptions {
  file: string;
  /** Instrument symbol, e.g. EUR_USD. */
  pair: string;
  /** Zone of the file's clock for timestamps without an offset (default "EST", fixed UTC-05:00). */
  tz?: string;
  /** Local state folder (default $STATE_DIR or .wrangler/state); R2 lives under `<stateDir>/v3`. */
  stateDir?: string;
  /** wrangler config (default wrangler.jsonc at the project root). */
  configPath?: string;
  /** Write to the real bucket configured for DATA (wrangler remote bindings) instead of local R2. */
  remote?: boolean;
  /** A bucket to write to directly (tests, or a caller holding a proxy); no proxy is opened. */
  bucket?: DataBucket;
  /** Progress lines (default: stderr). */
  log?: (message: string) => void;
}

/** A written candle partition: the manifest entry plus this import's figures. */
export interface PartitionInfo extends CandlePartition {
  bytes: number;
  /** Rows of this partition that came from the imported file. */
  imported: number;
  /** Stored rows replaced by imported rows with the same timestamp. */
  replaced: number;
}

export interface TickPartitionInfo extends TickPartition {
  bytes: number;
  imported: number;
  /** Stored ticks dropped because the import has ticks at the same millisecond. */
  replaced: number;
}

export type BadKind = RowErrorKind | "bad_price";

/** What reading a file found (before anything is written). */
export interface ReadCounts {
  /** Rows kept (valid, deduplicated): bars for M1 files, ticks for tick files. */
  rows: number;
  /** Rows skipped as invalid. */
  bad: number;
  badByKind: Partial<Record<BadKind, number>>;
  /** First few bad rows, `line: reason`. */
  badSamples: string[];
  /** Rows dropped as duplicates: M1, a later bar with the same start; ticks, an exact repeat (ms, bid, ask) of the previous tick. */
  duplicates: number;
  /** Rows whose timestamp is earlier than the previous row's (file order); they are sorted into place. */
  nonMonotonic: number;
  /** First few duplicated or out-of-order timestamps, e.g. `line 9: 2019-10-27T23:00:00.000Z before 2019-10-27T23:59:00.000Z`. */
  timestampSamples: string[];
}

export interface ImportSummary extends ReadCounts {
  pair: string;
  kind: "m1" | "ticks";
  format: HistoryFormat;
  /** File name as recorded in the manifests' `sources`. */
  source: string;
  tz: string;
  target: "local" | "remote";
  /** Ticks kept that share their millisecond with the previous tick (0 for M1). */
  sameTimestamp: number;
  /** Ticks kept with bid > ask (0 for M1). */
  crossed: number;
  /** 1-minute candles from this file (M1: = rows; ticks: aggregated). */
  candles: number;
  /** Candle rows in the lake replaced by this import (re-importing a file replaces all its rows). */
  replaced: number;
  partitions: PartitionInfo[];
  manifestKey: string;
  tickPartitions: TickPartitionInfo[];
  /** Ticks in the lake replaced by this import. */
  tickReplaced: number;
  tickManifestKey?: string;
  ms: number;
}

const BAD_SAMPLES_MAX = 10;
const PROGRESS_LINES = 100_000;
const INT32_MAX = 2_147_483_647;

export const USAGE =
  "usage: npm run import -- <file.csv|file.csv.gz|file.zip> --pair EUR_USD [--tz EST|UTC|+02:00|America/New_York] [--remote]\n" +
  "  histdata M1 bars, LEAN bid/ask M1 bars, histdata / LEAN / TrueFX ticks (format detected from the first data line)\n" +
  "  --tz      clock of timestamps without an offset (default EST = UTC-05:00 all year, histdata's documented clock)\n" +
  "  --remote  write to the real R2 bucket bound as DATA in wrangler.jsonc (needs `npx wrangler login` or\n" +
  "            CLOUDFLARE_API_TOKEN + CLOUDFLARE_ACCOUNT_ID, and network); default: local R2 under STATE_DIR\n";

export interface ImportArgs {
  file: string;
  pair: string;
  tz: string;
  remote: boolean;
}

export function parseArgs(argv: string[]): ImportArgs {
  const positional: string[] = [];
  let pair: string | undefined;
  let tz = "EST";
  let remote = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === "--pair" || arg === "--tz") {
      const value = argv[++i];
      if (value === undefined) throw new UsageError(`${arg} needs a value`);
      if (arg === "--pair") pair = value;
      else tz = value;
    } else if (arg === "--remote") {
      remote = true;
    } else if (arg.startsWith("--")) {
      throw new UsageError(`unknown option ${arg}`);
    } else positional.push(arg);
  }
  const file = positional[0];
  if (file === undefined || positional.length > 1) throw new UsageError("exactly one input file is required");
  if (pair === undefined) throw new UsageError("--pair is required");
  checkPair(pair);
  checkZone(tz);
  return { file, pair, tz, remote };
}

function checkPair(pair: string): Instrument {
  try {
    return getInstrument(pair);
  } catch {
    throw new UsageError(`unknown pair ${pair}`);
  }
}

function checkZone(tz: string): Zone {
  try {
    return parseZone(tz);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

// ---------------------------------------------------------------- reading

class RowTally {
  bad = 0;
  readonly badByKind: ReadCounts["badByKind"] = {};
  readonly badSamples: string[] = [];
  reject(line: number, kind: BadKind, reason: string): void {
    this.bad++;
    this.badByKind[kind] = (this.badByKind[kind] ?? 0) + 1;
    if (this.badSamples.length < BAD_SAMPLES_MAX) this.badSamples.push(`${line}: ${reason}`);
  }
  rowError(e: RowError): void {
    this.reject(e.line, e.kind, e.reason);
  }
  readonly timestampSamples: string[] = [];
  timestampIssue(text: string): void {
    if (this.timestampSamples.length < BAD_SAMPLES_MAX) this.timestampSamples.push(text);
  }
}

const iso = (ms: number): string => new Date(ms).toISOString();

/** Data lines of a file with 1-based line numbers: blank lines and a leading header are skipped. */
async function* dataLines(file: string, log: (message: string) => void): AsyncGenerator<{ line: string; lineNo: number }> {
  let lineNo = 0;
  let seenData = false;
  for await (const line of readInputLines(file)) {
    lineNo++;
    if (lineNo % PROGRESS_LINES === 0) log(`  ${lineNo.toLocaleString("en-US")} lines read`);
    if (line.trim() === "") continue;
    // A header is allowed only before the first data row; later, a non-digit line is a bad row.
    if (!seenData && isHeaderLine(line)) continue;
    seenData = true;
    yield { line, lineNo };
  }
}

/** The format of a file from its first data line. Throws UsageError when there is none or it fits no format. */
export async function detectFileFormat(file: string): Promise<HistoryFormat> {
  for await (const { line } of dataLines(file, () => {})) {
    const format = detectFormat(line);
    if (format === undefined) {
      throw new UsageError(
        `${path.basename(file)}: unknown format, first data line '${line.slice(0, 80)}'; expected histdata M1 ` +
          "(YYYYMMDD HHMMSS;o;h;l;c;v), histdata ticks (YYYYMMDD HHMMSSmmm,bid,ask,vol), ISO ticks (timestamp,bid,ask) or LEAN bid/ask bars",
      );
    }
    return format;
  }
  throw new UsageError(`${path.basename(file)}: no data rows`);
}

function validPoints(p: number): boolean {
  return Number.isInteger(p) && p > 0 && p <= INT32_MAX;
}

/** Parse and validate a 1-minute bar file into sorted, deduplicated candles. */
export async function readBars(
  file: string,
  instrument: Instrument,
  zone: Zone,
  format: BarFormat,
  log: (message: string) => void = () => {},
): Promise<ReadCounts & { candles: Candle[] }> {
  const candles: Candle[] = [];
  const tally = new RowTally();
  let nonMonotonic = 0;
  let prevTs = Number.NEGATIVE_INFINITY;
  for await (const { line, lineNo } of dataLines(file, log)) {
    let candle: Candle;
    if (format === "histdata_m1") {
      const r = parseHistdataM1(line, lineNo, zone);
      if (!r.ok) {
        tally.rowError(r.error);
        continue;
      }
      const bar = r.value;
      const [bo, bh, bl, bc] = [bar.open, bar.high, bar.low, bar.close].map((x) => toPoints(x, instrument)) as [number, number, number, number];
      candle = { t: bar.ts, bo, bh, bl, bc, ao: bo, ah: bh, al: bl, ac: bc, n: 0 };
    } else {
      const r = parseBidAskBar(line, lineNo, zone);
      if (!r.ok) {
        tally.rowError(r.error);
        continue;
      }
      candle = bidAskBarToCandle(r.value, instrument);
    }
    if (![candle.bo, candle.bh, candle.bl, candle.bc, candle.ao, candle.ah, candle.al, candle.ac].every(validPoints)) {
      tally.reject(lineNo, "bad_price", `prices out of range for ${instrument.symbol}`);
      continue;
    }
    if (candle.t % 60_000 !== 0) {
      tally.reject(lineNo, "bad_timestamp", `bar start ${new Date(candle.t).toISOString()} is not on a UTC minute`);
      continue;
    }
    if (candle.t < prevTs) {
      nonMonotonic++;
      tally.timestampIssue(`line ${lineNo}: ${iso(candle.t)} before ${iso(prevTs)}`);
    }
    prevTs = candle.t;
    candles.push(candle);
  }
  // Stable sort keeps file order among equal timestamps, so the first of duplicates survives.
  if (nonMonotonic > 0) candles.sort((a, b) => a.t - b.t);
  let duplicates = 0;
  let w = 0;
  for (let i = 0; i < candles.length; i++) {
    const c = candles[i] as Candle;
    if (w > 0 && (candles[w - 1] as Candle).t === c.t) {
      duplicates++;
      tally.timestampIssue(`${iso(c.t)}: duplicate bar, the later row dropped`);
      continue;
    }
    candles[w++] = c;
  }
  candles.length = w;
  return {
    candles,
    rows: candles.length,
    bad: tally.bad,
    badByKind: tally.badByKind,
    badSamples: tally.badSamples,
    duplicates,
    nonMonotonic,
    timestampSamples: tally.timestampSamples,
  };
}

/** Parse and validate a histdata M1 file into sorted, deduplicated candles (ask = bid). */
export function readHistdataM1(
  file: string,
  instrument: Instrument,
  zone: Zone,
  log: (message: string) => void = () => {},
): Promise<ReadCounts & { candles: Candle[] }> {
  return readBars(file, instrument, zone, "histdata_m1", log);
}

/** Growable tick columns. */
class TickBuffer {
  length = 0;
  t = new Float64Array(1 << 16);
  bid = new Int32Array(1 << 16);
  ask = new Int32Array(1 << 16);
  push(ts: number, bid: number, ask: number): void {
    if (this.length === this.t.length) {
      const grow = <T extends Float64Array | Int32Array>(a: T, make: (n: number) => T): T => {
        const b = make(a.length * 2);
        b.set(a);
        return b;
      };
      this.t = grow(this.t, (n) => new Float64Array(n));
      this.bid = grow(this.bid, (n) => new Int32Array(n));
      this.ask = grow(this.ask, (n) => new Int32Array(n));
    }
    this.t[this.length] = ts;
    this.bid[this.length] = bid;
    this.ask[this.length] = ask;
    this.length++;
  }
  columns(): TickColumns {
    return { length: this.length, t: this.t.subarray(0, this.length), bid: this.bid.subarray(0, this.length), ask: this.ask.subarray(0, this.length) };
  }
}

/** Stable sort of tick columns by time (file order kept within a millisecond). */
function sortTicks(cols: TickColumns): TickColumns {
  const order = Array.from({ length: cols.length }, (_, i) => i);
  order.sort((a, b) => (cols.t[a] as number) - (cols.t[b] as number) || a - b);
  const out: TickColumns = { length: cols.length, t: new Float64Array(cols.length), bid: new Int32Array(cols.length), ask: new Int32Array(cols.length) };
  for (let i = 0; i < order.length; i++) {
    const j = order[i] as number;
    out.t[i] = cols.t[j] as number;
    out.bid[i] = cols.bid[j] as number;
    out.ask[i] = cols.ask[j] as number;
  }
  return out;
}

/** Parse and validate a tick file into sorted, deduplicated integer-point ticks. */
export async function readTicks(
  file: string,
  instrument: Instrument,
  zone: Zone,
  format: QuoteFormat,
  log: (message: string) => void = () => {},
): Promise<ReadCounts & { ticks: TickColumns; sameTimestamp: number; crossed: number }> {
  const buf = new TickBuffer();
  const tally = new RowTally();
  let nonMonotonic = 0;
  let prevTs = Number.NEGATIVE_INFINITY;
  for await (const { line, lineNo } of dataLines(file, log)) {
    const r = parseQuote(format, line, lineNo, zone);
    if (!r.ok) {
      tally.rowError(r.error);
      continue;
    }
    const q = r.value;
    const bid = toPoints(q.bid, instrument);
    const ask = toPoints(q.ask, instrument);
    if (!validPoints(bid) || !validPoints(ask)) {
      tally.reject(lineNo, "bad_price", `bid/ask out of range for ${instrument.symbol}: ${q.bid} ${q.ask}`);
      continue;
    }
    if (q.ts < prevTs) {
      nonMonotonic++;
      tally.timestampIssue(`line ${lineNo}: ${iso(q.ts)} before ${iso(prevTs)}`);
    }
    prevTs = q.ts;
    buf.push(q.ts, bid, ask);
  }
  const sorted = nonMonotonic > 0 ? sortTicks(buf.columns()) : buf.columns();
  // Drop exact repeats (same ms, bid and ask as the previous kept tick); count, keep the rest.
  let duplicates = 0;
  let sameTimestamp = 0;
  let crossed = 0;
  let w = 0;
  for (let i = 0; i < sorted.length; i++) {
    const t = sorted.t[i] as number;
    const bid = sorted.bid[i] as number;
    const ask = sorted.ask[i] as number;
    if (w > 0 && sorted.t[w - 1] === t) {
      if (sorted.bid[w - 1] === bid && sorted.ask[w - 1] === ask) {
        duplicates++;
        tally.timestampIssue(`${iso(t)}: tick repeated exactly, dropped`);
        continue;
      }
      sameTimestamp++;
    }
    if (bid > ask) crossed++;
    sorted.t[w] = t;
    sorted.bid[w] = bid;
    sorted.ask[w] = ask;
    w++;
  }
  const ticks: TickColumns = { length: w, t: sorted.t.slice(0, w), bid: sorted.bid.slice(0, w), ask: sorted.ask.slice(0, w) };
  return {
    ticks,
    rows: w,
    bad: tally.bad,
    badByKind: tally.badByKind,
    badSamples: tally.badSamples,
    duplicates,
    nonMonotonic,
    timestampSamples: tally.timestampSamples,
    sameTimestamp,
    crossed,
  };
}

// ---------------------------------------------------------------- merging (pure)

/** Split sorted candles by UTC year. */
export function partitionByUtcYear(candles: readonly Candle[]): Map<number, Candle[]> {
  const out = new Map<number, Candle[]>();
  for (const c of candles) {
    const year = utcYear(c.t);
    let part = out.get(year);
    if (!part) out.set(year, (part = []));
    part.push(c);
  }
  return out;
}

/** Merge two candle lists sorted by `t`: an imported candle replaces a stored one with the same `t`. */
export function mergeCandles(stored: readonly Candle[], imported: readonly Candle[]): { candles: Candle[]; replaced: number } {
  const out: Candle[] = [];
  let replaced = 0;
  let i = 0;
  let j = 0;
  while (i < stored.length || j < imported.length) {
    const s = stored[i];
    const m = imported[j];
    if (m === undefined || (s !== undefined && s.t < m.t)) {
      out.push(s as Candle);
      i++;
    } else {
      if (s !== undefined && s.t === m.t) {
        replaced++;
        i++;
      }
      out.push(m);
      j++;
    }
  }
  return { candles: out, replaced };
}

/**
 * Merge two tick column sets sorted by time: every stored tick at a
 * millisecond that has imported ticks is replaced by those imported ticks
 * (a millisecond may hold several quotes, so replacement is per millisecond).
 */
export function mergeTicks(stored: TickColumns, imported: TickColumns): { ticks: TickColumns; replaced: number } {
  const n = stored.length + imported.length;
  const out: TickColumns = { length: 0, t: new Float64Array(n), bid: new Int32Array(n), ask: new Int32Array(n) };
  let w = 0;
  const take = (from: TickColumns, k: number): void => {
    out.t[w] = from.t[k] as number;
    out.bid[w] = from.bid[k] as number;
    out.ask[w] = from.ask[k] as number;
    w++;
  };
  let replaced = 0;
  let i = 0;
  let j = 0;
  while (i < stored.length || j < imported.length) {
    const ts = i < stored.length ? (stored.t[i] as number) : Number.POSITIVE_INFINITY;
    const tm = j < imported.length ? (imported.t[j] as number) : Number.POSITIVE_INFINITY;
    if (ts < tm) take(stored, i++);
    else {
      while (i < stored.length && stored.t[i] === tm) {
        replaced++;
        i++;
      }
      while (j < imported.length && imported.t[j] === tm) take(imported, j++);
    }
  }
  out.length = w;
  return { ticks: { length: w, t: out.t.subarray(0, w), bid: out.bid.subarray(0, w), ask: out.ask.subarray(0, w) }, replaced };
}

/** 1-minute candles of sorted ticks, exactly as the live actor's CandleAggregator closes them. */
export function aggregateMinutes(ticks: TickColumns): Candle[] {
  const agg = new CandleAggregator();
  const out: Candle[] = [];
  const tick: Tick = { ts: 0, bid: 0, ask: 0 };
  for (let i = 0; i < ticks.length; i++) {
    tick.ts = ticks.t[i] as number;
    tick.bid = ticks.bid[i] as number;
    tick.ask = ticks.ask[i] as number;
    for (const c of agg.onTick(tick)) if (c.tf === "1m") out.push(c.candle);
  }
  // The final minute has no later tick to close it.
  for (const c of agg.closeDue(Number.POSITIVE_INFINITY)) if (c.tf === "1m") out.push(c.candle);
  return out;
}

/** Sides of stored candles judged from the rows themselves (for partitions missing from the manifest). */
function sidesOfRows(candles: readonly Candle[]): CandleSides {
  let bidOnly = 0;
  for (const c of candles) if (c.ao === c.bo && c.ah === c.bh && c.al === c.bl && c.ac === c.bc) bidOnly++;
  return bidOnly === candles.length ? "bid" : bidOnly === 0 ? "bidask" : "mixed";
}

// ---------------------------------------------------------------- the lake

export function manifestKey(pair: string): string {
  return candleManifestKey(pair);
}

export { defaultStateDir, RemoteError };

const ARROW = { httpMetadata: { contentType: "application/vnd.apache.arrow.file" } };
const JSON_TYPE = { httpMetadata: { contentType: "application/json" } };

async function getBytes(bucket: DataBucket, key: string): Promise<Uint8Array | undefined> {
  const obj = await bucket.get(key);
  return obj ? new Uint8Array(await obj.arrayBuffer()) : undefined;
}

async function listKeys(bucket: DataBucket, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await bucket.list(cursor === undefined ? { prefix } : { prefix, cursor });
    for (const o of page.objects) keys.push(o.key);
    cursor = page.truncated ? page.cursor : undefined;
  } while (cursor !== undefined);
  return keys;
}

async function readExistingCandleManifest(bucket: DataBucket, pair: string): Promise<CandleManifest | undefined> {
  const key = candleManifestKey(pair);
  const obj = await bucket.get(key);
  return obj ? readCandleManifest(await obj.text(), key) : undefined;
}

async function readExistingTickManifest(bucket: DataBucket, pair: string): Promise<TickManifest | undefined> {
  const key = tickManifestKey(pair);
  const obj = await bucket.get(key);
  return obj ? readTickManifest(await obj.text(), key) : undefined;
}

/** Puts a candle manifest, checked first: never one a reader would refuse. */
async function putCandleManifest(bucket: DataBucket, manifest: CandleManifest): Promise<void> {
  readCandleManifest(manifest, "new candle manifest");
  await bucket.put(candleManifestKey(manifest.pair), JSON.stringify(manifest, null, 2), JSON_TYPE);
}

async function putTickManifest(bucket: DataBucket, manifest: TickManifest): Promise<void> {
  readTickManifest(manifest, "new tick manifest");
  await bucket.put(tickManifestKey(manifest.pair), JSON.stringify(manifest, null, 2), JSON_TYPE);
}

/**
 * A manifest's record of its imports. The file goes into `sources` once the
 * import is `done`; until then the previous record stays (on a first import,
 * empty `sources`), so a killed import is not listed as imported.
 */
function importRecord(
  previous: { sources: string[]; source: string; tz: string; importedAt: string } | undefined,
  meta: { source: string; tz: string },
  done: boolean,
): { sources: string[]; source: string; tz: string; importedAt: string } {
  if (!done) return previous ? { sources: previous.sources, source: previous.source, tz: previous.tz, importedAt: previous.importedAt } : { sources: [], source: meta.source, tz: meta.tz, importedAt: new Date().toISOString() };
  return { sources: mergeSources(previous?.sources ?? [], meta.source), source: meta.source, tz: meta.tz, importedAt: new Date().toISOString() };
}

/** A written partition's manifest entry (without this import's figures). */
function entryOf<P extends { bytes: number; imported: number; replaced: number }>({ bytes: _b, imported: _i, replaced: _r, ...p }: P): Omit<P, "bytes" | "imported" | "replaced"> {
  return p;
}

/**
 * Merge candles (sorted, one side kind) into the yearly partitions and the
 * candle manifest. Each partition is written after the manifest names it,
 * `pending` (write-ahead, lake-manifest.ts), so a run stopped at any point
 * leaves nothing in the bucket unlisted. Partitions found in the bucket but
 * not settled in the manifest (the first importer's manifest kept only the
 * last import; a pending entry of a stopped run) are read back and put in.
 */
async function writeCandles(
  bucket: DataBucket,
  pair: string,
  candles: readonly Candle[],
  sides: CandleSides,
  meta: { source: string; tz: string },
  log: (message: string) => void,
): Promise<PartitionInfo[]> {
  const manifest = await readExistingCandleManifest(bucket, pair);
  const existing = manifest?.partitions ?? [];
  // A pending entry may describe rows its object never got: only settled entries are trusted.
  const known = new Map(existing.filter((p) => !p.pending).map((p) => [p.key, p]));
  const manifestWith = (partitions: CandlePartition[], live: LivePartition[], done: boolean): CandleManifest => ({
    pair,
    timeframe: "1m",
    partitions,
    ...importRecord(manifest, meta, done),
    ...(live.length > 0 ? { live } : {}),
  });
  const written: PartitionInfo[] = [];
  for (const [year, imported] of [...partitionByUtcYear(candles)].sort((a, b) => a[0] - b[0])) {
    const key = candleKey(pair, year);
    const storedBytes = await getBytes(bucket, key);
    const stored = storedBytes ? candlesFromArrowIPC(storedBytes) : [];
    const { candles: merged, replaced } = mergeCandles(stored, imported);
    const storedSides = storedBytes ? (known.get(key)?.sides ?? sidesOfRows(stored)) : undefined;
    const bytes = candlesToArrowIPC(merged);
    const info: PartitionInfo = {
      key,
      year,
      rows: merged.length,
      fromMs: (merged[0] as Candle).t,
      toMs: (merged[merged.length - 1] as Candle).t,
      sides: mergeSides(storedSides, stored.length - replaced, sides, imported.length),
      bytes: bytes.byteLength,
      imported: imported.length,
      replaced,
    };
    // Existing entries stay as they were (pending ones too: their objects must stay listed until settled).
    await putCandleManifest(bucket, manifestWith(mergePartitions(existing, [...written.map(entryOf), { ...entryOf(info), pending: true }], (p) => p.year), manifest?.live ?? [], false));
    await bucket.put(key, bytes, ARROW);
    written.push(info);
    log(`import: wrote ${key} (${info.rows} rows: ${info.imported} imported, ${replaced} of them replacing stored rows; ${info.bytes} bytes; ${info.sides})`);
  }
  // Repair: partitions in the bucket that the manifest lost or left pending.
  const repaired: CandlePartition[] = [];
  const writtenKeys = new Set(written.map((p) => p.key));
  const prefix = `candles/${pair}/1m/`;
  const knownLive = new Set((manifest?.live ?? []).map((p) => p.key));
  const repairedLive: LivePartition[] = [];
  for (const key of await listKeys(bucket, prefix)) {
    // A live month the pair actor wrote while this import ran (its manifest update lost to ours): listed again.
    const live = /^live\/(\d{4}-\d{2})\.arrow$/.exec(key.slice(prefix.length));
    if (live && !knownLive.has(key)) {
      const rows = candlesFromArrowIPC((await getBytes(bucket, key)) as Uint8Array);
      if (rows.length === 0) continue;
      repairedLive.push({ key, month: live[1] as string, rows: rows.length, fromMs: (rows[0] as Candle).t, toMs: (rows[rows.length - 1] as Candle).t });
      log(`import: ${key} (live archive) was missing from the manifest; added back (${rows.length} rows)`);
      continue;
    }
    const m = /^(\d{4})\.arrow$/.exec(key.slice(prefix.length));
    if (!m || known.has(key) || writtenKeys.has(key)) continue;
    const stored = candlesFromArrowIPC((await getBytes(bucket, key)) as Uint8Array);
    if (stored.length === 0) continue;
    repaired.push({ key, year: Number(m[1]), rows: stored.length, fromMs: (stored[0] as Candle).t, toMs: (stored[stored.length - 1] as Candle).t, sides: sidesOfRows(stored) });
    log(`import: ${key} was missing from the manifest or left pending; settled from the bucket (${stored.length} rows)`);
  }
  // Pending entries whose object never came are dropped: only settled and repaired ones remain.
  const partitions = mergePartitions([...known.values(), ...repaired], written.map(entryOf), (p) => p.year);
  // Live months archived by the pair actors stay as they are: the reader prefers the imported bars where both have a minute.
  await putCandleManifest(bucket, manifestWith(partitions, mergePartitions(manifest?.live ?? [], repairedLive, (p) => p.month), true));
  return written;
}

/** Contiguous [from, to) ranges of sorted ticks per UTC month. */
function monthRanges(ticks: TickColumns): { month: string; from: number; to: number }[] {
  const out: { month: string; from: number; to: number }[] = [];
  let from = 0;
  while (from < ticks.length) {
    const month = utcMonth(ticks.t[from] as number);
    const d = new Date(ticks.t[from] as number);
    const end = Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
    let to = from;
    while (to < ticks.length && (ticks.t[to] as number) < end) to++;
    out.push({ month, from, to });
    from = to;
  }
  return out;
}

/** Manifest entry of a month of ticks (sorted) stored as `key`. */
function tickEntry(key: string, month: string, ticks: TickColumns): TickPartition {
  let crossed = 0;
  for (let i = 0; i < ticks.length; i++) if ((ticks.bid[i] as number) > (ticks.ask[i] as number)) crossed++;
  return { key, month, rows: ticks.length, fromMs: ticks.t[0] as number, toMs: ticks.t[ticks.length - 1] as number, crossed };
}

/**
 * Merge ticks into the monthly partitions and the tick manifest, written
 * ahead as the candles are (writeCandles); returns the written partitions and
 * the 1-minute candles of every minute the import touched, aggregated from
 * the merged month (so a minute split across two imported files gets all of
 * its ticks).
 */
async function writeTicks(
  bucket: DataBucket,
  pair: string,
  ticks: TickColumns,
  meta: { source: string; tz: string },
  log: (message: string) => void,
): Promise<{ partitions: TickPartitionInfo[]; candles: Candle[] }> {
  const manifest = await readExistingTickManifest(bucket, pair);
  const existing = manifest?.partitions ?? [];
  const known = new Set(existing.filter((p) => !p.pending).map((p) => p.key));
  const manifestWith = (partitions: TickPartition[], done: boolean): TickManifest => ({ pair, kind: "ticks", partitions, ...importRecord(manifest, meta, done) });
  const written: TickPartitionInfo[] = [];
  const candles: Candle[] = [];
  for (const { month, from, to } of monthRanges(ticks)) {
    const key = tickKey(pair, month);
    const imported: TickColumns = { length: to - from, t: ticks.t.subarray(from, to), bid: ticks.bid.subarray(from, to), ask: ticks.ask.subarray(from, to) };
    const storedBytes = await getBytes(bucket, key);
    const { ticks: merged, replaced } = storedBytes ? mergeTicks(tickColumnsFromArrowIPC(storedBytes), imported) : { ticks: imported, replaced: 0 };
    const bytes = tickColumnsToArrowIPC(merged);
    const info: TickPartitionInfo = { ...tickEntry(key, month, merged), bytes: bytes.byteLength, imported: imported.length, replaced };
    await putTickManifest(bucket, manifestWith(mergePartitions(existing, [...written.map(entryOf), { ...entryOf(info), pending: true }], (p) => p.month), false));
    await bucket.put(key, bytes, ARROW);
    written.push(info);
    log(`import: wrote ${key} (${info.rows} ticks: ${info.imported} imported, ${replaced} stored replaced; ${info.crossed} crossed; ${info.bytes} bytes)`);
    const touched = new Set<number>();
    for (let i = 0; i < imported.length; i++) touched.add(Math.floor((imported.t[i] as number) / 60_000) * 60_000);
    for (const c of aggregateMinutes(merged)) if (touched.has(c.t)) candles.push(c);
  }
  // Repair: months in the bucket that the manifest lost or left pending (a stopped run).
  const repaired: TickPartition[] = [];
  const writtenKeys = new Set(written.map((p) => p.key));
  const prefix = `ticks/${pair}/`;
  for (const key of await listKeys(bucket, prefix)) {
    const m = /^(\d{4}-\d{2})\.arrow$/.exec(key.slice(prefix.length));
    if (!m || known.has(key) || writtenKeys.has(key)) continue;
    const stored = tickColumnsFromArrowIPC((await getBytes(bucket, key)) as Uint8Array);
    if (stored.length === 0) continue;
    repaired.push(tickEntry(key, m[1] as string, stored));
    log(`import: ${key} was missing from the manifest or left pending; settled from the bucket (${stored.length} ticks)`);
  }
  const settled = existing.filter((p) => known.has(p.key));
  await putTickManifest(bucket, manifestWith(mergePartitions([...settled, ...repaired], written.map(entryOf), (p) => p.month), true));
  return { partitions: written, candles };
}

// ---------------------------------------------------------------- import

/** Import one file; see the module comment. Throws UsageError for a bad pair, zone or input format. */
export async function importFile(options: ImportOptions): Promise<ImportSummary> {
  const started = performance.now();
  const log = options.log ?? ((m: string) => process.stderr.write(`${m}\n`));
  const instrument = checkPair(options.pair);
  const pair = instrument.symbol;
  const tz = options.tz ?? "EST";
  const zone = checkZone(tz);
  const source = path.basename(options.file);
  const meta = { source, tz: zone.name };
  if (!existsSync(options.file)) throw new UsageError(`no such file ${options.file}`);
  let format: HistoryFormat;
  try {
    format = await detectFileFormat(options.file);
  } catch (err) {
    if (err instanceof ZipError) throw new UsageError(err.message);
    throw err;
  }

  const lake: OpenedBucket = options.bucket
    ? { bucket: options.bucket, where: "the given bucket", dispose: async () => {} }
    : await openDataBucket({ ...(options.stateDir ? { stateDir: options.stateDir } : {}), ...(options.configPath ? { configPath: options.configPath } : {}), remote: options.remote ?? false, log });
  try {
    log(`import: reading ${options.file} (${format}, ${pair}, clock ${zone.name})`);
    let read: ReadCounts & { candles?: Candle[]; ticks?: TickColumns; sameTimestamp?: number; crossed?: number };
    if (isBarFormat(format)) read = await readBars(options.file, instrument, zone, format, log);
    else if (isQuoteFormat(format)) read = await readTicks(options.file, instrument, zone, format, log);
    else throw new UsageError(`${source}: format ${format} cannot be imported`);
    const kind = isBarFormat(format) ? "m1" : "ticks";
    log(
      `import: ${read.rows} ${kind === "m1" ? "bars" : "ticks"}, ${read.bad} bad, ${read.duplicates} duplicates, ${read.nonMonotonic} non-monotonic` +
        (kind === "ticks" ? `, ${read.sameTimestamp} sharing a millisecond, ${read.crossed} crossed (kept)` : ""),
    );
    let partitions: PartitionInfo[] = [];
    let tickPartitions: TickPartitionInfo[] = [];
    let candleCount = 0;
    if (read.rows > 0) {
      let candles: readonly Candle[];
      if (read.ticks) {
        const t = await writeTicks(lake.bucket, pair, read.ticks, meta, log);
        tickPartitions = t.partitions;
        candles = t.candles;
      } else candles = read.candles ?? [];
      candleCount = candles.length;
      partitions = await writeCandles(lake.bucket, pair, candles, format === "histdata_m1" ? "bid" : "bidask", meta, log);
      log(`import: manifests updated in ${lake.where}`);
    } else log("import: no valid rows, nothing written");
    const { candles: _c, ticks: _t, sameTimestamp = 0, crossed = 0, ...counts } = read;
    return {
      pair,
      kind,
      format,
      source,
      tz: zone.name,
      target: options.remote && !options.bucket ? "remote" : "local",
      ...counts,
      sameTimestamp,
      crossed,
      candles: candleCount,
      replaced: partitions.reduce((s, p) => s + p.replaced, 0),
      partitions,
      manifestKey: candleManifestKey(pair),
      tickPartitions,
      tickReplaced: tickPartitions.reduce((s, p) => s + p.replaced, 0),
      ...(kind === "ticks" ? { tickManifestKey: tickManifestKey(pair) } : {}),
      ms: Math.round(performance.now() - started),
    };
  } finally {
    await lake.dispose();
  }
}

async function main(): Promise<void> {
  let args: ImportArgs;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`import: ${err.message}\n${USAGE}`);
      process.exit(2);
    }
    throw err;
  }
  // wrangler prints notes ("Using secrets defined in process.env") with console.log:
  // keep stdout for the JSON summary alone.
  console.log = console.error;
  try {
    const summary = await importFile(args);
    process.stdout.write(`${JSON.stringify(summary)}\n`);
  } catch (err) {
    if (err instanceof UsageError || err instanceof ZipError) {
      process.stderr.write(`import: ${err.message}\n`);
      process.exit(2);
    }
    if (err instanceof RemoteError) {
      process.stderr.write(`import: ${err.message}\n`);
      process.exit(1);
    }
    process.stderr.write(`import: failed: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  void main();
}
