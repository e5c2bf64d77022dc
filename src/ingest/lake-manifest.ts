/**
 * The data lake's object keys and manifests. Pure (no Node imports): the Node
 * importer writes manifests with it and a Worker reads them with it.
 *
 * Layout in the R2 bucket bound as DATA:
 * - `candles/<PAIR>/1m/<YYYY>.arrow`: 1-minute bid/ask candles of one UTC year
 *   (src/ingest/candle-arrow.ts), `candles/<PAIR>/manifest.json` (CandleManifest);
 * - `ticks/<PAIR>/<YYYY>-<MM>.arrow`: quotes of one UTC month
 *   (src/ingest/tick-arrow.ts), `ticks/<PAIR>/manifest.json` (TickManifest).
 *
 * Example candle manifest:
 * ```json
 * {
 *   "pair": "EUR_USD",
 *   "timeframe": "1m",
 *   "partitions": [
 *     { "key": "candles/EUR_USD/1m/2014.arrow", "year": 2014, "rows": 15366,
 *       "fromMs": 1398902400000, "toMs": 1400198340000, "sides": "bidask" },
 *     { "key": "candles/EUR_USD/1m/2018.arrow", "year": 2018, "rows": 372607,
 *       "fromMs": 1514844000000, "toMs": 1546293540000, "sides": "bid" }
 *   ],
 *   "sources": ["lean_oanda_EURUSD_ticks_20140501-20140515.csv.gz", "DAT_ASCII_EURUSD_M1_2018.csv.gz"],
 *   "source": "DAT_ASCII_EURUSD_M1_2018.csv.gz",
 *   "tz": "EST",
 *   "importedAt": "2026-05-01T12:00:00.000Z"
 * }
 * ```
 * `source` and `tz` are those of the latest import (`source` is kept for
 * readers of the first manifest version, which had no `sources`).
 *
 * Live history: each pair actor archives its closed 1-minute candles into
 * `candles/<PAIR>/1m/live/<YYYY>-<MM>.arrow` (one object per UTC month, same
 * columns), listed in the manifest's optional `live` array (LivePartition,
 * sorted by month). A month object is a few MB at most, so the actor can
 * rewrite it every hour; it never touches the imported yearly objects.
 * Precedence: where an imported yearly partition and a live month hold the
 * same minute, the imported bar is the one read (an import is an operator's
 * deliberate act, and it already replaces stored rows); minutes only one of
 * them holds are read from it, so nothing is dropped or read twice (the
 * reader merges them, src/replay/lake-reader.ts). Manifests without `live`
 * (every one written before it existed) read as having none, and a reader
 * that does not know `live` ignores it.
 *
 * Write-ahead: the importer puts each partition's new entry in the manifest,
 * marked `pending`, before it writes the partition's object, and clears the
 * mark once the object is written. A run stopped between the two writes thus
 * never leaves rows in the bucket that no manifest lists: a `pending` entry's
 * object holds either the entry's rows or the rows it held before (within the
 * entry's time span, which covers both), or is missing if it was new. Readers
 * read what the object holds and skip a missing one; the next import reads
 * such objects back from the bucket and settles their entries.
 */
import * as v from "valibot";

/**
 * Which sides a candle partition's rows carry: "bid" = bid-only bars (histdata
 * M1; ask copied from bid), "bidask" = every row from bid/ask data (ticks or
 * bid/ask bars), "mixed" = some rows of each (bid/ask rows merged over part of
 * a bid-only year or the reverse): treat the ask side as unreliable.
 */
export const CANDLE_SIDES = ["bid", "bidask", "mixed"] as const;
export type CandleSides = (typeof CANDLE_SIDES)[number];

const PAIR = /^[A-Z]{3}_[A-Z]{3}$/;
const MONTH = /^(\d{4})-(0[1-9]|1[0-2])$/;

function checkPair(pair: string): string {
  if (!PAIR.test(pair)) throw new RangeError(`pair must look like EUR_USD, got '${pair}'`);
  return pair;
}

export function candleManifestKey(pair: string): string {
  return `candles/${checkPair(pair)}/manifest.json`;
}

export function candleKey(pair: string, year: number): string {
  if (!Number.isInteger(year) || year < 1970 || year > 9999) throw new RangeError(`year must be an integer 1970..9999, got ${year}`);
  return `candles/${checkPair(pair)}/1m/${year}.arrow`;
}

/** `yyyymm` is a UTC month `YYYY-MM`: the live-archive object of that month. */
export function liveCandleKey(pair: string, yyyymm: string): string {
  if (!MONTH.test(yyyymm)) throw new RangeError(`month must be YYYY-MM, got '${yyyymm}'`);
  return `candles/${checkPair(pair)}/1m/live/${yyyymm}.arrow`;
}

