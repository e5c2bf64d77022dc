/**
 * Import a histdata.com ASCII M1 file (.csv or .csv.gz, bid bars) into the
 * data lake: `candles/<PAIR>/1m/<YEAR>.arrow` (Arrow IPC, see
 * src/ingest/candle-arrow.ts), one object per UTC year, plus
 * `candles/<PAIR>/manifest.json`, in the R2 bucket bound as DATA.
 *
 *   npm run import -- <file> --pair EUR_USD [--tz EST]
 *
 * Local R2 is reached through wrangler's platform proxy on the same state
 * folder `npm start` uses: STATE_DIR (default .wrangler/state), whose `v3`
 * sub-folder is the proxy's persist path (Miniflare's defaultPersistRoot in
 * scripts/runtime.ts). Progress goes to stderr, one JSON summary to stdout.
 * Exit codes: 0 ok, 1 failure, 2 bad arguments.
 */
import path from "node:path";
import { pathToFileURL } from "node:url";
import type { Candle } from "../src/domain/candle.ts";
import { getInstrument, type Instrument } from "../src/domain/instruments.ts";
import { toPoints } from "../src/domain/price.ts";
import { candlesToArrowIPC } from "../src/ingest/candle-arrow.ts";
import { isHeaderLine, parseHistdataM1, type RowErrorKind } from "../src/ingest/history-formats.ts";
import { readLines } from "../src/ingest/read-lines.ts";
import { parseZone, type Zone } from "../src/ingest/time-zone.ts";

const ROOT = path.resolve(import.meta.dirname, "..");

export class UsageError extends Error {}

export interface ImportOptions {
  file: string;
  /** Instrument symbol, e.g. EUR_USD. */
  pair: string;
  /** Zone of the file's clock (default "EST", fixed UTC-05:00). */
  tz?: string;
  /** Local state folder (default $STATE_DIR or .wrangler/state); R2 lives under `<stateDir>/v3`. */
  stateDir?: string;
  /** wrangler config (default wrangler.jsonc at the project root). */
  configPath?: string;
  /** Progress lines (default: stderr). */
  log?: (message: string) => void;
}

export interface PartitionInfo {
  key: string;
  year: number;
  rows: number;
  fromMs: number;
  toMs: number;
  bytes: number;
}

export interface Manifest {
  pair: string;
  timeframe: "1m";
  partitions: Omit<PartitionInfo, "bytes">[];
  source: string;
  tz: string;
  importedAt: string;
}

export interface ImportSummary {
  pair: string;
  /** Rows written (valid, deduplicated). */
  rows: number;
  /** Rows skipped as invalid. */
  bad: number;
  badByKind: Partial<Record<RowErrorKind | "bad_price", number>>;
  /** First few bad rows, `line: reason`. */
  badSamples: string[];
  /** Rows dropped because an earlier row had the same timestamp. */
  duplicates: number;
  /** Rows whose timestamp is earlier than the previous row's (file order). */
  nonMonotonic: number;
  partitions: PartitionInfo[];
  manifestKey: string;
  ms: number;
}

/** The slice of R2Bucket used here (R2 types are Worker types, not in the Node build). */
interface Bucket {
  put(key: string, value: Uint8Array | string, options?: { httpMetadata?: { contentType?: string } }): Promise<unknown>;
}

const BAD_SAMPLES_MAX = 10;

export function parseArgs(argv: string[]): { file: string; pair: string; tz: string } {
  const positional: string[] = [];
  let pair: string | undefined;
  let tz = "EST";
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === "--pair" || arg === "--tz") {
      const value = argv[++i];
      if (value === undefined) throw new UsageError(`${arg} needs a value`);
      if (arg === "--pair") pair = value;
      else tz = value;
    } else if (arg.startsWith("--")) {
      throw new UsageError(`unknown option ${arg}`);
    } else positional.push(arg);
  }
  const file = positional[0];
  if (file === undefined || positional.length > 1) throw new UsageError("exactly one input file is required");
  if (pair === undefined) throw new UsageError("--pair is required");
  checkPair(pair);
  checkZone(tz);
  return { file, pair, tz };
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

