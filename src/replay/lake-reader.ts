/**
 * Streams 1-minute candles of one pair out of the R2 data lake, partition by
 * partition and record batch by record batch, so memory holds one partition's
 * bytes (about 16 MB a year) whatever the range. Pure apart from the bucket:
 * the Node CLI passes wrangler's platform-proxy R2, the Worker its DATA binding.
 */
import type { Candle } from "../domain/candle.ts";
import { candleBatches, type CandleColumns } from "../ingest/candle-arrow.ts";
import {
  candleManifestKey,
  readCandleManifest,
  readTickManifest,
  tickManifestKey,
  type CandleManifest,
  type CandlePartition,
  type TickManifest,
} from "../ingest/lake-manifest.ts";
import { tickBatches, type TickColumns } from "../ingest/tick-arrow.ts";

/** The slice of an R2 bucket the reader needs (R2Bucket in a Worker, the platform proxy's in Node). */
export interface LakeBucket {
  get(key: string): Promise<{ arrayBuffer(): Promise<ArrayBuffer> } | null>;
}

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
export function lakeBatches(
  bucket: LakeBucket,
  manifest: CandleManifest,
  fromMs: number,
  toMs: number,
): AsyncGenerator<{ cols: CandleColumns; start: number; end: number; rowsBefore: number }> {
  return batchesOf(bucket, manifest, fromMs, toMs, candleBatches);
}

/** The same for a pair's tick partitions. */
export function lakeTickBatches(
  bucket: LakeBucket,
  manifest: TickManifest,
  fromMs: number,
  toMs: number,
): AsyncGenerator<{ cols: TickColumns; start: number; end: number; rowsBefore: number }> {
  return batchesOf(bucket, manifest, fromMs, toMs, tickBatches);
}

async function* batchesOf<C extends { length: number; t: Float64Array }>(
  bucket: LakeBucket,
  manifest: { partitions: (CandlePartition | TickManifest["partitions"][number])[] },
  fromMs: number,
  toMs: number,
  decode: (bytes: Uint8Array) => Iterable<C>,
): AsyncGenerator<{ cols: C; start: number; end: number; rowsBefore: number }> {
  let rowsBefore = 0;
  for (const part of partitionsInRange(manifest, fromMs, toMs)) {
    const object = await bucket.get(part.key);
    if (object === null) throw new LakeDataError("missing_partition", `${part.key} is in the manifest but not in the bucket`);
    const bytes = new Uint8Array(await object.arrayBuffer());
    for (const cols of decode(bytes)) {
      const start = lowerBound(cols.t, fromMs);
      const end = lowerBound(cols.t, toMs);
      yield { cols, start, end, rowsBefore };
      rowsBefore += cols.length;
    }
  }
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