export function tickManifestKey(pair: string): string {
  return `ticks/${checkPair(pair)}/manifest.json`;
}

/** `yyyymm` is a UTC month `YYYY-MM`, e.g. "2014-05" (see utcMonth). */
export function tickKey(pair: string, yyyymm: string): string {
  if (!MONTH.test(yyyymm)) throw new RangeError(`month must be YYYY-MM, got '${yyyymm}'`);
  return `ticks/${checkPair(pair)}/${yyyymm}.arrow`;
}

/** UTC year of an epoch-ms instant. */
export function utcYear(ms: number): number {
  return new Date(ms).getUTCFullYear();
}

/** UTC month `YYYY-MM` of an epoch-ms instant. */
export function utcMonth(ms: number): string {
  const d = new Date(ms);
  return `${String(d.getUTCFullYear()).padStart(4, "0")}-${String(d.getUTCMonth() + 1).padStart(2, "0")}`;
}

/** [start, end) of a UTC month `YYYY-MM` in epoch ms. */
export function monthRangeMs(yyyymm: string): { fromMs: number; toMs: number } {
  const m = MONTH.exec(yyyymm);
  if (!m) throw new RangeError(`month must be YYYY-MM, got '${yyyymm}'`);
  const year = Number(m[1]);
  const month0 = Number(m[2]) - 1;
  return { fromMs: Date.UTC(year, month0, 1), toMs: Date.UTC(year, month0 + 1, 1) };
}

const EpochMs = v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(253_402_300_799_999));
const Rows = v.pipe(v.number(), v.integer(), v.minValue(0));

function rangeOrdered<P extends { fromMs: number; toMs: number; rows: number }>(p: P): boolean {
  return p.rows === 0 || p.fromMs <= p.toMs;
}

export const CandlePartitionSchema = v.pipe(
  v.object({
    key: v.string(),
    year: v.pipe(v.number(), v.integer(), v.minValue(1970), v.maxValue(9999)),
    rows: Rows,
    fromMs: EpochMs,
    toMs: EpochMs,
    // Manifests of the first importer (histdata M1 only) had no `sides`: bid bars.
    sides: v.optional(v.picklist(CANDLE_SIDES), "bid"),
    pending: v.optional(v.literal(true)),
  }),
  v.check(rangeOrdered, "fromMs must not be after toMs"),
  v.check((p) => p.rows === 0 || (utcYear(p.fromMs) === p.year && utcYear(p.toMs) === p.year), "fromMs and toMs must lie in the partition's UTC year"),
);
export type CandlePartition = v.InferOutput<typeof CandlePartitionSchema>;

export const TickPartitionSchema = v.pipe(
  v.object({
    key: v.string(),
    month: v.pipe(v.string(), v.regex(MONTH, "month must be YYYY-MM")),
    rows: Rows,
    fromMs: EpochMs,
    toMs: EpochMs,
    /** Rows with bid > ask (real in some feeds, kept). */
    crossed: Rows,
    pending: v.optional(v.literal(true)),
  }),
  v.check(rangeOrdered, "fromMs must not be after toMs"),
  v.check((p) => p.rows === 0 || (utcMonth(p.fromMs) === p.month && utcMonth(p.toMs) === p.month), "fromMs and toMs must lie in the partition's UTC month"),
);
export type TickPartition = v.InferOutput<typeof TickPartitionSchema>;

/** A month of 1-minute candles archived by the live pair actor (always real bid/ask). */
export const LivePartitionSchema = v.pipe(
  v.object({
    key: v.string(),
    month: v.pipe(v.string(), v.regex(MONTH, "month must be YYYY-MM")),
    rows: Rows,
    fromMs: EpochMs,
    toMs: EpochMs,
  }),
  v.check(rangeOrdered, "fromMs must not be after toMs"),
  v.check((p) => p.rows === 0 || (utcMonth(p.fromMs) === p.month && utcMonth(p.toMs) === p.month), "fromMs and toMs must lie in the partition's UTC month"),
);
export type LivePartition = v.InferOutput<typeof LivePartitionSchema>;

const ManifestBase = {
  pair: v.pipe(v.string(), v.regex(PAIR, "pair must look like EUR_USD")),
  /** Latest imported file name. */
  source: v.string(),
  /** Every imported file name, first import first, without repeats. */
  sources: v.optional(v.array(v.string())),
  /** Clock of the latest import (`EST`, `UTC`, an offset or an IANA zone). */
  tz: v.string(),
  importedAt: v.pipe(v.string(), v.isoTimestamp()),
};

function sourcesDefault<T extends { source: string; sources?: string[] | undefined }>(m: T): Omit<T, "sources"> & { sources: string[] } {
  return { ...m, sources: m.sources ?? [m.source] };
}

