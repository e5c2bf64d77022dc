/**
 * Streams 1-minute candles of one pair out of the R2 data lake, partition by
 * partition and record batch by record batch, each batch read by byte range
 * (ranged-arrow.ts), so memory holds about one batch (2.9 MB) per pair
 * whatever the range. Live months archived by the pair actors (manifest
 * `live`) are read in time order with the imported years; where both hold a
 * minute, the imported bar wins (lake-manifest.ts). Pure apart from the
 * bucket: the Node CLI passes wrangler's platform-proxy R2, the Worker its
 * DATA binding.
 */
import type { Candle } from "../domain/candle.ts";
import type { RecordBatch } from "apache-arrow";
import { BATCH_ROWS, CANDLE_INT_COLUMNS, candleBatches, candleColumnsOf, type CandleColumns } from "../ingest/candle-arrow.ts";
import {
  candleManifestKey,
  readCandleManifest,
  readTickManifest,
  tickManifestKey,
  type CandleManifest,
  type TickManifest,
} from "../ingest/lake-manifest.ts";
import { tickColumnsOf, type TickColumns } from "../ingest/tick-arrow.ts";
import { rangedRecordBatches, type RangedBucket } from "./ranged-arrow.ts";

/** The slice of an R2 bucket the reader needs (R2Bucket in a Worker, the platform proxy's in Node): whole objects and byte ranges. */
export type LakeBucket = RangedBucket;

export class LakeDataError extends Error {
  constructor(
    readonly code: "no_data" | "bad_manifest" | "missing_partition",
    message: string,
  ) {
    super(message);
  }
}

/** A manifest from the bucket, validated by `read`; a missing one is `no_data`, an invalid one `bad_manifest`. */
async function loadManifest<M>(bucket: LakeBucket, key: string, read: (json: string, what: string) => M, missing: string, importHint: string): Promise<M> {
  const object = await bucket.get(key);
  if (object === null) throw new LakeDataError("no_data", `${missing} in the data lake (${key} missing): import ${importHint} first (npm run import)`);
  try {
    return read(new TextDecoder().decode(await object.arrayBuffer()), key);
  } catch (err) {
    throw new LakeDataError("bad_manifest", (err as Error).message);
  }
}

export function loadCandleManifest(bucket: LakeBucket, pair: string): Promise<CandleManifest> {
  return loadManifest(bucket, candleManifestKey(pair), readCandleManifest, `no candles for ${pair}`, "some");
}

export function loadTickManifest(bucket: LakeBucket, pair: string): Promise<TickManifest> {
  return loadManifest(bucket, tickManifestKey(pair), readTickManifest, `no ticks for ${pair}`, "a tick file");
}

/** Partitions whose rows overlap [fromMs, toMs). */
export function partitionsInRange<P extends { rows: number; fromMs: number; toMs: number }>(manifest: { partitions: P[] }, fromMs: number, toMs: number): P[] {
  return manifest.partitions.filter((p) => p.rows > 0 && p.toMs >= fromMs && p.fromMs < toMs);
}

export interface LakeProgress {
  /** Rows decoded so far / rows in the selected partitions (including rows outside the range). */
  rowsRead: number;
  rowsTotal: number;
  /** Time of the latest bar read, epoch ms. */
  atMs: number;
}

/**
 * Each record batch of the selected partitions as typed columns, with the
 * index range [start, end) of its rows inside [fromMs, toMs). Batches are
 * views on the partition's bytes; a partition is released once its batches
 * are consumed.
 */
export async function* lakeBatches(
  bucket: LakeBucket,
  manifest: CandleManifest,
  fromMs: number,
  toMs: number,
): AsyncGenerator<{ cols: CandleColumns; start: number; end: number; rowsBefore: number }> {
  let rowsBefore = 0;
  for (const group of candleGroupsInRange(manifest, fromMs, toMs)) {
    const groupRows = group.reduce((n, p) => n + p.rows, 0);
    if (group.length === 1) {
      // The common case (no live month overlapping an imported year): the partition's own batches, no copy.
      for await (const b of batchesOf(bucket, { partitions: group }, fromMs, toMs, candleColumnsOf)) yield { ...b, rowsBefore: rowsBefore + b.rowsBefore };
    } else {
      const merged = await mergedGroup(bucket, group);
      let read = 0;
      for (let from = 0; from < merged.length; from += BATCH_ROWS) {
        const cols = sliceColumns(merged, from, Math.min(merged.length, from + BATCH_ROWS));
        yield { cols, start: lowerBound(cols.t, fromMs), end: lowerBound(cols.t, toMs), rowsBefore: rowsBefore + read };
        read += cols.length;
      }
    }
    // Progress counts every stored row of the group, so a group ends exactly at its share of rowsTotal.
    rowsBefore += groupRows;
  }
}

