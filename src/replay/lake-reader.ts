/**
 * Streams 1-minute candles of one pair out of the R2 data lake, partition by
 * partition and record batch by record batch, so memory holds one partition's
 * bytes (about 16 MB a year) whatever the range. Pure apart from the bucket:
 * the Node CLI passes wrangler's platform-proxy R2, the Worker its DATA binding.
 */
import type { Candle } from "../domain/candle.ts";
import { candleBatches, type CandleColumns } from "../ingest/candle-arrow.ts";
import { candleManifestKey, readCandleManifest, type CandleManifest, type CandlePartition } from "../ingest/lake-manifest.ts";

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

export async function loadCandleManifest(bucket: LakeBucket, pair: string): Promise<CandleManifest> {
  const key = candleManifestKey(pair);
  const object = await bucket.get(key);
  if (object === null) throw new LakeDataError("no_data", `no candles for ${pair} in the data lake (${key} missing): import some first (npm run import)`);
  try {
    return readCandleManifest(new TextDecoder().decode(await object.arrayBuffer()), key);
  } catch (err) {
    throw new LakeDataError("bad_manifest", (err as Error).message);
  }
}

/** Partitions whose rows overlap [fromMs, toMs). */
export function partitionsInRange(manifest: CandleManifest, fromMs: number, toMs: number): CandlePartition[] {
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
  for (const part of partitionsInRange(manifest, fromMs, toMs)) {
    const object = await bucket.get(part.key);
    if (object === null) throw new LakeDataError("missing_partition", `${part.key} is in the manifest but not in the bucket`);
    const bytes = new Uint8Array(await object.arrayBuffer());
    for (const cols of candleBatches(bytes)) {
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

export function emptyBar(): Candle {
  return { t: 0, bo: 0, bh: 0, bl: 0, bc: 0, ao: 0, ah: 0, al: 0, ac: 0, n: 0 };
}
