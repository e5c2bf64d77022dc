/**
 * The pair actor's hourly upkeep, run from the cron (Pair.wake):
 * 1. archive closed 1m candles to the data lake (candle-archive.ts), then let
 *    the 1m count cap delete what is archived;
 * 2. ticks older than TICK_RETENTION_DAYS;
 * 3. audit log, risk rejections and signals older than LOG_RETENTION_DAYS
 *    (a signal waiting for its decision is in pending_signals, untouched);
 * 4. positions CLOSED more than CLOSED_POSITION_RETENTION_DAYS ago, with
 *    their orders and fills (pruneClosedPositions).
 * Ages are measured on the pair's trading clock: the wall clock live, the
 * data clock while history is replayed, so a replay of 2018 keeps its own
 * recent rows as live trading would have then.
 * Count caps (TICK_RETENTION_COUNT, CANDLE_RETENTION, the signal cap) apply
 * as well, in the tick path: whichever removes more.
 */
import { logEvent } from "../src/log.ts";
import { archiveClosedCandles, type ArchiveBucket, type ArchiveRun } from "./candle-archive.ts";
import type { OrderStore } from "./order-store.ts";
import type { PairStore } from "./pair-store.ts";
import { changes, DAY_MS, deleteInBatches, inBatches, pruneAuditLog, retentionDue, type BatchedDelete, type RetentionDays } from "./retention.ts";

/** actor_state key: wall-clock time of the last complete run. */
const LAST_RUN_KEY = "retention_last_run_ms";

export interface PairRetentionReport {
  /** False when the last complete run is under an hour old (nothing was done). */
  ran: boolean;
  /** False when a bound stopped a step: the next cron minute continues instead of waiting an hour. */
  complete: boolean;
  /** The archive step; `error` when R2 failed (no 1m candle was deleted beyond the previous watermark). */
  archive: ArchiveRun | { error: string } | { skipped: "no_bucket" } | null;
  deleted: { ticks: number; auditLog: number; riskRejections: number; signals: number; positions: number; orders: number; fills: number };
}

export interface PairRetentionDeps {
  storage: DurableObjectStorage;
  store: PairStore;
  orders: OrderStore;
  pair: string;
  days: RetentionDays;
  /** CANDLE_RETENTION of 1m. */
  candleCap1m: number;
  /** The data lake bucket (DATA); undefined = no archive, so no 1m candle is ever pruned. */
  lake: () => ArchiveBucket | undefined;
}

const NOTHING = { ticks: 0, auditLog: 0, riskRejections: 0, signals: 0, positions: 0, orders: 0, fills: 0 };

export class PairRetention {
  private running: Promise<PairRetentionReport> | null = null;

  constructor(private readonly d: PairRetentionDeps) {}

  /** Run when an hour passed since the last complete run (`wallMs`); ages are measured from `dataNowMs`. */
  runIfDue(wallMs: number, dataNowMs: number): Promise<PairRetentionReport> {
    if (this.running) return this.running;
    if (!retentionDue(this.d.store.getState<number>(LAST_RUN_KEY), wallMs)) {
      return Promise.resolve({ ran: false, complete: true, archive: null, deleted: { ...NOTHING } });
    }
    this.running = this.run(wallMs, dataNowMs).finally(() => {
      this.running = null;
    });
    return this.running;
  }

  private async run(wallMs: number, dataNowMs: number): Promise<PairRetentionReport> {
    const { storage, store, days } = this.d;
    const archive = await this.archive(dataNowMs);
    storage.transactionSync(() => store.pruneCandles("1m", this.d.candleCap1m, true));

    const tickCutoff = dataNowMs - days.tickDays * DAY_MS;
    const logCutoff = dataNowMs - days.logDays * DAY_MS;
    const ticks = await deleteInBatches(storage, "DELETE FROM ticks WHERE id IN (SELECT id FROM ticks WHERE ts < ? ORDER BY id LIMIT ?)", [tickCutoff]);
    const auditLog = await pruneAuditLog(storage, logCutoff);
    const riskRejections = await deleteInBatches(
      storage, "DELETE FROM risk_rejections WHERE id IN (SELECT id FROM risk_rejections WHERE time < ? ORDER BY id LIMIT ?)", [logCutoff],
    );
    const signals = await deleteInBatches(
      storage, "DELETE FROM trading_signals WHERE id IN (SELECT id FROM trading_signals WHERE time < ? ORDER BY time LIMIT ?)", [logCutoff],
    );
    const closed = await this.pruneClosedPositions(dataNowMs - days.closedPositionDays * DAY_MS);

    // A failed archive waits for the next hourly run rather than hitting R2 every minute while it is down.
    const archiveDone = archive === null || !("complete" in archive) || archive.complete;
    const complete = archiveDone && [ticks, auditLog, riskRejections, signals].every((r) => r.complete) && closed.complete;
    if (complete) store.putState(LAST_RUN_KEY, wallMs);
    const report: PairRetentionReport = {
      ran: true,
      complete,
      archive,
      deleted: {
        ticks: ticks.deleted,
        auditLog: auditLog.deleted,
        riskRejections: riskRejections.deleted,
        signals: signals.deleted,
        positions: closed.positions,
        orders: closed.orders,
        fills: closed.fills,
      },
    };
    logEvent("info", "retention.pair", { pair: this.d.pair, complete, archive, ...report.deleted });
    return report;
  }

