/**
 * Replay history into a running runtime through the live tick path:
 *
 *   npm run replay -- <file> --pair EUR_USD [--tz EST] [--speed 60|max]
 *   npm run replay -- --lake --pair EUR_USD --from 2018-01-01 --to 2018-03-01 [--speed max]
 *     [--url http://127.0.0.1:8787] [--api-key KEY] [--spread-pips 1] [--from ISO] [--to ISO]
 *     [--batch 500] [--limit N] [--max-gap-s 5] [--dry-run]
 *
 * The file format is detected from its first data line (src/ingest/history-formats.ts):
 * tick files are sent as they are; histdata M1 bid bars become four ticks each
 * (barToTicks) with ask = bid + --spread-pips. --tz is the clock of files whose
 * timestamps carry no offset (histdata: "EST" as documented; its stored 2018
 * files follow America/New_York, see ../shared/data/SOURCES.md). --speed N
 * sends so that N seconds of market time pass per wall second; a market gap
 * (weekend, holiday) waits at most --max-gap-s wall seconds; "max" sends batches back
 * to back. --from/--to (ISO, --to exclusive) filter by tick time; --limit stops
 * after N ticks; --dry-run parses and batches without sending or waiting.
 * --lake reads the pair's 1-minute candles from the data lake (local R2 under
 * STATE_DIR, as npm run backtest) instead of a file, each bar as four ticks on
 * the path the backtester uses (barPath); --spread-pips data keeps the data's
 * own ask. Batches are marked as replayed history, so the pair trades on the
 * ticks' clock (risk checks, order times) as it would have at the time.
 *
 * Progress goes to stderr; the last line on stdout is a one-line JSON summary.
 * Exit codes: 0 done, 1 HTTP or network failure, 2 usage or unreadable file.
 */
import { pathToFileURL } from "node:url";
import * as v from "valibot";
import { ErrorBody } from "../schemas/common.ts";
import { TICK_BATCH_MAX, TickBatchResult, type WireTick } from "../schemas/tick.ts";
import { findInstrument, type Instrument } from "../src/domain/instruments.ts";
import { pipsToPoints, toDecimal, toPoints } from "../src/domain/price.ts";
import {
  barToTicks,
  detectFormat,
  isHeaderLine,
  isQuoteFormat,
  parseHistdataM1,
  parseQuote,
  type HistoryFormat,
  type RowError,
} from "../src/ingest/history-formats.ts";
import { readLines } from "../src/ingest/read-lines.ts";
import { randomUUID } from "node:crypto";
import { barPath } from "../src/domain/bar-path.ts";
import { emptyBar, lakeBatches, loadCandleManifest, readRow, type LakeBucket } from "../src/replay/lake-reader.ts";
import { openDataBucket } from "./data-bucket.ts";
import { parseZone, type Zone } from "../src/ingest/time-zone.ts";

export interface ReplayOptions {
  /** The history file, or `lake:<PAIR>` when reading the data lake. */
  file: string;
  lake: boolean;
  instrument: Instrument;
  zone: Zone;
  /** A trader (or admin) key; default: FXRT_API_KEY from the environment. */
  apiKey?: string;
  /** Market seconds per wall second, or "max". */
  speed: number | "max";
  /** Longest wall wait for one market gap (weekends would otherwise take 48 min at --speed 60). */
  maxGapWallMs: number;
  url: string;
  /** Ask = bid + this for bid-only data; null = the data's own ask (lake only). */
  spreadPoints: number | null;
  fromMs: number;
  toMs: number;
  batchSize: number;
  limitTicks: number;
  dryRun: boolean;
}

export class UsageError extends Error {}

const USAGE =
  "usage: replay <file>|--lake --pair EUR_USD [--tz EST] [--speed 60|max] [--url http://127.0.0.1:8787] [--api-key KEY] " +
  "[--spread-pips 1|data] [--from ISO] [--to ISO] [--batch 500] [--limit N] [--max-gap-s 5] [--dry-run]";

function positiveNumber(name: string, text: string): number {
  const n = Number(text);
  if (!(Number.isFinite(n) && n > 0)) throw new UsageError(`${name} must be a positive number, got '${text}'`);
  return n;
}

function isoMs(name: string, text: string): number {
  const ms = Date.parse(text);
  if (Number.isNaN(ms)) throw new UsageError(`${name} must be an ISO date-time, got '${text}'`);
  return ms;
}

