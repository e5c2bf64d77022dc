/**
 * Backtest from the data lake (the R2 bucket DATA, local under STATE_DIR).
 *
 *   npm run backtest -- --pair EUR_USD --from 2018-01-01 --to 2019-01-01 --strategy sma-cross
 *     [--param fast=20 --param slow=50 ...] [--units 100000] [--ticks] [--spread-pips 1|data]
 *     [--slippage-pips 0] [--commission 0] [--financing-long 0] [--financing-short 0]
 *     [--balance 100000] [--sweep fast=10,20,30 --sweep slow=50,100 [--objective sharpe]]
 *     [--walk-forward 4 [--in-sample 75]] [--out reports] [--no-report] [--json]
 *
 * A portfolio (several pairs under the portfolio's limits): `--config FILE`
 * or `--pairs EUR_USD,USD_JPY ...` (scripts/portfolio-cli.ts).
 *
 * The request is the same valibot schema as `POST /api/backtest/run`
 * (schemas/backtest.ts). Progress goes to stderr; stdout gets a summary table,
 * or with --json one JSON object (tradeCount, pnlQuote, pnlAccount, metrics, ...).
 * A report (JSON + HTML) is written to --out and to R2 under `reports/`.
 * Exit codes: 0 ok, 1 failure, 2 bad arguments.
 */
import path from "node:path";
import { pathToFileURL } from "node:url";
import * as v from "valibot";
import { BacktestRequest, type BacktestRequestInput } from "../schemas/backtest.ts";
import { getInstrument } from "../src/domain/instruments.ts";
import { strategyEntry } from "../src/domain/strategy/catalog.ts";
import { backtestFromLake } from "../src/replay/lake-run.ts";
import type { LakeProgress } from "../src/replay/lake-reader.ts";
import type { BacktestResult } from "../src/replay/result.ts";
import { OBJECTIVES, sweep, walkForward, type Objective, type ParamGrid, type SweepResult, type WalkForwardResult } from "../src/replay/sweep.ts";
import { buildReport, saveReport, type SavedReport } from "../src/report/report.ts";
import { openDataBucket, type DataBucket, type OpenedBucket } from "./data-bucket.ts";
import { ProgressBar } from "./progress-bar.ts";
import { numberFlag, readFlags, sweepOptions, UsageError } from "./backtest-args.ts";
import { day, fmt, reportLines, sweepLines, walkForwardLines } from "./summary-lines.ts";
import { isPortfolioArgs, parsePortfolioArgs, portfolioJsonSummary, portfolioSummaryTable, runPortfolioCli, type PortfolioCliOptions } from "./portfolio-cli.ts";

const ROOT = path.resolve(import.meta.dirname, "..");

export { UsageError };

export const USAGE = `usage: npm run backtest -- --pair EUR_USD --from 2018-01-01 --to 2019-01-01 [options]
  --strategy KIND        a strategy of strategies/ (default sma-cross);
                         npx fxrt strategy list shows them and their parameters
  --param KEY=VALUE      strategy parameter, repeatable (e.g. --param fast=20 --param timeframe=4h);
                         an unknown one is an error (npx fxrt strategy list shows them)
  --units N              position size (default 100000)
  --ticks                replay the pair's imported ticks instead of its 1-minute candles
  --spread-pips N|data   ask = bid + N pips, or the data's own ask (default 1 on candles, data on ticks)
  --slippage-pips N      per fill (default 0)
  --commission N         quote currency per million units (default 0)
  --financing-long PCT   annual rate charged on longs per night held (default 0)
  --financing-short PCT  same for shorts
  --balance USD          initial balance (default 100000)
  --sweep KEY=V1,V2,...  parameter grid, repeatable: runs every combination
  --objective NAME       sweep / walk-forward ranking: ${OBJECTIVES.join(", ")} (default sharpe)
  --walk-forward N       N folds, each optimised on its first --in-sample % (default 75)
  --out DIR              report folder (default reports/); --no-report to skip
  --json                 one JSON object on stdout instead of the table
  --remote               read the real R2 bucket of wrangler.jsonc (needs wrangler login) instead of local R2
  STATE_DIR              local state folder shared with npm start (default .wrangler/state)

portfolio: npm run backtest -- --config portfolio.json   (the body POST /api/backtest/run takes)
       or: npm run backtest -- --pairs EUR_USD,USD_JPY --from 2018-01-01 --to 2019-01-01 [options]
  --pairs A,B,...        the pairs, each running --strategy with its --param and --units
  --limit KEY=VALUE      portfolio limit as PUT /api/admin/limits takes it, repeatable
                         (e.g. --limit maxOpenPositions=2); none given = no portfolio limits
  --account-currency C   the account's currency (default USD)
  --balance N            initial balance in it (default 100000)
  --sweep KEY=V1,V2,...  grid over limits.NAME, STRATEGY.PARAM or PAIR/STRATEGY.PARAM, repeatable
                         (e.g. --sweep sma-cross.fast=10,20 --sweep limits.maxOpenPositions=1,2)
  --threads N            worker threads for a sweep (default: every core, at most one per 16
                         combinations; 1 = one pass in this process)
  --spread-pips, --financing-long, --financing-short, --ticks, --objective, --walk-forward,
  --in-sample, --out, --no-report, --json as above`;