/** Parse and validate a histdata M1 file into sorted, deduplicated candles (ask = bid). */
export async function readHistdataM1(
  file: string,
  instrument: Instrument,
  zone: Zone,
  log: (message: string) => void = () => {},
): Promise<Omit<ImportSummary, "pair" | "partitions" | "manifestKey" | "ms"> & { candles: Candle[] }> {
  const candles: Candle[] = [];
  const badByKind: ImportSummary["badByKind"] = {};
  const badSamples: string[] = [];
  let bad = 0;
  let nonMonotonic = 0;
  let prevTs = Number.NEGATIVE_INFINITY;
  let lineNo = 0;
  let seenData = false;
  const reject = (line: number, kind: RowErrorKind | "bad_price", reason: string): void => {
    bad++;
    badByKind[kind] = (badByKind[kind] ?? 0) + 1;
    if (badSamples.length < BAD_SAMPLES_MAX) badSamples.push(`${line}: ${reason}`);
  };
  for await (const line of readLines(file)) {
    lineNo++;
    if (line.trim() === "") continue;
    // A header is allowed only before the first data row; later, a non-digit line is a bad row.
    if (!seenData && isHeaderLine(line)) continue;
    seenData = true;
    const r = parseHistdataM1(line, lineNo, zone);
    if (!r.ok) {
      reject(r.error.line, r.error.kind, r.error.reason);
      continue;
    }
    const bar = r.value;
    const bo = toPoints(bar.open, instrument);
    const bh = toPoints(bar.high, instrument);
    const bl = toPoints(bar.low, instrument);
    const bc = toPoints(bar.close, instrument);
    if (![bo, bh, bl, bc].every((p) => Number.isInteger(p) && p > 0 && p <= 2_147_483_647)) {
      reject(lineNo, "bad_price", `prices out of range for ${instrument.symbol}`);
      continue;
    }
    if (bar.ts < prevTs) nonMonotonic++;
    prevTs = bar.ts;
    candles.push({ t: bar.ts, bo, bh, bl, bc, ao: bo, ah: bh, al: bl, ac: bc, n: 0 });
    if (lineNo % 100_000 === 0) log(`  ${lineNo.toLocaleString("en-US")} lines read`);
  }
  // Stable sort keeps file order among equal timestamps, so the first of duplicates survives.
  if (nonMonotonic > 0) candles.sort((a, b) => a.t - b.t);
  let duplicates = 0;
  let w = 0;
  for (let i = 0; i < candles.length; i++) {
    const c = candles[i] as Candle;
    if (w > 0 && (candles[w - 1] as Candle).t === c.t) {
      duplicates++;
      continue;
    }
    candles[w++] = c;
  }
  candles.length = w;
  return { candles, rows: candles.length, bad, badByKind, badSamples, duplicates, nonMonotonic };
}

/** Split sorted candles by UTC year. */
export function partitionByUtcYear(candles: Candle[]): Map<number, Candle[]> {
  const out = new Map<number, Candle[]>();
  for (const c of candles) {
    const year = new Date(c.t).getUTCFullYear();
    let part = out.get(year);
    if (!part) out.set(year, (part = []));
    part.push(c);
  }
  return out;
}

export function candleKey(pair: string, year: number): string {
  return `candles/${pair}/1m/${year}.arrow`;
}

export function manifestKey(pair: string): string {
  return `candles/${pair}/manifest.json`;
}

export function defaultStateDir(): string {
  return path.resolve(process.env.STATE_DIR ?? path.join(ROOT, ".wrangler", "state"));
}

/** Import one file; see the module comment. Throws UsageError for a bad pair or zone. */
export async function importFile(options: ImportOptions): Promise<ImportSummary> {
  const started = performance.now();
  const log = options.log ?? ((m: string) => process.stderr.write(`${m}\n`));
  const instrument = checkPair(options.pair);
  const tz = options.tz ?? "EST";
  const zone = checkZone(tz);
  const stateDir = path.resolve(options.stateDir ?? defaultStateDir());

  log(`import: reading ${options.file} (${instrument.symbol}, clock ${zone.name})`);
  const read = await readHistdataM1(options.file, instrument, zone, log);
  log(`import: ${read.rows} rows, ${read.bad} bad, ${read.duplicates} duplicates, ${read.nonMonotonic} non-monotonic`);
  const parts = partitionByUtcYear(read.candles);

  process.env.CLOUDFLARE_CF_FETCH_ENABLED = "false";
  process.env.WRANGLER_SEND_METRICS = "false";
  const { getPlatformProxy } = await import("wrangler");
  const proxy = await getPlatformProxy<{ DATA: Bucket }>({
    configPath: options.configPath ?? path.join(ROOT, "wrangler.jsonc"),
    persist: { path: path.join(stateDir, "v3") },
  });
  try {
    const bucket = proxy.env.DATA;
    const partitions: PartitionInfo[] = [];
    for (const [year, candles] of [...parts].sort((a, b) => a[0] - b[0])) {
      const key = candleKey(instrument.symbol, year);
      const bytes = candlesToArrowIPC(candles);
      await bucket.put(key, bytes, { httpMetadata: { contentType: "application/vnd.apache.arrow.file" } });
      const info: PartitionInfo = {
        key,
        year,
        rows: candles.length,
        fromMs: (candles[0] as Candle).t,
        toMs: (candles[candles.length - 1] as Candle).t,
        bytes: bytes.byteLength,
      };
      partitions.push(info);
      log(`import: wrote ${key} (${info.rows} rows, ${info.bytes} bytes)`);
    }
    const manifest: Manifest = {
      pair: instrument.symbol,
      timeframe: "1m",
      partitions: partitions.map(({ bytes: _bytes, ...p }) => p),
      source: path.basename(options.file),
      tz: zone.name,
      importedAt: new Date().toISOString(),
    };
    const mKey = manifestKey(instrument.symbol);
    await bucket.put(mKey, JSON.stringify(manifest, null, 2), { httpMetadata: { contentType: "application/json" } });
    log(`import: wrote ${mKey} to local R2 under ${path.join(stateDir, "v3")}`);
    const { candles: _candles, ...counts } = read;
    return { pair: instrument.symbol, ...counts, partitions, manifestKey: mKey, ms: Math.round(performance.now() - started) };
  } finally {
    await proxy.dispose();
  }
}

async function main(): Promise<void> {
  let args: { file: string; pair: string; tz: string };
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`import: ${err.message}\nusage: npm run import -- <file.csv|file.csv.gz> --pair EUR_USD [--tz EST|UTC|+02:00|America/New_York]\n`);
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
    process.stderr.write(`import: failed: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  void main();
}