function sortedUnique(partitions: readonly { key: string }[], order: (i: number) => number | string): boolean {
  for (let i = 1; i < partitions.length; i++) if (!(order(i - 1) < order(i))) return false;
  return true;
}

export const CandleManifestSchema = v.pipe(
  v.object({ ...ManifestBase, timeframe: v.literal("1m"), partitions: v.array(CandlePartitionSchema), live: v.optional(v.array(LivePartitionSchema)) }),
  v.check((m) => m.partitions.every((p) => p.key === candleKey(m.pair, p.year)), "partition keys must be candles/<PAIR>/1m/<YEAR>.arrow"),
  v.check((m) => sortedUnique(m.partitions, (i) => m.partitions[i]?.year ?? 0), "partitions must be sorted by year, one per year"),
  v.check((m) => (m.live ?? []).every((p) => p.key === liveCandleKey(m.pair, p.month)), "live partition keys must be candles/<PAIR>/1m/live/<YYYY>-<MM>.arrow"),
  v.check((m) => sortedUnique(m.live ?? [], (i) => m.live?.[i]?.month ?? ""), "live partitions must be sorted by month, one per month"),
  v.transform(sourcesDefault),
);
export type CandleManifest = v.InferOutput<typeof CandleManifestSchema>;

export const TickManifestSchema = v.pipe(
  v.object({ ...ManifestBase, kind: v.literal("ticks"), partitions: v.array(TickPartitionSchema) }),
  v.check((m) => m.partitions.every((p) => p.key === tickKey(m.pair, p.month)), "partition keys must be ticks/<PAIR>/<YYYY>-<MM>.arrow"),
  v.check((m) => sortedUnique(m.partitions, (i) => m.partitions[i]?.month ?? ""), "partitions must be sorted by month, one per month"),
  v.transform(sourcesDefault),
);
export type TickManifest = v.InferOutput<typeof TickManifestSchema>;

export class ManifestError extends Error {}

function parseWith<T>(schema: v.GenericSchema<unknown, T>, json: string | unknown, what: string): T {
  let data: unknown = json;
  if (typeof json === "string") {
    try {
      data = JSON.parse(json);
    } catch (err) {
      throw new ManifestError(`${what}: not JSON (${(err as Error).message})`);
    }
  }
  const r = v.safeParse(schema, data);
  if (!r.success) {
    const issues = r.issues.slice(0, 5).map((i) => `${i.path?.map((p) => String(p.key)).join(".") || "(root)"}: ${i.message}`);
    throw new ManifestError(`${what}: invalid manifest: ${issues.join("; ")}`);
  }
  return r.output;
}

/** Validate a candle manifest (JSON text or parsed value); old manifests get `sides: "bid"` and `sources: [source]`. Throws ManifestError. */
export function readCandleManifest(json: string | unknown, what = "candle manifest"): CandleManifest {
  return parseWith(CandleManifestSchema, json, what);
}

/** Validate a tick manifest (JSON text or parsed value). Throws ManifestError. */
export function readTickManifest(json: string | unknown, what = "tick manifest"): TickManifest {
  return parseWith(TickManifestSchema, json, what);
}

/** Alias of readCandleManifest (the candle manifest is the one backtests read). */
export const readManifest = readCandleManifest;

/**
 * Partitions of an existing manifest with updated ones: an updated partition
 * replaces the existing entry with the same key, new ones are added, and the
 * result is sorted by `order` (year or month). Pure; inputs are not changed.
 */
export function mergePartitions<P extends { key: string }>(existing: readonly P[], updated: readonly P[], order: (p: P) => number | string): P[] {
  const byKey = new Map<string, P>();
  for (const p of existing) byKey.set(p.key, p);
  for (const p of updated) byKey.set(p.key, p);
  return [...byKey.values()].sort((a, b) => {
    const x = order(a);
    const y = order(b);
    return x < y ? -1 : x > y ? 1 : 0;
  });
}

/** Source file names: existing first, the new one appended unless already there. */
export function mergeSources(existing: readonly string[], source: string): string[] {
  return existing.includes(source) ? [...existing] : [...existing, source];
}

/**
 * Sides of a partition after merging `imported` rows of `importedSides` over
 * an existing partition: `survivingRows` existing rows were kept (not
 * replaced), with `existingSides`.
 */
export function mergeSides(existingSides: CandleSides | undefined, survivingRows: number, importedSides: CandleSides, importedRows: number): CandleSides {
  if (existingSides === undefined || survivingRows === 0) return importedSides;
  if (importedRows === 0) return existingSides;
  return existingSides === importedSides ? importedSides : "mixed";
}
