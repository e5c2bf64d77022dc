/**
 * A backtest request run over the data lake: the one path behind the CLI, the
 * HTTP API (Backtest Durable Object) and sweeps. Several engines can share one
 * pass over the data (a parameter grid decodes each partition once).
 */
import * as v from "valibot";
import { BacktestRequest, PortfolioBacktestRequest } from "../../schemas/backtest.ts";
import type { Instrument } from "../domain/instruments.ts";
import { getInstrument } from "../domain/instruments.ts";
import { MINUTE_MS } from "../domain/fx-time.ts";
import { conversionPairs, DEFAULT_ACCOUNT_CURRENCY, type ConversionRate } from "../domain/trading/money.ts";
import type { Candle } from "../domain/candle.ts";
import type { CandleColumns } from "../ingest/candle-arrow.ts";
import { Backtester, type BacktestOptions } from "./backtester.ts";
import { mergeBars, type MergeBatch, type PairBars } from "./bar-merge.ts";
import { PortfolioBacktester, type PortfolioOptions } from "./portfolio-backtester.ts";
import type { PortfolioBacktestResult } from "./portfolio-result.ts";
import {
  emptyBar,
  LakeDataError,
  candleRowsInRange,
  lakeBatches,
  lakeTickBatches,
  loadCandleManifest,
  loadTickManifest,
  partitionsInRange,
  readRow,
  readTickRow,
  type LakeBucket,
  type LakeProgress,
} from "./lake-reader.ts";
import type { BacktestResult } from "./result.ts";

export function backtestOptions(request: BacktestRequest, instrument: Instrument, conversionRates?: () => readonly ConversionRate[]): BacktestOptions {
  return {
    instrument,
    strategy: request.strategy,
    fromMs: request.from,
    toMs: request.to,
    spreadPips: request.spreadPips === undefined ? (request.data === "ticks" ? null : 1) : request.spreadPips,
    fillModel: request.fillModel,
    financing: { longPct: request.financingLongPct, shortPct: request.financingShortPct },
    initialBalanceUsd: request.initialBalanceUsd,
    ...(request.risk ? { risk: request.risk } : {}),
    ...(conversionRates ? { conversionRates } : {}),
  };
}

/**
 * The latest close of the pair that converts a cross's quote currency into
 * USD (GBP_USD or USD_GBP for EUR_GBP), read from the lake alongside the
 * traded pair, never ahead of the bar being replayed.
 */
class ConversionFeed {
  private readonly queue: { cols: CandleColumns; i: number }[] = [];
  private done = false;
  private rate: ConversionRate | null = null;

  constructor(
    private readonly instrument: Instrument,
    private readonly batches: AsyncGenerator<{ cols: CandleColumns; start: number; end: number }>,
  ) {}

  /** Load batches until one reaches past `tMs` (or the data ends). */
  async loadUntil(tMs: number): Promise<void> {
    while (!this.done) {
      const last = this.queue[this.queue.length - 1];
      if (last && (last.cols.t[last.cols.length - 1] as number) > tMs) return;
      const next = await this.batches.next();
      if (next.done) this.done = true;
      else this.queue.push({ cols: next.value.cols, i: 0 });
    }
  }

  /** Advance to the last bar that started at or before `tMs` (its close is the rate). */
  advance(tMs: number): void {
    for (;;) {
      const head = this.queue[0];
      if (!head) return;
      while (head.i < head.cols.length && (head.cols.t[head.i] as number) <= tMs) {
        this.rate = { instrument: this.instrument, points: head.cols.bc[head.i] as number };
        head.i++;
      }
      if (head.i < head.cols.length) return;
      this.queue.shift();
    }
  }

  current(): readonly ConversionRate[] {
    return this.rate ? [this.rate] : [];
  }
}

