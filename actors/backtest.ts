import { DurableObject } from "cloudflare:workers";
import * as v from "valibot";
import { backtestSchemaFor, PortfolioBacktestRequest } from "../schemas/backtest.ts";
import { BACKTEST_MIGRATIONS } from "../migrations/backtest/index.ts";
import { runStoredRequest, type ProgressListener } from "../src/replay/lake-run.ts";
import type { PortfolioBacktestResult } from "../src/replay/portfolio-result.ts";
import { gridCombinations, sweepResult } from "../src/replay/portfolio-sweep.ts";
import { LakeDataError } from "../src/replay/lake-reader.ts";
import type { BacktestResult } from "../src/replay/result.ts";
import { StrategyFaultError } from "../src/replay/backtester.ts";
import { logEvent } from "../src/log.ts";
import { migrate } from "./migrate.ts";

export type BacktestStatus = "queued" | "running" | "done" | "failed";

/** A stored portfolio body with a sweep (raw JSON: its combinations are made on the raw body, which each combination's actor parses again). */
type SweepBody = { pairs: { pair: string; strategies: { id: string; params?: Record<string, unknown> }[] }[]; limits?: unknown; sweep: unknown };

type JobRow = {
  id: string;
  request: string;
  status: BacktestStatus;
  rows_read: number;
  rows_total: number;
  at_ms: number | null;
  attempts: number;
  error_code: string | null;
  error_message: string | null;
  summary: string | null;
  result_key: string | null;
  created_at: number;
  started_at: number | null;
  finished_at: number | null;
};

/** What `GET /api/backtest/:id` shows. */
export interface BacktestJob {
  id: string;
  status: BacktestStatus;
  request: unknown;
  progress: { rowsRead: number; rowsTotal: number; fraction: number; atMs: number | null };
  error: { code: string; message: string } | null;
  /** Headline figures once done (the full result is at /result). */
  summary: Record<string, unknown> | null;
  createdAt: number;
  startedAt: number | null;
  finishedAt: number | null;
}

/** A run that fails this many times (crashes, evictions) is marked failed instead of retried. */
const ATTEMPTS_MAX = 3;

export function resultKey(id: string): string {
  return `backtests/${id}.json`;
}

/** The actor of a sweep's combination: `<sweep id>:<index in the grid>`. */
export function combinationId(sweepId: string, index: number): string {
  return `${sweepId}:${index}`;
}

/** How often a sweep looks at its combinations while they run. */
const SWEEP_POLL_MS = 1_000;

/**
 * One backtest job, run inside the Worker platform over the R2 data lake with
 * the same code as the CLI (backtestFromLake, portfolioFromLake). The request is stored and an
 * alarm runs it, so the HTTP call returns at once and the run gets its own
 * invocation (and CPU budget: about a second per year of 1-minute bars). A
 * run cut short (eviction, crash) restarts from the start when the alarm
 * retries: results are deterministic, so a rerun gives the same bytes.
 * Progress is written after each record batch; the result goes to R2.
 *
 * A portfolio request with a `sweep` spreads its combinations over Backtest
 * actors of their own (one each, `combinationId`), each run like any other
 * job, and gathers them: ranked exactly as a sweep in one process ranks
 * them (portfolio-sweep.ts), with the winner's full result.
 */
