import type { Candle, Tick, Timeframe } from "../src/domain/candle.ts";
import type { IndicatorValues } from "../src/domain/indicators.ts";
import type { TickBatchResult } from "../schemas/tick.ts";

type CandleRow = Candle & { tf: string };

/** How long a batchId is remembered: far longer than any client retries a batch. */
export const TICK_BATCH_MEMORY_MS = 24 * 3_600_000;

/** actor_state key of the data lake archive's watermark. */
const ARCHIVED_THROUGH_KEY = "lake_archived_through_t";

/**
 * All SQL of the pair actor. Synchronous (Durable Object SQLite), so callers
 * can group writes in `storage.transactionSync`.
 */
export class PairStore {
  private ticksSincePrune = 0;
  private readonly closesSincePrune = new Map<Timeframe, number>();

  constructor(private readonly sql: SqlStorage) {}

  insertTick(t: Tick): void {
    this.sql.exec("INSERT INTO ticks (ts, bid, ask) VALUES (?, ?, ?)", t.ts, t.bid, t.ask);
    this.ticksSincePrune++;
  }

  /** Keep the newest `keep` ticks. Amortised: runs once per 1% of the limit. */
  pruneTicks(keep: number): void {
    if (this.ticksSincePrune < Math.max(100, keep / 100)) return;
    this.ticksSincePrune = 0;
    this.sql.exec("DELETE FROM ticks WHERE id <= (SELECT MAX(id) FROM ticks) - ?", keep);
  }

  /** What became of a tick batch sent with a batchId so far; undefined when never seen (or pruned). */
  tickBatch(batchId: string): { digest: string; next: number; rejected: TickBatchResult["rejected"] } | undefined {
    const row = this.sql.exec<{ digest: string; next: number; rejected_json: string }>("SELECT digest, next, rejected_json FROM tick_batches WHERE batch_id = ?", batchId).toArray()[0];
    return row ? { digest: row.digest, next: row.next, rejected: JSON.parse(row.rejected_json) as TickBatchResult["rejected"] } : undefined;
  }

  /** Record a batch's progress, in the transaction that stored its ticks; batches older than a day go. */
  putTickBatch(batchId: string, digest: string, next: number, rejected: TickBatchResult["rejected"], nowMs: number): void {
    this.sql.exec(
      "INSERT OR REPLACE INTO tick_batches (batch_id, digest, next, rejected_json, created_at) VALUES (?, ?, ?, ?, COALESCE((SELECT created_at FROM tick_batches WHERE batch_id = ?), ?))",
      batchId, digest, next, JSON.stringify(rejected), batchId, nowMs,
    );
    this.sql.exec("DELETE FROM tick_batches WHERE created_at < ?", nowMs - TICK_BATCH_MEMORY_MS);
  }

  tickCount(): number {
    return this.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM ticks").one().n;
  }

  lastTicks(limit: number): Tick[] {
    return this.sql
      .exec<Tick>("SELECT ts, bid, ask FROM ticks ORDER BY id DESC LIMIT ?", limit)
      .toArray()
      .reverse();
  }

  upsertCandle(tf: Timeframe, c: Candle): void {
    this.sql.exec(
      `INSERT OR REPLACE INTO candles (tf, t, bo, bh, bl, bc, ao, ah, al, ac, n) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      tf, c.t, c.bo, c.bh, c.bl, c.bc, c.ao, c.ah, c.al, c.ac, c.n,
    );
    this.closesSincePrune.set(tf, (this.closesSincePrune.get(tf) ?? 0) + 1);
  }

  /**
   * Keep the newest `keep` candles of a timeframe (and their indicator values).
   * 1m candles are the pair's history: only those already archived to the
   * data lake go (see archivedThroughT), so a count cap never loses one; with
   * no archive they stay. 5m..1D are derived from 1m, so the cap prunes them
   * outright. Amortised unless `now`: runs once per 1% of the limit.
   */
  pruneCandles(tf: Timeframe, keep: number, now = false): void {
    if (!now && (this.closesSincePrune.get(tf) ?? 0) < Math.max(10, keep / 100)) return;
    this.closesSincePrune.set(tf, 0);
    const cutoff = this.sql
      .exec<{ t: number }>("SELECT t FROM candles WHERE tf = ? ORDER BY t DESC LIMIT 1 OFFSET ?", tf, keep)
      .toArray()[0];
    if (!cutoff) return;
    const through = tf === "1m" ? Math.min(cutoff.t, this.archivedThroughT()) : cutoff.t;
    this.sql.exec("DELETE FROM candles WHERE tf = ? AND t <= ?", tf, through);
    this.sql.exec("DELETE FROM indicator_values WHERE tf = ? AND t <= ?", tf, through);
  }

  /**
   * Start of the newest 1m candle written to the data lake (manifest included);
   * -1 before any. Read from SQLite each time (no cache a restore could leave stale).
   */
  archivedThroughT(): number {
    return this.getState<number>(ARCHIVED_THROUGH_KEY) ?? -1;
  }

  setArchivedThroughT(t: number): void {
    this.putState(ARCHIVED_THROUGH_KEY, t);
  }

  /** Closed candles of a timeframe after `afterT`, oldest first, at most `limit`. */
  candlesAfter(tf: Timeframe, afterT: number, limit: number): Candle[] {
    return this.sql
      .exec<CandleRow>("SELECT * FROM candles WHERE tf = ? AND t > ? ORDER BY t ASC LIMIT ?", tf, afterT, limit)
      .toArray()
      .map(({ tf: _tf, ...c }) => c);
  }

  /**
   * Closed candles of one timeframe, oldest first. With `from` the first
   * `limit` from there; otherwise the latest `limit` before `to`.
   */
  candles(tf: Timeframe, opts: { from?: number; to?: number; limit: number }): Candle[] {
    const from = opts.from ?? 0;
    const to = opts.to ?? Number.MAX_SAFE_INTEGER;
    const rows =
      opts.from !== undefined
        ? this.sql.exec<CandleRow>(
            "SELECT * FROM candles WHERE tf = ? AND t >= ? AND t < ? ORDER BY t ASC LIMIT ?", tf, from, to, opts.limit,
          ).toArray()
        : this.sql.exec<CandleRow>(
            "SELECT * FROM candles WHERE tf = ? AND t >= ? AND t < ? ORDER BY t DESC LIMIT ?", tf, from, to, opts.limit,
          ).toArray().reverse();
    return rows.map(({ tf: _tf, ...c }) => c);
  }

  candleCount(tf: Timeframe): number {
    return this.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM candles WHERE tf = ?", tf).one().n;
  }

  putIndicators(tf: Timeframe, t: number, values: IndicatorValues): void {
    this.sql.exec(
      "INSERT OR REPLACE INTO indicator_values (tf, t, values_json) VALUES (?, ?, ?)", tf, t, JSON.stringify(values),
    );
  }

  latestIndicators(tf: Timeframe): IndicatorValues | null {
    const row = this.sql
      .exec<{ values_json: string }>("SELECT values_json FROM indicator_values WHERE tf = ? ORDER BY t DESC LIMIT 1", tf)
      .toArray()[0];
    return row ? (JSON.parse(row.values_json) as IndicatorValues) : null;
  }

  getState<T>(key: string): T | undefined {
    const row = this.sql.exec<{ value: string }>("SELECT value FROM actor_state WHERE key = ?", key).toArray()[0];
    return row ? (JSON.parse(row.value) as T) : undefined;
  }

  putState(key: string, value: unknown): void {
    this.sql.exec("INSERT OR REPLACE INTO actor_state (key, value) VALUES (?, ?)", key, JSON.stringify(value));
  }
}