async function conversionFeed(bucket: LakeBucket, instrument: Instrument, fromMs: number, toMs: number): Promise<ConversionFeed | null> {
  const account = DEFAULT_ACCOUNT_CURRENCY;
  if (instrument.quote === account || instrument.base === account) return null;
  for (const symbol of conversionPairs(instrument.quote, account)) {
    let conv: Instrument;
    try {
      conv = getInstrument(symbol);
    } catch {
      continue;
    }
    try {
      const manifest = await loadCandleManifest(bucket, symbol);
      // From a week before: the first bars of the range need a rate already.
      return new ConversionFeed(conv, lakeBatches(bucket, manifest, fromMs - 7 * 86_400_000, toMs));
    } catch (err) {
      if (err instanceof LakeDataError && err.code === "no_data") continue;
      throw err;
    }
  }
  throw new LakeDataError("no_data", `${instrument.symbol} P&L needs a ${instrument.quote}/USD rate: import ${conversionPairs(instrument.quote, account).join(" or ")} for the same range`);
}

/** Called after each record batch; a returned promise is awaited (a Durable Object yields there). */
export type ProgressListener = (progress: LakeProgress) => void | Promise<void>;

/** Which of the pair's data a replay reads: 1-minute candles, or ticks as one-point bars. */
export type LakeSource = "candles" | "ticks";

/** Record batches of either source, each row readable into a bar. */
async function* barBatches(bucket: LakeBucket, pair: string, source: LakeSource, fromMs: number, toMs: number) {
  if (source === "candles") {
    const manifest = await loadCandleManifest(bucket, pair);
    const rowsTotal = candleRowsInRange(manifest, fromMs, toMs);
    for await (const b of lakeBatches(bucket, manifest, fromMs, toMs)) {
      yield { ...b, rowsTotal, barMs: MINUTE_MS, read: (i: number, bar: Candle) => (readRow(b.cols, i, bar), true) };
    }
    return;
  }
  const manifest = await loadTickManifest(bucket, pair);
  const rowsTotal = partitionsInRange(manifest, fromMs, toMs).reduce((n, p) => n + p.rows, 0);
  for await (const b of lakeTickBatches(bucket, manifest, fromMs, toMs)) {
    yield { ...b, rowsTotal, barMs: 0, read: (i: number, bar: Candle) => readTickRow(b.cols, i, bar) };
  }
}

/**
 * Replay [fromMs, toMs) of `pair` from the lake into every engine built by
 * `makeEngines` (given the conversion rates a cross needs). Progress is
 * reported after each record batch.
 */
export async function replayLake(
  bucket: LakeBucket,
  pair: string,
  fromMs: number,
  toMs: number,
  makeEngines: (conversionRates?: () => readonly ConversionRate[]) => Backtester[],
  onProgress: ProgressListener = () => {},
  source: LakeSource = "candles",
): Promise<BacktestResult[]> {
  const instrument = getInstrument(pair);
  const batches = barBatches(bucket, pair, source, fromMs, toMs);
  // The first batch proves there is data (and reads the manifest) before any conversion pair is opened.
  const first = await batches.next();
  if (first.done || first.value.rowsTotal === 0) {
    throw new LakeDataError("no_data", `no ${pair} ${source} between ${new Date(fromMs).toISOString()} and ${new Date(toMs).toISOString()} in the data lake`);
  }
  const conversion = await conversionFeed(bucket, instrument, fromMs, toMs);
  const engines = makeEngines(conversion ? () => conversion.current() : undefined);
  const bar = emptyBar();
  for (let next: IteratorResult<typeof first.value> = first; !next.done; next = await batches.next()) {
    const { cols, start, end, rowsBefore, rowsTotal, barMs, read } = next.value;
    if (conversion && end > start) await conversion.loadUntil(cols.t[end - 1] as number);
    for (let i = start; i < end; i++) {
      if (!read(i, bar)) continue;
      conversion?.advance(bar.t);
      for (const engine of engines) engine.onBar(bar, bar.t + barMs);
    }
    await onProgress({ rowsRead: rowsBefore + cols.length, rowsTotal, atMs: cols.t[cols.length - 1] ?? fromMs });
  }
  return engines.map((e) => e.finish());
}