export interface CliOptions {
  request: BacktestRequest;
  grid: ParamGrid | null;
  objective: Objective;
  walkForwardFolds: number | null;
  inSamplePct: number;
  outDir: string | null;
  json: boolean;
  remote: boolean;
}

const VALUE_FLAGS = new Set([
  "--pair", "--from", "--to", "--strategy", "--units", "--spread-pips", "--slippage-pips", "--commission",
  "--financing-long", "--financing-short", "--balance", "--objective", "--walk-forward", "--in-sample", "--out",
]);
const SWITCHES = new Set(["--json", "--remote", "--ticks", "--no-report"]);

export function parseArgs(argv: readonly string[]): CliOptions {
  const flags = readFlags(argv, VALUE_FLAGS, new Set(["--param"]), SWITCHES);
  const single = flags.values;
  const params = flags.keyed.get("--param") ?? {};
  const [json, remote, ticks, noReport] = ["--json", "--remote", "--ticks", "--no-report"].map((f) => flags.given.has(f)) as [boolean, boolean, boolean, boolean];
  for (const required of ["--pair", "--from", "--to"]) if (!single.has(required)) throw new UsageError(`${required} is required`);
  const get = (flag: string): string | undefined => single.get(flag);
  const num = (flag: string): number | undefined => (get(flag) === undefined ? undefined : numberFlag(flag, get(flag) as string));
  const spread = get("--spread-pips");
  const input: BacktestRequestInput = {
    pair: get("--pair") as string,
    from: get("--from") as string,
    to: get("--to") as string,
    strategy: { kind: get("--strategy") ?? "sma-cross", ...(num("--units") !== undefined ? { units: num("--units") } : {}), params },
    data: ticks ? "ticks" : "candles",
    ...(spread === undefined ? {} : { spreadPips: spread === "data" ? null : numberFlag("--spread-pips", spread) }),
    fillModel: { slippagePips: num("--slippage-pips") ?? 0, commissionPerMillion: num("--commission") ?? 0 },
    financingLongPct: num("--financing-long") ?? 0,
    financingShortPct: num("--financing-short") ?? 0,
    initialBalanceUsd: num("--balance") ?? 100_000,
  };
  const parsed = v.safeParse(BacktestRequest, input);
  if (!parsed.success) {
    throw new UsageError(parsed.issues.map((i) => `${i.path?.map((p) => String(p.key)).join(".") || "request"}: ${i.message}`).join("; "));
  }
  const sweep = sweepOptions(flags);
  const known = strategyEntry(parsed.output.strategy.kind)?.paramNames ?? [];
  const unknownSweep = Object.keys(flags.grid).filter((k) => !known.includes(k));
  if (unknownSweep.length > 0) throw new UsageError(`--sweep ${unknownSweep.join(", ")}: not a parameter of ${parsed.output.strategy.kind}; its parameters are: ${known.join(", ")}`);
  return {
    request: parsed.output,
    ...sweep,
    outDir: noReport ? null : path.resolve(get("--out") ?? path.join(ROOT, "reports")),
    json,
    remote,
  };
}