/** Candle rows a replay of [fromMs, toMs) will go through (imported and live, overlaps counted twice). */
export function candleRowsInRange(manifest: CandleManifest, fromMs: number, toMs: number): number {
  return candleGroupsInRange(manifest, fromMs, toMs).flat().reduce((n, p) => n + p.rows, 0);
}

/** A partition to read, imported (yearly) or live (monthly); `imported` wins at an equal minute. */
type CandleSource = { key: string; rows: number; fromMs: number; toMs: number; imported: boolean; pending?: true | undefined };

/**
 * The candle partitions overlapping [fromMs, toMs), yearly and live, in time
 * order, grouped so that partitions whose time spans overlap share a group.
 * Yearly partitions never overlap each other, nor do live months, so a group
 * is one partition or one imported year with the live months inside its span.
 */
export function candleGroupsInRange(manifest: CandleManifest, fromMs: number, toMs: number): CandleSource[][] {
  const sources: CandleSource[] = [
    ...partitionsInRange(manifest, fromMs, toMs).map((p) => ({ key: p.key, rows: p.rows, fromMs: p.fromMs, toMs: p.toMs, imported: true, pending: p.pending })),
    ...partitionsInRange({ partitions: manifest.live ?? [] }, fromMs, toMs).map((p) => ({ key: p.key, rows: p.rows, fromMs: p.fromMs, toMs: p.toMs, imported: false })),
  ].sort((a, b) => a.fromMs - b.fromMs);
  const groups: CandleSource[][] = [];
  let end = Number.NEGATIVE_INFINITY;
  for (const s of sources) {
    const last = groups[groups.length - 1];
    if (last && s.fromMs <= end) last.push(s);
    else groups.push([s]);
    end = Math.max(end, s.toMs);
  }
  return groups;
}

/**
 * One group's rows merged by time: every minute once, the imported bar where
 * both have it. Holds the group's columns twice (an imported year is about
 * 16 MB): only a year that live months overlap is read this way.
 */
async function mergedGroup(bucket: LakeBucket, group: readonly CandleSource[]): Promise<CandleColumns> {
  const read = async (parts: readonly CandleSource[]): Promise<CandleColumns> => {
    const all: CandleColumns[] = [];
    for (const part of parts) {
      const object = await bucket.get(part.key);
      if (object === null) {
        if (part.pending) continue;
        throw missingPartition(part.key);
      }
      all.push(...candleBatches(new Uint8Array(await object.arrayBuffer())));
    }
    return concatColumns(all);
  };
  const imported = await read(group.filter((p) => p.imported));
  const live = await read(group.filter((p) => !p.imported));
  const out = allocColumns(imported.length + live.length);
  let i = 0;
  let j = 0;
  let n = 0;
  while (i < imported.length || j < live.length) {
    const ti = i < imported.length ? (imported.t[i] as number) : Number.POSITIVE_INFINITY;
    const tj = j < live.length ? (live.t[j] as number) : Number.POSITIVE_INFINITY;
    if (ti <= tj) {
      copyRow(imported, i++, out, n++);
      if (ti === tj) j++; // the live bar of the same minute is superseded
    } else copyRow(live, j++, out, n++);
  }
  return sliceColumns(out, 0, n);
}

function allocColumns(length: number): CandleColumns {
  const ints = Object.fromEntries(CANDLE_INT_COLUMNS.map((k) => [k, new Int32Array(length)])) as Omit<CandleColumns, "length" | "t">;
  return { length, t: new Float64Array(length), ...ints };
}

