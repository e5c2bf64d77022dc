/**
 * Archives a pair's closed 1-minute candles into the R2 data lake, so the
 * count cap can prune them from SQLite and live history becomes backtest data.
 *
 * Layout (src/ingest/lake-manifest.ts): one Arrow object per UTC month,
 * `candles/<PAIR>/1m/live/<YYYY>-<MM>.arrow`, listed in the manifest's `live`
 * array. A month object holds at most 44,640 bars (about 2 MB), so rewriting
 * it every hour is cheap; the imported yearly objects (16 MB) are never
 * touched from here.
 *
 * Crash safety and idempotence: candles after the watermark (the newest bar
 * already archived, kept in the actor's SQLite) are merged into their month's
 * object by time (a bar already there is replaced by the same bar), then the
 * manifest is written, and only then does the watermark move. The count cap
 * deletes 1m candles up to the watermark only (PairStore.pruneCandles). A
 * crash or an R2 error anywhere before the watermark moves leaves every
 * candle in SQLite, and the next run writes the same bars again.
 *
 * The manifest is written with a condition on the etag read (or on its
 * absence): an import that changed it in between makes this run fail and
 * retry next time instead of overwriting the import's entries.
 */
import type { Candle } from "../src/domain/candle.ts";
import { candlesFromArrowIPC, candlesToArrowIPC } from "../src/ingest/candle-arrow.ts";
import { candleManifestKey, liveCandleKey, mergePartitions, readCandleManifest, utcMonth, type CandleManifest, type LivePartition } from "../src/ingest/lake-manifest.ts";
import type { PairStore } from "./pair-store.ts";

/** Bars one run archives at most (about five weeks of a 24/5 market); the rest waits for the next run. */
export const ARCHIVE_MAX_ROWS_PER_RUN = 50_000;

/** The R2 calls the archive makes (R2Bucket in the actor; tests may wrap it to inject failures). */
export type ArchiveBucket = Pick<R2Bucket, "get" | "put">;

export interface ArchiveRun {
  /** Bars written this run. */
  rows: number;
  /** Months whose objects were written. */
  months: string[];
  /** The watermark after the run: start of the newest archived bar, -1 when none yet. */
  throughT: number;
  /** False when the row bound stopped the run with bars left to archive. */
  complete: boolean;
}

export class ArchiveConflictError extends Error {}

/** Archive up to `maxRows` closed 1m candles after the watermark. Throws on any R2 failure (nothing is deleted then). */
export async function archiveClosedCandles(store: PairStore, bucket: ArchiveBucket, pair: string, nowMs: number, maxRows = ARCHIVE_MAX_ROWS_PER_RUN): Promise<ArchiveRun> {
  const watermark = store.archivedThroughT();
  const bars = store.candlesAfter("1m", watermark, maxRows);
  if (bars.length === 0) return { rows: 0, months: [], throughT: watermark, complete: true };

  const manifestKey = candleManifestKey(pair);
  const stored = await bucket.get(manifestKey);
  const manifest: CandleManifest = stored
    ? readCandleManifest(await stored.text(), manifestKey)
    : // The first archive of a pair with nothing imported: an empty manifest with the live months only.
      { pair, timeframe: "1m", partitions: [], sources: [], source: "", tz: "UTC", importedAt: new Date(nowMs).toISOString() };

  const written: LivePartition[] = [];
  for (const [month, monthBars] of byUtcMonth(bars)) {
    const key = liveCandleKey(pair, month);
    const existing = await bucket.get(key);
    const merged = mergeByTime(existing ? candlesFromArrowIPC(new Uint8Array(await existing.arrayBuffer())) : [], monthBars);
    await bucket.put(key, candlesToArrowIPC(merged), { httpMetadata: { contentType: "application/vnd.apache.arrow.file" } });
    written.push({ key, month, rows: merged.length, fromMs: (merged[0] as Candle).t, toMs: (merged[merged.length - 1] as Candle).t });
  }

  const next: CandleManifest = { ...manifest, live: mergePartitions(manifest.live ?? [], written, (p) => p.month) };
  readCandleManifest(next, "new candle manifest"); // never write one a reader would refuse
  const put = await bucket.put(manifestKey, JSON.stringify(next, null, 2), {
    httpMetadata: { contentType: "application/json" },
    onlyIf: stored ? { etagMatches: stored.etag } : { etagDoesNotMatch: "*" },
  });
  if (put === null) throw new ArchiveConflictError(`${manifestKey} changed while archiving (an import?): retried next run`);

  const throughT = (bars[bars.length - 1] as Candle).t;
  store.setArchivedThroughT(throughT);
  return { rows: bars.length, months: written.map((p) => p.month), throughT, complete: bars.length < maxRows };
}

/** Sorted bars grouped by UTC month, in order. */
function byUtcMonth(bars: readonly Candle[]): Map<string, Candle[]> {
  const out = new Map<string, Candle[]>();
  for (const bar of bars) {
    const month = utcMonth(bar.t);
    let list = out.get(month);
    if (!list) out.set(month, (list = []));
    list.push(bar);
  }
  return out;
}

/** Both inputs sorted by t; a bar of `newer` replaces the stored one of the same minute. */
function mergeByTime(stored: readonly Candle[], newer: readonly Candle[]): Candle[] {
  const byT = new Map<number, Candle>();
  for (const c of stored) byT.set(c.t, c);
  for (const c of newer) byT.set(c.t, c);
  return [...byT.values()].sort((a, b) => a.t - b.t);
}