export function reportName(request: BacktestRequest, kind: "run" | "sweep" | "walk-forward"): string {
  const base = `${request.pair}_${request.strategy.id}_${day(request.from)}_${day(request.to)}`;
  return kind === "run" ? base : `${base}_${kind}`;
}

export interface CliOutcome {
  result: BacktestResult;
  sweep: SweepResult | null;
  walkForward: WalkForwardResult | null;
  report: SavedReport | null;
}

/** Run what the options ask for against `bucket`; progress to `progress`. */
export async function runCli(options: CliOptions, bucket: DataBucket, progress: (label: string, p: LakeProgress) => void): Promise<CliOutcome> {
  const { request } = options;
  let sweepResult: SweepResult | null = null;
  let wf: WalkForwardResult | null = null;
  let final = request;
  if (options.grid && options.walkForwardFolds !== null) {
    wf = await walkForward(bucket, request, options.grid, { folds: options.walkForwardFolds, inSamplePct: options.inSamplePct, objective: options.objective }, (fold, phase, p) =>
      progress(`fold ${fold}/${options.walkForwardFolds} ${phase}`, p),
    );
  } else if (options.grid) {
    sweepResult = await sweep(bucket, request, options.grid, options.objective, (p) => progress("sweep", p));
    const best = sweepResult.rows[0];
    if (!best) throw new Error(`no valid combination in the grid: ${sweepResult.invalid.map((i) => i.reason).join("; ")}`);
    final = { ...request, strategy: { ...request.strategy, params: { ...request.strategy.params, ...best.params } } as BacktestRequest["strategy"] };
  }
  // The report's full run: the request itself, or the sweep's winner.
  const result = wf === null ? await backtestFromLake(bucket, final, (p) => progress("backtest", p)) : await backtestFromLake(bucket, request, (p) => progress("full range, base params", p));
  let report: CliOutcome["report"] = null;
  if (options.outDir !== null) {
    const built = buildReport(result, { ...(sweepResult ? { sweep: sweepResult } : {}), ...(wf ? { walkForward: wf } : {}) });
    const name = reportName(request, wf ? "walk-forward" : sweepResult ? "sweep" : "run");
    report = await saveReport(options.outDir, name, built, bucket);
  }
  return { result, sweep: sweepResult, walkForward: wf, report };
}

/** The --json object: the figures scripts read, without the trade list and curve (those are in the report). */
export function jsonSummary(outcome: CliOutcome): Record<string, unknown> {
  const r = outcome.result;
  return {
    pair: r.pair,
    strategyId: r.strategyId,
    params: r.settings.strategy.params,
    from: new Date(r.settings.fromMs).toISOString(),
    to: new Date(r.settings.toMs).toISOString(),
    bars: r.bars,
    candles: r.candles,
    tradeCount: r.tradeCount,
    pnlQuote: r.pnlQuote,
    quoteCurrency: getInstrument(r.pair).quote,
    pnlAccount: r.pnlAccount,
    financingAccount: r.financingAccountCents / 100,
    metrics: r.metrics,
    ...(outcome.sweep ? { sweep: outcome.sweep } : {}),
    ...(outcome.walkForward ? { walkForward: outcome.walkForward } : {}),
    ...(outcome.report ? { report: outcome.report } : {}),
  };
}