/** Parse CLI arguments (without node and script path). Throws UsageError. */
export function parseArgs(argv: readonly string[]): ReplayOptions {
  const flags = new Map<string, string>();
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? "";
    if (arg === "--dry-run" || arg === "--lake") flags.set(arg, "true");
    else if (arg.startsWith("--")) {
      const eq = arg.indexOf("=");
      if (eq > 0) flags.set(arg.slice(0, eq), arg.slice(eq + 1));
      else {
        const value = argv[++i];
        if (value === undefined) throw new UsageError(`${arg} needs a value`);
        flags.set(arg, value);
      }
    } else positional.push(arg);
  }
  const known = ["--pair", "--tz", "--speed", "--url", "--api-key", "--spread-pips", "--from", "--to", "--batch", "--limit", "--max-gap-s", "--dry-run", "--lake"];
  for (const name of flags.keys()) if (!known.includes(name)) throw new UsageError(`unknown option ${name}`);
  const lake = flags.get("--lake") === "true";
  const pair = flags.get("--pair");
  if (pair === undefined) throw new UsageError("--pair is required");
  const file = lake ? `lake:${pair}` : positional[0];
  if (lake && positional.length > 0) throw new UsageError("--lake reads the data lake: give no file");
  if (file === undefined || positional.length > 1) throw new UsageError("exactly one input file is required (or --lake)");
  const instrument = findInstrument(pair);
  if (!instrument) throw new UsageError(`unknown pair ${pair}`);
  let zone: Zone;
  try {
    zone = parseZone(flags.get("--tz") ?? "EST");
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const speedText = flags.get("--speed") ?? "60";
  const batchSize = positiveNumber("--batch", flags.get("--batch") ?? "500");
  if (!Number.isInteger(batchSize) || batchSize > TICK_BATCH_MAX) throw new UsageError(`--batch must be an integer 1..${TICK_BATCH_MAX}`);
  const spreadText = flags.get("--spread-pips") ?? "1";
  if (spreadText === "data" && !lake) throw new UsageError("--spread-pips data needs --lake (files carry their own quotes or only bids)");
  const spreadPoints = spreadText === "data" ? null : pipsToPoints(Number(spreadText), instrument);
  if (spreadPoints !== null && !(spreadPoints >= 0)) throw new UsageError("--spread-pips must be a number >= 0 or 'data'");
  const limitText = flags.get("--limit");
  const limitTicks = limitText === undefined ? Number.POSITIVE_INFINITY : positiveNumber("--limit", limitText);
  const fromText = flags.get("--from");
  const toText = flags.get("--to");
  const url = (flags.get("--url") ?? "http://127.0.0.1:8787").replace(/\/+$/, "");
  if (!/^https?:\/\//.test(url)) throw new UsageError(`--url must start with http:// or https://, got '${url}'`);
  return {
    file,
    lake,
    instrument,
    zone,
    speed: speedText === "max" ? "max" : positiveNumber("--speed", speedText),
    maxGapWallMs: positiveNumber("--max-gap-s", flags.get("--max-gap-s") ?? "5") * 1000,
    ...((flags.get("--api-key") ?? process.env.FXRT_API_KEY) ? { apiKey: (flags.get("--api-key") ?? process.env.FXRT_API_KEY)! } : {}),
    url,
    spreadPoints,
    fromMs: fromText === undefined ? Number.NEGATIVE_INFINITY : isoMs("--from", fromText),
    toMs: toText === undefined ? Number.POSITIVE_INFINITY : isoMs("--to", toText),
    batchSize,
    limitTicks,
    dryRun: flags.get("--dry-run") === "true",
  };
}

export interface ReadStats {
  format: HistoryFormat | undefined;
  /** Data rows read (headers and blank lines excluded). */
  rows: number;
  badRows: number;
  badByKind: Record<string, number>;
  /** First few bad rows, for the operator. */
  badSamples: RowError[];
  /** Ticks dropped by --from/--to. */
  outOfRange: number;
}

const BAD_SAMPLES_MAX = 10;

export function emptyReadStats(): ReadStats {
  return { format: undefined, rows: 0, badRows: 0, badByKind: {}, badSamples: [], outOfRange: 0 };
}

/**
 * Wire ticks from a history file, in file order, prices normalised to the
 * pair's display precision. Bad rows are counted in `stats` and skipped.
 * Throws UsageError when the format is not recognised or not replayable.
 */
export async function* readWireTicks(options: ReplayOptions, stats: ReadStats): AsyncGenerator<WireTick> {
  const { instrument, zone } = options;
  const decimal = (points: number): number => toDecimal(points, instrument);
  let lineNo = 0;
  let yielded = 0;
  for await (const line of readLines(options.file)) {
    lineNo++;
    if (line.trim() === "" || isHeaderLine(line)) continue;
    if (stats.format === undefined) {
      const format = detectFormat(line);
      if (format === undefined) throw new UsageError(`${options.file}:${lineNo}: unrecognised format: ${line.slice(0, 80)}`);
      if (!isQuoteFormat(format) && format !== "histdata_m1") throw new UsageError(`${format} files cannot be replayed (tick or histdata M1 files only)`);
      stats.format = format;
    }
    stats.rows++;
    const format = stats.format;
    let ticks: WireTick[];
    if (isQuoteFormat(format)) {
      const r = parseQuote(format, line, lineNo, zone);
      if (!r.ok) {
        countBad(stats, r.error);
        continue;
      }
      ticks = [{ ts: r.value.ts, bid: decimal(toPoints(r.value.bid, instrument)), ask: decimal(toPoints(r.value.ask, instrument)) }];
    } else {
      const r = parseHistdataM1(line, lineNo, zone);
      if (!r.ok) {
        countBad(stats, r.error);
        continue;
      }
      ticks = barToTicks(r.value, options.spreadPoints ?? 0, instrument).map((t) => ({ ts: t.ts, bid: decimal(t.bid), ask: decimal(t.ask) }));
    }
    for (const tick of ticks) {
      if (tick.ts < options.fromMs || tick.ts >= options.toMs) {
        stats.outOfRange++;
        continue;
      }
      yield tick;
      if (++yielded >= options.limitTicks) return;
    }
  }
}

/** Wire ticks from the data lake's 1-minute candles of the pair, four per bar (barPath), within --from/--to. */
export async function* readLakeTicks(options: ReplayOptions, stats: ReadStats, bucket: LakeBucket): AsyncGenerator<WireTick> {
  const { instrument } = options;
  const decimal = (points: number): number => toDecimal(points, instrument);
  const manifest = await loadCandleManifest(bucket, instrument.symbol);
  stats.format = "histdata_m1";
  const bar = emptyBar();
  let yielded = 0;
  for await (const { cols, start, end } of lakeBatches(bucket, manifest, options.fromMs, options.toMs)) {
    for (let i = start; i < end; i++) {
      stats.rows++;
      for (const tick of barPath(readRow(cols, i, bar), options.spreadPoints)) {
        if (tick.ts >= options.toMs) {
          stats.outOfRange++;
          continue;
        }
        yield { ts: tick.ts, bid: decimal(tick.bid), ask: decimal(tick.ask) };
        if (++yielded >= options.limitTicks) return;
      }
    }
  }
}

function countBad(stats: ReadStats, error: RowError): void {
  stats.badRows++;
  stats.badByKind[error.kind] = (stats.badByKind[error.kind] ?? 0) + 1;
  if (stats.badSamples.length < BAD_SAMPLES_MAX) stats.badSamples.push(error);
}

/** Ticks within this much wall time of a batch's first tick may ride in the same request. */
const BATCH_WINDOW_MS = 250;

/**
 * Group ticks into requests: at most `batchSize` each and, when paced, only
 * ticks due within BATCH_WINDOW_MS of the first, so a batch never holds back
 * ticks for long. Yields each batch with the wall offset (ms from the start)
 * at which its last tick is due.
 */
export async function* pacedBatches(
  ticks: AsyncIterable<WireTick>,
  batchSize: number,
  speed: number | "max",
  maxGapWallMs = Number.POSITIVE_INFINITY,
): AsyncGenerator<{ ticks: WireTick[]; dueWallMs: number }> {
  let batch: WireTick[] = [];
  let prevMarketMs: number | undefined;
  let batchFirstDueMs = 0;
  let lastDueMs = 0;
  for await (const tick of ticks) {
    // Wall time advances by the market step / speed, capped per gap; never
    // backwards, so out-of-order rows go out in file order.
    const stepMs = prevMarketMs === undefined ? 0 : Math.max(0, tick.ts - prevMarketMs);
    prevMarketMs = tick.ts;
    const due = speed === "max" ? 0 : lastDueMs + Math.min(stepMs / speed, maxGapWallMs);
    if (batch.length > 0 && (batch.length >= batchSize || due - batchFirstDueMs > BATCH_WINDOW_MS)) {
      yield { ticks: batch, dueWallMs: lastDueMs };
      batch = [];
    }
    if (batch.length === 0) batchFirstDueMs = due;
    batch.push(tick);
    lastDueMs = due;
  }
  if (batch.length > 0) yield { ticks: batch, dueWallMs: lastDueMs };
}

export class HttpFailure extends Error {}

export interface SendResult {
  accepted: number;
  rejectedByType: Record<string, number>;
}

/** Attempts at one batch when the connection fails (a keep-alive the server closed, a restart). */
const SEND_ATTEMPTS = 3;

/**
 * POST one batch; throws HttpFailure on a network error that outlasts the
 * retries, a 4xx/5xx or an answer off the contract. The batch goes under a
 * batchId of its own, so one sent again after a lost answer stores nothing
 * twice (the pair answers with what it stored).
 */
export async function postTicks(url: string, pair: string, ticks: readonly WireTick[], apiKey?: string): Promise<SendResult> {
  const endpoint = `${url}/api/pairs/${encodeURIComponent(pair)}/ticks`;
  // Replayed history: the pair trades on the ticks' clock (schemas/tick.ts).
  const payload = JSON.stringify({ ticks, replay: true, batchId: `replay-${randomUUID()}` });
  let response: Response | null = null;
  for (let attempt = 1; response === null; attempt++) {
    try {
      response = await fetch(endpoint, {
        method: "POST",
        headers: { "content-type": "application/json", ...(apiKey ? { "x-api-key": apiKey } : {}) },
        body: payload,
        signal: AbortSignal.timeout(30_000),
      });
    } catch (err) {
      if (attempt >= SEND_ATTEMPTS) throw new HttpFailure(`POST ${endpoint}: ${(err as Error).message}`);
      await new Promise((r) => setTimeout(r, 100 * attempt));
    }
  }
  const text = await response.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  if (!response.ok) {
    const parsed = v.safeParse(ErrorBody, body);
    const detail = parsed.success
      ? `${parsed.output.error.code}: ${parsed.output.error.message}${parsed.output.error.details === undefined ? "" : ` ${JSON.stringify(parsed.output.error.details)}`}`
      : text.slice(0, 300);
    throw new HttpFailure(`POST ${endpoint}: HTTP ${response.status} ${detail}`);
  }
  const parsed = v.safeParse(TickBatchResult, body);
  if (!parsed.success) throw new HttpFailure(`POST ${endpoint}: unexpected answer ${text.slice(0, 300)}`);
  const rejectedByType: Record<string, number> = {};
  for (const r of parsed.output.rejected) rejectedByType[r.reason.type] = (rejectedByType[r.reason.type] ?? 0) + 1;
  return { accepted: parsed.output.accepted, rejectedByType };
}

export interface ReplaySummary {
  file: string;
  pair: string;
  format: HistoryFormat | undefined;
  rows: number;
  badRows: number;
  badByKind: Record<string, number>;
  outOfRange: number;
  sent: number;
  requests: number;
  accepted: number;
  rejected: number;
  rejectedByType: Record<string, number>;
  firstTs: string | null;
  lastTs: string | null;
  elapsedMs: number;
  dryRun: boolean;
}

export interface ReplayDeps {
  send: (ticks: readonly WireTick[]) => Promise<SendResult>;
  nowMs: () => number;
  sleepMs: (ms: number) => Promise<void>;
  log: (line: string) => void;
  /** True once the operator asked to stop (Ctrl-C): finish the batch in flight and summarise. */
  stopped: () => boolean;
}

const PROGRESS_EVERY_MS = 2_000;

export async function replay(options: ReplayOptions, deps: ReplayDeps, lake?: LakeBucket): Promise<ReplaySummary> {
  const stats = emptyReadStats();
  const summary: ReplaySummary = {
    file: options.file, pair: options.instrument.symbol, format: undefined, rows: 0, badRows: 0, badByKind: {}, outOfRange: 0,
    sent: 0, requests: 0, accepted: 0, rejected: 0, rejectedByType: {}, firstTs: null, lastTs: null, elapsedMs: 0, dryRun: options.dryRun,
  };
  const started = deps.nowMs();
  let lastProgress = started;
  const sync = (): void => {
    Object.assign(summary, { format: stats.format, rows: stats.rows, badRows: stats.badRows, badByKind: stats.badByKind, outOfRange: stats.outOfRange });
    summary.elapsedMs = deps.nowMs() - started;
  };
  const progress = (): void => {
    sync();
    deps.log(
      `replay: rows ${summary.rows} sent ${summary.sent} accepted ${summary.accepted} rejected ${summary.rejected}` +
        ` ${JSON.stringify(summary.rejectedByType)} bad ${summary.badRows} market ${summary.lastTs ?? "-"}`,
    );
  };
  if (options.lake && !lake) throw new UsageError("--lake needs the data lake's bucket");
  const source = options.lake && lake ? readLakeTicks(options, stats, lake) : readWireTicks(options, stats);
  for await (const batch of pacedBatches(source, options.batchSize, options.speed, options.maxGapWallMs)) {
    const waitMs = started + batch.dueWallMs - deps.nowMs();
    if (waitMs > 5_000 && !options.dryRun) deps.log(`replay: market gap, waiting ${(waitMs / 1000).toFixed(0)} s`);
    if (waitMs > 0 && !options.dryRun) await deps.sleepMs(waitMs);
    if (!options.dryRun) {
      const result = await deps.send(batch.ticks);
      summary.accepted += result.accepted;
      for (const [type, count] of Object.entries(result.rejectedByType)) {
        summary.rejectedByType[type] = (summary.rejectedByType[type] ?? 0) + count;
        summary.rejected += count;
      }
    }
    summary.requests++;
    summary.sent += batch.ticks.length;
    summary.firstTs ??= new Date(batch.ticks[0]?.ts ?? 0).toISOString();
    summary.lastTs = new Date(batch.ticks[batch.ticks.length - 1]?.ts ?? 0).toISOString();
    if (deps.nowMs() - lastProgress >= PROGRESS_EVERY_MS) {
      lastProgress = deps.nowMs();
      progress();
    }
    if (deps.stopped()) break;
  }
  sync();
  for (const bad of stats.badSamples) deps.log(`replay: bad row ${bad.line} (${bad.kind}): ${bad.reason}`);
  return summary;
}

async function main(): Promise<number> {
  let options: ReplayOptions;
  try {
    options = parseArgs(process.argv.slice(2));
  } catch (err) {
    if (err instanceof UsageError) {
      console.error(`replay: ${err.message}\n${USAGE}`);
      return 2;
    }
    throw err;
  }
  let stopRequested = false;
  process.on("SIGINT", () => {
    if (stopRequested) process.exit(130);
    stopRequested = true;
    console.error("replay: stopping after the batch in flight (Ctrl-C again to quit now)");
  });
  const deps: ReplayDeps = {
    send: (ticks) => postTicks(options.url, options.instrument.symbol, ticks, options.apiKey),
    nowMs: () => performance.now(),
    sleepMs: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
    log: (line) => console.error(line),
    stopped: () => stopRequested,
  };
  let bucket: Awaited<ReturnType<typeof openDataBucket>> | null = null;
  try {
    if (options.lake) bucket = await openDataBucket();
    const summary = await replay(options, deps, bucket?.bucket);
    console.error(
      `replay: done ${summary.file} (${summary.format ?? "empty"}) rows ${summary.rows} sent ${summary.sent} in ${summary.requests} requests,` +
        ` accepted ${summary.accepted}, rejected ${summary.rejected} ${JSON.stringify(summary.rejectedByType)},` +
        ` bad rows ${summary.badRows}, out of range ${summary.outOfRange}, ${(summary.elapsedMs / 1000).toFixed(1)} s`,
    );
    console.log(JSON.stringify(summary));
    return stopRequested ? 130 : 0;
  } catch (err) {
    if (err instanceof HttpFailure) {
      console.error(`replay: ${err.message}`);
      return 1;
    }
    // Anything else is the input: missing file, truncated gzip, unrecognised format, no data in the lake.
    console.error(`replay: ${(err as Error).message}`);
    return 2;
  } finally {
    await bucket?.dispose();
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = await main();
}