function copyRow(from: CandleColumns, i: number, to: CandleColumns, n: number): void {
  to.t[n] = from.t[i] as number;
  for (const k of CANDLE_INT_COLUMNS) to[k][n] = from[k][i] as number;
}

function concatColumns(parts: readonly CandleColumns[]): CandleColumns {
  const out = allocColumns(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.t.set(p.t.subarray(0, p.length), at);
    for (const k of CANDLE_INT_COLUMNS) out[k].set(p[k].subarray(0, p.length), at);
    at += p.length;
  }
  return out;
}

/** Rows [from, to) as views, no copy. */
function sliceColumns(cols: CandleColumns, from: number, to: number): CandleColumns {
  const ints = Object.fromEntries(CANDLE_INT_COLUMNS.map((k) => [k, cols[k].subarray(from, to)])) as Omit<CandleColumns, "length" | "t">;
  return { length: to - from, t: cols.t.subarray(from, to), ...ints };
}

/** The same for a pair's tick partitions. */
export function lakeTickBatches(
  bucket: LakeBucket,
  manifest: TickManifest,
  fromMs: number,
  toMs: number,
): AsyncGenerator<{ cols: TickColumns; start: number; end: number; rowsBefore: number }> {
  return batchesOf(bucket, manifest, fromMs, toMs, tickColumnsOf);
}

async function* batchesOf<C extends { length: number; t: Float64Array }>(
  bucket: LakeBucket,
  manifest: { partitions: { key: string; rows: number; fromMs: number; toMs: number; pending?: true | undefined }[] },
  fromMs: number,
  toMs: number,
  columnsOf: (batch: RecordBatch) => C,
): AsyncGenerator<{ cols: C; start: number; end: number; rowsBefore: number }> {
  let rowsBefore = 0;
  for (const part of partitionsInRange(manifest, fromMs, toMs)) {
    const batches = await rangedRecordBatches(bucket, part.key);
    if (batches === null) {
      if (part.pending) continue;
      throw missingPartition(part.key);
    }
    for await (const batch of batches) {
      const cols = columnsOf(batch);
      const start = lowerBound(cols.t, fromMs);
      const end = lowerBound(cols.t, toMs);
      yield { cols, start, end, rowsBefore };
      rowsBefore += cols.length;
    }
  }
}

/**
 * A listed partition whose object is missing: data lost, unless the entry is
 * `pending` (an import stopped before writing a new partition: nothing lost,
 * skipped; lake-manifest.ts).
 */
function missingPartition(key: string): LakeDataError {
  return new LakeDataError("missing_partition", `${key} is in the manifest but not in the bucket`);
}

/** First index with t[i] >= x (t sorted ascending). */
function lowerBound(t: Float64Array, x: number): number {
  let lo = 0;
  let hi = t.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((t[mid] as number) < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Fill `bar` in place with row i (one object reused for every row: consumers must not keep it). */
export function readRow(cols: CandleColumns, i: number, bar: Candle): Candle {
  bar.t = cols.t[i] as number;
  bar.bo = cols.bo[i] as number;
  bar.bh = cols.bh[i] as number;
  bar.bl = cols.bl[i] as number;
  bar.bc = cols.bc[i] as number;
  bar.ao = cols.ao[i] as number;
  bar.ah = cols.ah[i] as number;
  bar.al = cols.al[i] as number;
  bar.ac = cols.ac[i] as number;
  bar.n = cols.n[i] as number;
  return bar;
}

/**
 * Fill `bar` in place with tick i as a one-point bar (bid OHLC = bid, ask OHLC
 * = ask). False for a crossed quote (bid > ask), which the live tick rules
 * refuse: a tick backtest skips it too.
 */
export function readTickRow(cols: TickColumns, i: number, bar: Candle): boolean {
  const bid = cols.bid[i] as number;
  const ask = cols.ask[i] as number;
  bar.t = cols.t[i] as number;
  bar.bo = bar.bh = bar.bl = bar.bc = bid;
  bar.ao = bar.ah = bar.al = bar.ac = ask;
  bar.n = 1;
  return bid <= ask;
}

export function emptyBar(): Candle {
  return { t: 0, bo: 0, bh: 0, bl: 0, bc: 0, ao: 0, ah: 0, al: 0, ac: 0, n: 0 };
}
