/**
 * The portfolio side of `npm run backtest`: `--config FILE` (a request body of
 * either shape, exactly what `POST /api/backtest/run` takes) or the shorthand
 * `--pairs EUR_USD,USD_JPY --strategy KIND [--param K=V] [--limit K=V]`, which
 * puts the one strategy on every pair. `--sweep KEY=V1,V2` runs a grid over
 * any strategy's parameter or any limit (portfolio-sweep.ts keys), on worker
 * threads over every core (`--threads`), with `--walk-forward N` as for one
 * pair. Parsing, the run, and what the terminal shows; scripts/backtest.ts
 * dispatches here.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import * as v from "valibot";
import { BacktestRequest, PortfolioBacktestRequest, type PortfolioBacktestRequestInput } from "../schemas/backtest.ts";
import { issuesToDetails } from "../schemas/common.ts";
import type { LakeProgress } from "../src/replay/lake-reader.ts";
import { portfolioFromLake } from "../src/replay/lake-run.ts";
import { applyCombination, inProcessRunner, sweepPortfolio, walkForwardPortfolio, type PortfolioRunner } from "../src/replay/portfolio-sweep.ts";
import { expandGrid, type Objective, type ParamGrid, type SweepResult, type WalkForwardResult } from "../src/replay/sweep.ts";
import { numberFlag, readFlags, sweepOptions, UsageError } from "./backtest-args.ts";
import { day, fmt, reportLines, sweepLines, walkForwardLines } from "./summary-lines.ts";
import { defaultThreads, threadRunner } from "./sweep-pool.ts";
import type { PortfolioBacktestResult } from "../src/replay/portfolio-result.ts";
import { buildPortfolioReport, saveReport, type SavedReport } from "../src/report/report.ts";
import type { DataBucket } from "./data-bucket.ts";

export interface PortfolioCliOptions {
  request: PortfolioBacktestRequest;
  grid: ParamGrid | null;
  objective: Objective;
  walkForwardFolds: number | null;
  inSamplePct: number;
  /** Worker threads for a sweep; 1 runs it in this process; null: chosen by the grid's size (sweepThreads). */
  threads: number | null;
  outDir: string | null;
  json: boolean;
  remote: boolean;
}

const VALUE_FLAGS = new Set([
  "--config", "--pairs", "--from", "--to", "--strategy", "--units", "--account-currency", "--balance",
  "--spread-pips", "--financing-long", "--financing-short", "--out", "--objective", "--walk-forward", "--in-sample", "--threads",
]);
const SWITCHES = new Set(["--json", "--remote", "--no-report", "--ticks"]);
/** Flags that only shape a request: with --config the file is the whole request. */
const REQUEST_FLAGS = ["--pairs", "--from", "--to", "--strategy", "--param", "--units", "--limit", "--account-currency", "--balance", "--spread-pips", "--financing-long", "--financing-short", "--ticks"];

/** Whether these arguments ask for a portfolio (or a request from a file) rather than one pair. */
export function isPortfolioArgs(argv: readonly string[]): boolean {
  return argv.includes("--config") || argv.includes("--pairs");
}

function issuesText(issues: readonly v.BaseIssue<unknown>[]): string {
  return issuesToDetails(issues)
    .map((i) => `${i.path || "request"}: ${i.message}`)
    .join("; ");
}

/**
 * The portfolio request these arguments give; a --config file holding the
 * single-pair shape comes back as that request (`single`), to run as one.
 */