export class Backtest extends DurableObject<Env> {
  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    migrate(ctx.storage, BACKTEST_MIGRATIONS);
  }

  /** Store the job and schedule it; calling again with the same id returns the job as it is. */
  async start(id: string, request: unknown): Promise<BacktestJob> {
    const existing = this.row();
    if (existing) return toJob(existing);
    // Validated by the route; checked again here because this is what will run.
    v.parse(backtestSchemaFor(request), request);
    const now = Date.now();
    this.ctx.storage.sql.exec("INSERT INTO job (id, request, status, created_at) VALUES (?, ?, 'queued', ?)", id, JSON.stringify(request), now);
    await this.ctx.storage.setAlarm(now);
    return toJob(this.row() as JobRow);
  }

  status(): BacktestJob | null {
    const row = this.row();
    return row ? toJob(row) : null;
  }

  override async alarm(): Promise<void> {
    const row = this.row();
    if (!row || row.status === "done" || row.status === "failed") return;
    const body: unknown = JSON.parse(row.request);
    if (body !== null && typeof body === "object" && "pairs" in body && "sweep" in body) return this.gatherSweep(row, body as SweepBody);
    const sql = this.ctx.storage.sql;
    if (row.attempts >= ATTEMPTS_MAX) {
      this.fail("retries_exhausted", `the run stopped ${row.attempts} times without finishing`);
      return;
    }
    sql.exec("UPDATE job SET status = 'running', attempts = attempts + 1, started_at = ?, rows_read = 0 WHERE id = ?", Date.now(), row.id);
    try {
      const onProgress: ProgressListener = async (p) => {
        sql.exec("UPDATE job SET rows_read = ?, rows_total = ?, at_ms = ? WHERE id = ?", p.rowsRead, p.rowsTotal, p.atMs, row.id);
        // Let status requests in between batches.
        await new Promise((resolve) => setTimeout(resolve, 0));
      };
      const result = await runStoredRequest(this.env.DATA, body, onProgress);
      const key = resultKey(row.id);
      await this.env.DATA.put(key, JSON.stringify(result), { httpMetadata: { contentType: "application/json" } });
      sql.exec(
        "UPDATE job SET status = 'done', summary = ?, result_key = ?, finished_at = ? WHERE id = ?",
        JSON.stringify(summaryOf(result)),
        key,
        Date.now(),
        row.id,
      );
      logEvent("info", "backtest.done", { id: row.id, tradeCount: result.tradeCount, pnlAccount: result.pnlAccount });
    } catch (err) {
      if (err instanceof LakeDataError) this.fail(err.code, err.message);
      // The strategy's own failure: the same on every attempt, so said at once, in its words.
      else if (err instanceof StrategyFaultError) this.fail("strategy_fault", err.message);
      else if (err instanceof RangeError || err instanceof v.ValiError) this.fail("invalid_request", (err as Error).message);
      else throw err; // unexpected: let the alarm retry (attempts are counted)
    }
  }

  /**
   * One look at a sweep: every valid combination started on its own actor
   * (again each time: start is idempotent, so a lost start heals), their
   * progress summed; done when all are, failed when one is.
   */
  private async gatherSweep(row: JobRow, body: SweepBody): Promise<void> {
    const sql = this.ctx.storage.sql;
    let request: PortfolioBacktestRequest;
    try {
      request = v.parse(PortfolioBacktestRequest, body);
    } catch (err) {
      this.fail("invalid_request", (err as Error).message);
      return;
    }
    const { sweep: _spec, ...base } = body;
    const { valid, invalid } = gridCombinations(base, request.sweep?.grid ?? {});
    if (valid.length === 0) {
      this.fail("invalid_request", `no valid combination in the grid: ${invalid.map((i) => i.reason).join("; ").slice(0, 500)}`);
      return;
    }
    if (row.status === "queued") sql.exec("UPDATE job SET status = 'running', started_at = ? WHERE id = ?", Date.now(), row.id);
    const stubs = valid.map((c) => this.env.Backtest.getByName(combinationId(row.id, c.index)));
    const jobs = (await Promise.all(stubs.map((stub, i) => stub.start(combinationId(row.id, (valid[i] as { index: number }).index), valid[i]?.request)))) as BacktestJob[];
    const read = jobs.reduce((n, j) => n + j.progress.rowsRead, 0);
    const total = jobs.reduce((n, j) => n + j.progress.rowsTotal, 0);
    sql.exec("UPDATE job SET rows_read = ?, rows_total = ? WHERE id = ?", read, total, row.id);
    const failed = jobs.findIndex((j) => j.status === "failed");
    if (failed >= 0) {
      const job = jobs[failed] as BacktestJob;
      this.fail(job.error?.code ?? "failed", `combination ${JSON.stringify(valid[failed]?.params)}: ${job.error?.message ?? "failed"}`);
      return;
    }
    if (jobs.some((j) => j.status !== "done")) {
      await this.ctx.storage.setAlarm(Date.now() + SWEEP_POLL_MS);
      return;
    }
    const texts = await Promise.all(stubs.map((stub) => stub.result()));
    const lost = texts.findIndex((t) => t === null);
    if (lost >= 0) {
      // Done without a stored result (R2 lost it): said, not left running for ever.
      this.fail("result_missing", `combination ${JSON.stringify(valid[lost]?.params)}: done, but its result is not in R2`);
      return;
    }
    const runs = valid.map((c, i) => ({ params: c.params, result: JSON.parse(texts[i] as string) as PortfolioBacktestResult }));
    const sweep = sweepResult(request, request.sweep?.objective ?? "sharpe", runs, invalid);
    const best = runs.find((r) => r.params === sweep.rows[0]?.params)?.result as PortfolioBacktestResult;
    const key = resultKey(row.id);
    await this.env.DATA.put(key, JSON.stringify({ kind: "portfolio-sweep", sweep, best }), { httpMetadata: { contentType: "application/json" } });
    const summary = { kind: "portfolio-sweep", combinations: valid.length, invalid: invalid.length, objective: sweep.objective, best: sweep.rows[0] };
    sql.exec("UPDATE job SET status = 'done', summary = ?, result_key = ?, finished_at = ? WHERE id = ?", JSON.stringify(summary), key, Date.now(), row.id);
    logEvent("info", "backtest.sweep_done", { id: row.id, combinations: valid.length });
  }

  /** The stored result, or null when not (yet) there. */
  async result(): Promise<string | null> {
    const row = this.row();
    if (!row?.result_key) return null;
    const object = await this.env.DATA.get(row.result_key);
    return object ? object.text() : null;
  }

  private fail(code: string, message: string): void {
    this.ctx.storage.sql.exec("UPDATE job SET status = 'failed', error_code = ?, error_message = ?, finished_at = ? WHERE status != 'done'", code, message, Date.now());
    logEvent("warn", "backtest.failed", { code, message });
  }

  private row(): JobRow | undefined {
    return this.ctx.storage.sql.exec<JobRow>("SELECT * FROM job LIMIT 1").toArray()[0];
  }
}

