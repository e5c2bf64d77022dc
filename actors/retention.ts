/**
 * Time-based retention shared by the actors: how often it runs, how much one
 * run may delete, and the batched DELETE every rule goes through.
 *
 * The cron reaches every actor each minute; retention itself runs at most once
 * an hour (the actor remembers its last complete run), so the minute's call
 * costs one state read. A run deletes in batches of RETENTION_BATCH_ROWS rows
 * and yields between batches, so requests and ticks queued behind it wait for
 * one batch, not for the whole run; at most RETENTION_MAX_BATCHES batches per
 * rule per run. A run that hit that bound is not recorded as complete, so the
 * next minute's cron continues it.
 */

export type { RetentionDays } from "../src/config.ts";

export const DAY_MS = 86_400_000;

/** Retention runs at most this often per actor. */
export const RETENTION_INTERVAL_MS = 3_600_000;

/** Rows one DELETE statement removes at most (about 10-20 ms of SQLite work on a Durable Object). */
export const RETENTION_BATCH_ROWS = 2_000;

/** Batches one rule may run per retention run: at most 100,000 rows per rule per run. */
export const RETENTION_MAX_BATCHES = 50;

/** True when the last complete run is an interval old, never ran, or lies in the future (a clock set back). */
export function retentionDue(lastRunMs: number | undefined, nowMs: number): boolean {
  return lastRunMs === undefined || nowMs - lastRunMs >= RETENTION_INTERVAL_MS || nowMs < lastRunMs;
}

export interface BatchedDelete {
  deleted: number;
  /** False when the batch bound stopped it with rows possibly left. */
  complete: boolean;
}

/** Let queued events run between batches (a Durable Object handles one at a time between awaits). */
const yieldToOthers = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 0));

/**
 * Run `batch` (deletes at most `batchRows` rows, in one transaction, and
 * returns how many) until it deletes fewer than that or the bound is reached.
 */
export async function inBatches(batch: (batchRows: number) => number, maxBatches = RETENTION_MAX_BATCHES, batchRows = RETENTION_BATCH_ROWS): Promise<BatchedDelete> {
  let deleted = 0;
  for (let i = 0; i < maxBatches; i++) {
    if (i > 0) await yieldToOthers();
    const n = batch(batchRows);
    deleted += n;
    if (n < batchRows) return { deleted, complete: true };
  }
  return { deleted, complete: false };
}

/** Rows a DELETE changed (SQLite's own count; a cursor's rowsWritten also counts index entries). */
export function changes(sql: SqlStorage): number {
  return sql.exec<{ n: number }>("SELECT changes() AS n").one().n;
}

/** `statement` is a DELETE whose last parameter is the batch LIMIT. */
export function deleteInBatches(storage: DurableObjectStorage, statement: string, params: readonly SqlStorageValue[]): Promise<BatchedDelete> {
  return inBatches((batchRows) =>
    storage.transactionSync(() => {
      storage.sql.exec(statement, ...params, batchRows);
      return changes(storage.sql);
    }),
  );
}

/** Audit rows older than `cutoffMs` (the audit_log table every actor has). */
export function pruneAuditLog(storage: DurableObjectStorage, cutoffMs: number): Promise<BatchedDelete> {
  return deleteInBatches(storage, "DELETE FROM audit_log WHERE id IN (SELECT id FROM audit_log WHERE at < ? ORDER BY id LIMIT ?)", [cutoffMs]);
}

/** Key (in the actor's synchronous KV storage) of the audit-only actors' last complete run. */
const AUDIT_RETENTION_LAST_RUN_KEY = "retention_last_run_ms";

/**
 * Retention of an actor whose only growing table is its audit log (the
 * Coordinator and the Gatekeeper): rows older than `logDays`, at most hourly.
 * Returns the rows deleted, or null when not due.
 */
export async function runAuditRetentionIfDue(storage: DurableObjectStorage, logDays: number, nowMs: number): Promise<BatchedDelete | null> {
  if (!retentionDue(storage.kv.get<number>(AUDIT_RETENTION_LAST_RUN_KEY), nowMs)) return null;
  const run = await pruneAuditLog(storage, nowMs - logDays * DAY_MS);
  if (run.complete) storage.kv.put(AUDIT_RETENTION_LAST_RUN_KEY, nowMs);
  return run;
}