  private async archive(nowMs: number): Promise<PairRetentionReport["archive"]> {
    const bucket = this.d.lake();
    if (!bucket) return { skipped: "no_bucket" };
    try {
      return await archiveClosedCandles(this.d.store, bucket, this.d.pair, nowMs);
    } catch (err) {
      // The candles stay in SQLite (the watermark did not move); the next run retries.
      logEvent("error", "retention.archive_failed", { pair: this.d.pair, error: String(err) });
      return { error: String(err) };
    }
  }

  /**
   * Positions CLOSED before `cutoffMs`, then the orders (filled or rejected,
   * never in the outbox, never working at the broker) and fills that belong
   * to no remaining position. Fills are linked to positions only through the
   * strategy and time (a reversing fill closes one position and opens the
   * next), so per strategy the bound is the earlier of the cutoff and the
   * opening of its oldest remaining position: an order goes, with its fills
   * and its paper-broker record, when it was created before that bound and
   * none of its fills is at or after it. An open position therefore keeps
   * every order and fill since it opened.
   */
  private async pruneClosedPositions(cutoffMs: number): Promise<BatchedDelete & { positions: number; orders: number; fills: number }> {
    const { storage, orders } = this.d;
    const sql = storage.sql;
    const positions = await inBatches((batchRows) =>
      storage.transactionSync(() => {
        const rows = sql
          .exec<{ id: string; net: number }>(
            `SELECT id, json_extract(json, '$.realisedPnlAccountCents') - json_extract(json, '$.commissionAccountCents') AS net
             FROM positions WHERE status = 'CLOSED' AND COALESCE(json_extract(json, '$.closedAt'), updated_at) < ? LIMIT ?`,
            cutoffMs, batchRows,
          )
          .toArray();
        if (rows.length === 0) return 0;
        orders.carryPrunedRealised(rows.reduce((sum, r) => sum + r.net, 0));
        for (const r of rows) sql.exec("DELETE FROM positions WHERE id = ?", r.id);
        return rows.length;
      }),
    );
    if (!positions.complete) return { ...positions, positions: positions.deleted, orders: 0, fills: 0 };

    let fills = 0;
    let deletedOrders = 0;
    const strategies = sql.exec<{ s: string }>("SELECT DISTINCT strategy_id AS s FROM orders WHERE created_at < ?", cutoffMs).toArray();
    for (const { s } of strategies) {
      const oldestRemaining = sql
        .exec<{ t: number | null }>("SELECT MIN(json_extract(json, '$.openedAt')) AS t FROM positions WHERE strategy_id = ?", s)
        .one().t;
      const bound = Math.min(cutoffMs, oldestRemaining ?? Number.POSITIVE_INFINITY);
      const run = await inBatches((batchRows) =>
        storage.transactionSync(() => {
          const ids = sql
            .exec<{ id: string }>(
              `SELECT o.client_order_id AS id FROM orders o
               WHERE o.strategy_id = ? AND o.created_at < ? AND o.status IN ('filled', 'rejected')
                 AND NOT EXISTS (SELECT 1 FROM outbox x WHERE x.client_order_id = o.client_order_id)
                 AND NOT EXISTS (SELECT 1 FROM fills f WHERE f.client_order_id = o.client_order_id AND f.ts >= ?)
               LIMIT ?`,
              s, bound, bound, batchRows,
            )
            .toArray();
          for (const { id } of ids) {
            sql.exec("DELETE FROM fills WHERE client_order_id = ?", id);
            fills += changes(sql);
            sql.exec("DELETE FROM paper_orders WHERE client_order_id = ? AND status != 'working'", id);
            sql.exec("DELETE FROM orders WHERE client_order_id = ?", id);
          }
          return ids.length;
        }),
      );
      deletedOrders += run.deleted;
      if (!run.complete) return { deleted: positions.deleted, complete: false, positions: positions.deleted, orders: deletedOrders, fills };
    }
    return { deleted: positions.deleted, complete: true, positions: positions.deleted, orders: deletedOrders, fills };
  }
}