export function summaryOf(result: BacktestResult | PortfolioBacktestResult): Record<string, unknown> {
  if ("kind" in result) {
    return {
      kind: result.kind,
      pairs: result.pairs.map((p) => ({ pair: p.pair, strategies: p.strategies.map((s) => s.strategyId), tradeCount: p.tradeCount, pnlAccount: p.pnlAccount })),
      accountCurrency: result.accountCurrency,
      bars: result.bars,
      tradeCount: result.tradeCount,
      pnlAccount: result.pnlAccount,
      refusals: result.refusals,
      metrics: result.metrics,
    };
  }
  return {
    pair: result.pair,
    strategyId: result.strategyId,
    bars: result.bars,
    candles: result.candles,
    tradeCount: result.tradeCount,
    pnlQuote: result.pnlQuote,
    pnlAccount: result.pnlAccount,
    metrics: result.metrics,
  };
}

function toJob(row: JobRow): BacktestJob {
  return {
    id: row.id,
    status: row.status,
    request: JSON.parse(row.request),
    progress: { rowsRead: row.rows_read, rowsTotal: row.rows_total, fraction: row.rows_total > 0 ? row.rows_read / row.rows_total : 0, atMs: row.at_ms },
    error: row.error_code ? { code: row.error_code, message: row.error_message ?? "" } : null,
    summary: row.summary ? JSON.parse(row.summary) : null,
    createdAt: row.created_at,
    startedAt: row.started_at,
    finishedAt: row.finished_at,
  };
}