export function parsePortfolioArgs(argv: readonly string[], root: string, readFile: (file: string) => string = (f) => readFileSync(f, "utf8")): { portfolio: PortfolioCliOptions } | { single: BacktestRequest; outDir: string | null; json: boolean; remote: boolean } {
  const flags = readFlags(argv, VALUE_FLAGS, new Set(["--param", "--limit"]), SWITCHES);
  const single = flags.values;
  const params = flags.keyed.get("--param") ?? {};
  const limits = flags.keyed.get("--limit") ?? {};
  const outDir = flags.given.has("--no-report") ? null : path.resolve(single.get("--out") ?? path.join(root, "reports"));
  const sweep = sweepOptions(flags);
  let threads: number | null = null;
  if (single.has("--threads")) {
    const text = single.get("--threads") as string;
    threads = Number(text);
    if (!(Number.isInteger(threads) && threads >= 1)) throw new UsageError(`--threads must be a whole number >= 1, got '${text}'`);
  }
  const run = { ...sweep, threads, outDir, json: flags.given.has("--json"), remote: flags.given.has("--remote") };
  let body: unknown;
  const config = single.get("--config");
  if (config !== undefined) {
    const extra = REQUEST_FLAGS.filter((f) => flags.given.has(f));
    if (extra.length > 0) throw new UsageError(`--config holds the whole request: drop ${extra.join(", ")}`);
    let text: string;
    try {
      text = readFile(config);
    } catch (err) {
      throw new UsageError(`--config ${config}: ${(err as Error).message}`);
    }
    try {
      body = JSON.parse(text);
    } catch (err) {
      throw new UsageError(`--config ${config} is not JSON: ${(err as Error).message}`);
    }
    if (body === null || typeof body !== "object" || !("pairs" in body)) {
      if (sweep.grid) throw new UsageError("--config with one pair: sweep it with --pair ... --sweep instead");
      const parsed = v.safeParse(BacktestRequest, body);
      if (!parsed.success) throw new UsageError(`--config ${config}: ${issuesText(parsed.issues)}`);
      return { single: parsed.output, outDir, json: run.json, remote: run.remote };
    }
  } else {
    for (const required of ["--from", "--to"]) if (!single.has(required)) throw new UsageError(`${required} is required`);
    const num = (flag: string): number | undefined => {
      const text = single.get(flag);
      return text === undefined ? undefined : numberFlag(flag, text);
    };
    const kind = single.get("--strategy") ?? "sma-cross";
    const spread = single.get("--spread-pips");
    const input: PortfolioBacktestRequestInput = {
      from: single.get("--from") as string,
      to: single.get("--to") as string,
      pairs: (single.get("--pairs") as string).split(",").map((pair) => ({ pair: pair.trim(), strategies: [{ id: kind, kind, units: num("--units") ?? 100_000, params }] })),
      ...(Object.keys(limits).length > 0 ? { limits: limits as PortfolioBacktestRequestInput["limits"] } : {}),
      ...(single.has("--account-currency") ? { accountCurrency: single.get("--account-currency") as string } : {}),
      initialBalance: num("--balance") ?? 100_000,
      data: flags.given.has("--ticks") ? "ticks" : "candles",
      ...(spread === undefined ? {} : { spreadPips: spread === "data" ? null : num("--spread-pips") }),
      financingLongPct: num("--financing-long") ?? 0,
      financingShortPct: num("--financing-short") ?? 0,
    };
    body = input;
  }
  const parsed = v.safeParse(PortfolioBacktestRequest, body);
  if (!parsed.success) throw new UsageError(issuesText(parsed.issues));
  // A sweep written in the request (as POST /api/backtest/run takes it) runs here too, unless --sweep replaces it.
  const spec = parsed.output.sweep;
  if (spec && !sweep.grid) return { portfolio: { request: parsed.output, ...run, grid: spec.grid, objective: single.has("--objective") ? sweep.objective : spec.objective } };
  return { portfolio: { request: parsed.output, ...run } };
}


/** Combinations a worker thread should have at least: each worker reads and decodes the data again (bench portfolio-replay). */
export const COMBINATIONS_PER_THREAD_MIN = 16;

/**
 * Threads for a sweep of `combinations` when --threads is not given: every
 * core, but no more than gives each worker COMBINATIONS_PER_THREAD_MIN (on 2
 * cores 32 sma-cross combinations ran as fast on 2 threads as in one pass,
 * 8 ran slower); 1 runs the sweep in one pass in this process.
 */
export function sweepThreads(combinations: number, cores: number): number {
  return Math.max(1, Math.min(cores, Math.floor(combinations / COMBINATIONS_PER_THREAD_MIN)));
}

export function portfolioReportName(request: PortfolioBacktestRequest): string {
  const pairs = request.pairs.length <= 4 ? request.pairs.map((p) => p.pair).join("-") : `${request.pairs.length}-pairs`;
  return `portfolio_${pairs}_${day(request.from)}_${day(request.to)}`;
}

export interface PortfolioOutcome {
  result: PortfolioBacktestResult;
  sweep: SweepResult | null;
  walkForward: WalkForwardResult | null;
  report: SavedReport | null;
}

export async function runPortfolioCli(options: PortfolioCliOptions, bucket: DataBucket, progress: (label: string, p: LakeProgress) => void): Promise<PortfolioOutcome> {
  const { request, grid } = options;
  const threads = options.threads ?? sweepThreads(grid === null ? 1 : expandGrid(grid).length, defaultThreads());
  const runner: PortfolioRunner = threads > 1 ? threadRunner(bucket, threads) : inProcessRunner(bucket);
  let sweep: SweepResult | null = null;
  let walkForward: WalkForwardResult | null = null;
  let final = request;
  if (grid && options.walkForwardFolds !== null) {
    const folds = options.walkForwardFolds;
    walkForward = await walkForwardPortfolio(request, grid, { folds, inSamplePct: options.inSamplePct, objective: options.objective }, runner, (fold, phase, p) => progress(`fold ${fold}/${folds} ${phase}`, p));
  } else if (grid) {
    sweep = await sweepPortfolio(request, grid, options.objective, runner, (p) => progress(threads > 1 ? `sweep (${threads} threads)` : "sweep", p));
    const best = sweep.rows[0];
    if (!best) throw new Error(`no valid combination in the grid: ${sweep.invalid.map((i) => i.reason).join("; ")}`);
    final = (applyCombination(request, best.params) as { ok: true; request: PortfolioBacktestRequest }).request;
  }
  // The report's full run: the request itself, the sweep's winner, or (walk-forward) the base parameters.
  const result = await portfolioFromLake(bucket, final, (p) => progress("portfolio", p));
  let report: PortfolioOutcome["report"] = null;
  if (options.outDir !== null) {
    const built = buildPortfolioReport(result, { ...(sweep ? { sweep } : {}), ...(walkForward ? { walkForward } : {}) });
    const name = `${portfolioReportName(request)}${walkForward ? "_walk-forward" : sweep ? "_sweep" : ""}`;
    report = await saveReport(options.outDir, name, built, bucket);
  }
  return { result, sweep, walkForward, report };
}

