/**
 * `import` and `backtest`: the data lake commands, scripts/import.ts and
 * scripts/backtest.ts behind this CLI's options and output. Both work on the
 * R2 bucket directly (local under STATE_DIR, or --remote), not through the
 * runtime's HTTP API; their modules load Miniflare, so they are imported only
 * when one of these commands runs.
 */
import type { ProgressBar as ProgressBarType } from "../progress-bar.ts";
import { CliFailure, num, pairs as keyValues, UsageError, type Ctx } from "./common.ts";

export const IMPORT_HELP = `usage: fxrt import <FILE> --pair PAIR [--tz ZONE] [--remote] [--json]

Import a history file (.csv, .csv.gz, or .zip as histdata.com serves it) into
the data lake: 1-minute candles per UTC year, and for tick files the ticks per
month. Formats are detected from the first data line: histdata M1 bars (bid
only), LEAN bid/ask M1 bars, histdata / LEAN / TrueFX ticks.
  --pair PAIR   instrument, e.g. EUR_USD
  --tz ZONE     clock of timestamps without an offset: EST (default, UTC-5 all
                year), UTC, +02:00, or an IANA zone such as America/New_York
  --remote      the real R2 bucket of wrangler.jsonc (needs wrangler login)
Local R2 is the one \`npm start\` serves: STATE_DIR (default .wrangler/state).
Progress on stderr; a summary (or with --json one object) on stdout.`;

export const BACKTEST_HELP = `usage: fxrt backtest --pair PAIR --from DATE --to DATE [options]

Backtest from the data lake with the live strategy, risk and fill code. Dates
are YYYY-MM-DD (UTC) or ISO; --to is exclusive.
  --strategy KIND        a strategy of strategies/ (default sma-cross);
                         fxrt strategy list shows them and their parameters
  --param KEY=VALUE      strategy parameter, repeatable (--param fast=20);
                         an unknown one is an error
  --units N              position size (default 100000)
  --ticks                replay imported ticks instead of 1-minute candles
  --spread-pips N|data   ask = bid + N pips, or the data's ask
  --slippage-pips N      per fill (default 0)
  --commission N         quote currency per million units (default 0)
  --financing-long PCT   annual rate on longs per night held (default 0)
  --financing-short PCT  same for shorts
  --balance USD          initial balance (default 100000)
  --sweep KEY=V1,V2,...  parameter grid, repeatable
  --objective NAME       sharpe (default), pnl, profitFactor, sortino
  --walk-forward N       N folds, optimised on the first --in-sample % (75)
  --out DIR              report folder (default reports/); --no-report to skip
  --remote               the real R2 bucket (needs wrangler login)
  --json                 one JSON object on stdout instead of the table
Progress on stderr; exit 1 when the run fails (e.g. no data for the range).`;

/** ProgressBar needs a stream: this one writes to the CLI's stderr. */
function progressStream(ctx: Ctx): NodeJS.WriteStream {
  const raw = ctx.io.errWrite;
  const stream = {
    isTTY: raw !== undefined,
    write(chunk: string): boolean {
      if (raw) raw(chunk);
      else ctx.io.err(chunk.replace(/\n$/, ""));
      return true;
    },
  };
  return stream as unknown as NodeJS.WriteStream;
}

export async function importCommand(ctx: Ctx, args: readonly string[]): Promise<number> {
  const mod = await import("../import.ts");
  let parsed;
  try {
    parsed = mod.parseArgs([...args]);
  } catch (err) {
    if (err instanceof mod.UsageError) throw new UsageError(err.message, "import");
    throw err;
  }
  const stateDir = ctx.env.STATE_DIR;
  let summary;
  try {
    summary = await mod.importFile({ ...parsed, ...(stateDir ? { stateDir } : {}), log: (m) => ctx.io.err(m) });
  } catch (err) {
    if (err instanceof mod.UsageError) throw new UsageError(err.message, "import");
    throw new CliFailure(`import failed: ${(err as Error).message}`);
  }
  if (ctx.json) {
    ctx.io.out(JSON.stringify(summary));
    return 0;
  }
  const s = summary;
  const range = s.partitions.length > 0 ? `${day(Math.min(...s.partitions.map((p) => p.fromMs)))} .. ${day(Math.max(...s.partitions.map((p) => p.toMs)))}` : "-";
  const rows: [string, string][] = [
    ["file", `${s.source} (${s.format}, clock ${s.tz})`],
    ["pair / target", `${s.pair}, ${s.target} R2`],
    [s.kind === "m1" ? "bars" : "ticks", `${num(s.rows, 0)} kept, ${num(s.bad, 0)} bad, ${num(s.duplicates, 0)} duplicates, ${num(s.nonMonotonic, 0)} out of order`],
    ["1m candles", `${num(s.candles, 0)} (${num(s.replaced, 0)} replaced stored rows), ${range}`],
  ];
  if (s.kind === "ticks") rows.push(["tick partitions", `${s.tickPartitions.length} (${num(s.tickReplaced, 0)} stored ticks replaced, ${num(s.crossed, 0)} crossed)`]);
  rows.push(["candle partitions", s.partitions.map((p) => `${p.year}: ${num(p.rows, 0)}`).join(", ") || "-"]);
  rows.push(["time", `${num(s.ms / 1000, 1)} s`]);
  for (const line of keyValues(rows)) ctx.io.out(line);
  for (const sample of s.badSamples.slice(0, 3)) ctx.io.out(`  bad row ${sample}`.slice(0, 80));
  return 0;
}

const day = (ms: number): string => new Date(ms).toISOString().slice(0, 10);

export async function backtestCommand(ctx: Ctx, args: readonly string[]): Promise<number> {
  const [bt, { ProgressBar }, { openDataBucket }] = await Promise.all([import("../backtest.ts"), import("../progress-bar.ts"), import("../data-bucket.ts")]);
  let options;
  try {
    options = bt.parseArgs(args);
  } catch (err) {
    if (err instanceof bt.UsageError) throw new UsageError(err.message, "backtest");
    throw err;
  }
  const stateDir = ctx.env.STATE_DIR;
  let lake;
  try {
    lake = await openDataBucket({ remote: options.remote, ...(stateDir ? { stateDir } : {}), log: (m) => ctx.io.err(`backtest: ${m}`) });
  } catch (err) {
    throw new CliFailure(`backtest: ${(err as Error).message}`);
  }
  const bar: ProgressBarType = new ProgressBar(progressStream(ctx));
  try {
    const outcome = await bt.runCli(options, lake.bucket, (label, p) => bar.update(label, p.rowsRead, p.rowsTotal, day(p.atMs)));
    bar.done();
    if (ctx.json) ctx.io.out(JSON.stringify(bt.jsonSummary(outcome)));
    else for (const line of bt.summaryTable(outcome).split("\n")) ctx.io.out(line);
    return 0;
  } catch (err) {
    bar.done();
    throw new CliFailure(`backtest failed: ${(err as Error).message}`);
  } finally {
    await lake.dispose();
  }
}