export function summaryTable(outcome: CliOutcome): string {
  const r = outcome.result;
  const m = r.metrics;
  const q = getInstrument(r.pair).quote;
  const rows: [string, string][] = [
    ["pair / strategy", `${r.pair} ${r.strategyId} ${JSON.stringify(r.settings.strategy.params)}`],
    ["range", `${day(r.settings.fromMs)} .. ${day(r.settings.toMs)} (${r.bars.toLocaleString("en-US")} bars, ${r.candles.toLocaleString("en-US")} ${r.timeframe} candles)`],
    ["trades", `${r.tradeCount} (${m.wins} won, ${m.losses} lost, win rate ${fmt(m.winRate * 100, 1)}%)`],
    ...(q === "USD" ? [] : ([[`P&L ${q}`, fmt(r.pnlQuote)]] as [string, string][])),
    ["P&L USD", `${fmt(r.pnlAccount)} (financing ${fmt(r.financingAccountCents / 100)})`],
    ["total return / CAGR", `${fmt(m.totalReturnPct)}% / ${m.cagrPct === null ? "-" : `${fmt(m.cagrPct)}%`}`],
    ["Sharpe / Sortino", `${fmt(m.sharpe)} / ${fmt(m.sortino)}`],
    ["max drawdown", `${fmt(m.maxDrawdownAccountCents / 100)} USD (${fmt(m.maxDrawdownPct)}%), ${fmt(m.maxDrawdownDurationMs / 86_400_000, 1)} days`],
    ["profit factor", fmt(m.profitFactor)],
    ["avg win / loss USD", `${fmt(m.avgWinAccountCents / 100)} / ${fmt(m.avgLossAccountCents / 100)}`],
    ["exposure", `${fmt(m.exposurePct, 1)}% of the time`],
  ];
  const lines = rows.map(([k, val]) => `${k.padEnd(20)} ${val}`.slice(0, 80));
  if (outcome.sweep) lines.push(...sweepLines(outcome.sweep, "USD"));
  if (outcome.walkForward) lines.push(...walkForwardLines(outcome.walkForward, "USD"));
  lines.push(...reportLines(outcome.report));
  return lines.join("\n");
}

async function main(): Promise<void> {
  let options: CliOptions | null = null;
  const argv = process.argv.slice(2);
  if (argv.includes("--help") || argv.includes("-h")) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  let portfolio: PortfolioCliOptions | null = null;
  try {
    if (isPortfolioArgs(argv)) {
      const parsed = parsePortfolioArgs(argv, ROOT);
      // A --config file may hold the single-pair shape: it runs as one.
      if ("portfolio" in parsed) portfolio = parsed.portfolio;
      else options = { request: parsed.single, grid: null, objective: "sharpe", walkForwardFolds: null, inSamplePct: 75, outDir: parsed.outDir, json: parsed.json, remote: parsed.remote };
    } else options = parseArgs(argv);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`backtest: ${err.message}\n${USAGE}\n`);
      process.exit(2);
    }
    throw err;
  }
  // wrangler prints notes with console.log: keep stdout for the result alone.
  console.log = console.error;
  const bar = new ProgressBar(process.stderr);
  let lake: OpenedBucket;
  try {
    lake = await openDataBucket({ remote: (portfolio ?? (options as CliOptions)).remote, log: (m) => process.stderr.write(`backtest: ${m}\n`) });
  } catch (err) {
    process.stderr.write(`backtest: ${(err as Error).message}\n`);
    process.exit(1);
  }
  try {
    const onProgress = (label: string, p: LakeProgress): void => bar.update(label, p.rowsRead, p.rowsTotal, `${day(p.atMs)}`);
    if (portfolio !== null) {
      const outcome = await runPortfolioCli(portfolio, lake.bucket, onProgress);
      bar.done();
      process.stdout.write(portfolio.json ? `${JSON.stringify(portfolioJsonSummary(outcome))}\n` : `${portfolioSummaryTable(outcome)}\n`);
    } else if (options !== null) {
      const outcome = await runCli(options, lake.bucket, onProgress);
      bar.done();
      process.stdout.write(options.json ? `${JSON.stringify(jsonSummary(outcome))}\n` : `${summaryTable(outcome)}\n`);
    }
  } catch (err) {
    bar.done();
    process.stderr.write(`backtest: failed: ${(err as Error).message}\n`);
    process.exitCode = 1;
  } finally {
    await lake.dispose();
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  void main();
}