/** The --json object: headline figures, per pair and strategy; trades and curves are in the report. */
export function portfolioJsonSummary(outcome: PortfolioOutcome): Record<string, unknown> {
  const r = outcome.result;
  return {
    kind: "portfolio",
    from: new Date(r.settings.from).toISOString(),
    to: new Date(r.settings.to).toISOString(),
    accountCurrency: r.accountCurrency,
    bars: r.bars,
    tradeCount: r.tradeCount,
    pnlAccount: r.pnlAccount,
    financingAccount: r.financingAccountCents / 100,
    refusals: r.refusals,
    tradingStates: { reducingMs: r.tradingStates.reducingMs, haltedMs: r.tradingStates.haltedMs, changeCount: r.tradingStates.changeCount },
    metrics: r.metrics,
    pairs: r.pairs.map((p) => ({ pair: p.pair, tradeCount: p.tradeCount, pnlAccount: p.pnlAccount, refusals: p.refusals, strategies: p.strategies.map((s) => ({ strategyId: s.strategyId, kind: s.kind, tradeCount: s.tradeCount, pnlAccount: s.pnlAccount, sharpe: s.metrics.sharpe })) })),
    ...(outcome.sweep ? { sweep: outcome.sweep } : {}),
    ...(outcome.walkForward ? { walkForward: outcome.walkForward } : {}),
    ...(outcome.report ? { report: outcome.report } : {}),
  };
}

/** The terminal's summary, within 80 columns. */
export function portfolioSummaryTable(outcome: PortfolioOutcome): string {
  const r = outcome.result;
  const m = r.metrics;
  const c = r.accountCurrency;
  const refusals = Object.entries(r.refusals).map(([k, n]) => `${k} ${n}`).join(", ") || "none";
  const rows: [string, string][] = [
    ["portfolio", `${r.pairs.length} pairs, ${r.pairs.reduce((n, p) => n + p.strategies.length, 0)} strategies, limits ${r.settings.limits ? "on" : "off"}`],
    ["range", `${day(r.settings.from)} .. ${day(r.settings.to)} (${r.bars.toLocaleString("en-US")} bars)`],
    ["trades", `${r.tradeCount} (${m.wins} won, ${m.losses} lost, win rate ${fmt(m.winRate * 100, 1)}%)`],
    [`P&L ${c}`, `${fmt(r.pnlAccount)} (financing ${fmt(r.financingAccountCents / 100)})`],
    ["total return / CAGR", `${fmt(m.totalReturnPct)}% / ${m.cagrPct === null ? "-" : `${fmt(m.cagrPct)}%`}`],
    ["Sharpe / Sortino", `${fmt(m.sharpe)} / ${fmt(m.sortino)}`],
    ["max drawdown", `${fmt(m.maxDrawdownAccountCents / 100)} ${c} (${fmt(m.maxDrawdownPct)}%)`],
    ["refused", refusals],
    ["REDUCING / HALTED", `${fmt(r.tradingStates.reducingMs / 86_400_000, 1)} / ${fmt(r.tradingStates.haltedMs / 86_400_000, 1)} days`],
  ];
  const lines = rows.map(([k, val]) => `${k.padEnd(20)} ${val}`.slice(0, 80));
  lines.push("", "pair     strategy".padEnd(34) + "trades".padStart(7) + `P&L ${c}`.padStart(14) + "Sharpe".padStart(9) + "maxDD%".padStart(8));
  for (const p of r.pairs) {
    for (const s of p.strategies) {
      lines.push(`${p.pair}  ${s.strategyId}`.slice(0, 33).padEnd(34) + String(s.tradeCount).padStart(7) + fmt(s.pnlAccount).padStart(14) + fmt(s.metrics.sharpe).padStart(9) + fmt(s.metrics.maxDrawdownPct).padStart(8));
    }
  }
  if (outcome.sweep) lines.push(...sweepLines(outcome.sweep, c));
  if (outcome.walkForward) lines.push(...walkForwardLines(outcome.walkForward, c));
  lines.push(...reportLines(outcome.report));
  return lines.join("\n");
}