/** One backtest request over the lake. */
export async function backtestFromLake(bucket: LakeBucket, request: BacktestRequest, onProgress?: ProgressListener): Promise<BacktestResult> {
  const instrument = getInstrument(request.pair);
  const [result] = await replayLake(bucket, request.pair, request.from, request.to, (rates) => [new Backtester(backtestOptions(request, instrument, rates))], onProgress, request.data);
  return result as BacktestResult;
}

/** The engine options of a portfolio request (`tradeFromMs`: walk-forward's warm start). */
export function portfolioOptions(request: PortfolioBacktestRequest, tradeFromMs?: number): PortfolioOptions {
  return {
    settings: request,
    pairs: request.pairs.map((p) => ({ instrument: getInstrument(p.pair), strategies: p.strategies, risk: p.risk ?? null, fillModel: p.fillModel })),
    ...(tradeFromMs !== undefined ? { tradeFromMs } : {}),
    spreadPips: request.spreadPips === undefined ? (request.data === "ticks" ? null : 1) : request.spreadPips,
    financing: { longPct: request.financingLongPct, shortPct: request.financingShortPct },
    accountCurrency: request.accountCurrency,
    initialBalanceCents: Math.round(request.initialBalance * 100),
    limits: request.limits ?? null,
  };
}

/**
 * Replay a portfolio request's range from the lake: every pair's bars merged
 * on one clock (bar-merge.ts) into every engine built by `makeEngines` (a
 * sweep runs several over one pass). Every listed pair must have data in the
 * range (a pair that only prices a currency too: without it money would be
 * valued at nothing). Progress counts the rows of every pair.
 */
export async function replayPortfolio(
  bucket: LakeBucket,
  request: PortfolioBacktestRequest,
  makeEngines: () => PortfolioBacktester[],
  onProgress: ProgressListener = () => {},
): Promise<PortfolioBacktestResult[]> {
  const { from, to, data } = request;
  let rowsRead = 0;
  let rowsTotal = 0;
  let barMs = MINUTE_MS;
  const streams: PairBars[] = [];
  for (const { pair } of request.pairs) {
    const batches = barBatches(bucket, pair, data, from, to);
    const first = await batches.next();
    if (first.done || first.value.rowsTotal === 0) {
      throw new LakeDataError("no_data", `no ${pair} ${data} between ${new Date(from).toISOString()} and ${new Date(to).toISOString()} in the data lake`);
    }
    rowsTotal += first.value.rowsTotal;
    barMs = first.value.barMs;
    streams.push({
      pair,
      batches: (async function* (): AsyncGenerator<MergeBatch> {
        for (let next: IteratorResult<typeof first.value> = first; !next.done; next = await batches.next()) {
          const b = next.value;
          // Candles (1-minute bars) are read inline by the merge; ticks through their reader.
          yield data === "candles" ? { start: b.start, end: b.end, cols: b.cols as CandleColumns } : { start: b.start, end: b.end, read: b.read };
          rowsRead += b.cols.length;
          await onProgress({ rowsRead, rowsTotal, atMs: b.cols.t[b.cols.length - 1] ?? from });
        }
      })(),
    });
  }
  const engines = makeEngines();
  await mergeBars(streams, (pair, bar) => {
    for (const engine of engines) engine.onBar(pair, bar, bar.t + barMs);
  });
  return engines.map((e) => e.finish());
}

/** One portfolio request over the lake. */
export async function portfolioFromLake(bucket: LakeBucket, request: PortfolioBacktestRequest, onProgress?: ProgressListener): Promise<PortfolioBacktestResult> {
  const [result] = await replayPortfolio(bucket, request, () => [new PortfolioBacktester(portfolioOptions(request))], onProgress);
  return result as PortfolioBacktestResult;
}

/** A stored request body of either shape (a body with `pairs` is a portfolio), checked and run over the lake. */
export function runStoredRequest(bucket: LakeBucket, body: unknown, onProgress?: ProgressListener): Promise<BacktestResult | PortfolioBacktestResult> {
  if (body !== null && typeof body === "object" && "pairs" in body) return portfolioFromLake(bucket, v.parse(PortfolioBacktestRequest, body), onProgress);
  return backtestFromLake(bucket, v.parse(BacktestRequest, body), onProgress);
}
