/**
 * A backtest report: the full result plus the trade aggregates as JSON, and
 * the same as a self-contained HTML page. Deterministic: the same result
 * gives byte-identical files (no clock, no locale, no random ids inside).
 */
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import type { BacktestResult } from "../replay/result.ts";
import type { PortfolioBacktestResult } from "../replay/portfolio-result.ts";
import { aggregateOwnedTrades, aggregateTrades } from "./aggregate.ts";
import { renderReportHtml } from "./html.ts";
import { renderPortfolioHtml } from "./portfolio-html.ts";

export interface Report {
  json: string;
  html: string;
}

export interface ReportExtra {
  sweep?: unknown;
  walkForward?: unknown;
}

export function buildReport(result: BacktestResult, extra?: ReportExtra): Report {
  const aggregates = aggregateTrades([result]);
  const json = JSON.stringify({ result, aggregates, generatedBy: "fxrt", ...extra }, null, 2);
  return { json, html: renderReportHtml({ result, aggregates, ...extra }) };
}

/** The same for a portfolio: its trades grouped across pairs, its own page. */
export function buildPortfolioReport(result: PortfolioBacktestResult, extra?: ReportExtra): Report {
  const aggregates = aggregateOwnedTrades(result.trades);
  const json = JSON.stringify({ result, aggregates, generatedBy: "fxrt", ...extra }, null, 2);
  return { json, html: renderPortfolioHtml({ result, aggregates, ...extra }) };
}

/** Writes `<baseName>.json` (plus a final newline) and `<baseName>.html` into `dir` (created if missing). */
export async function writeReport(dir: string, baseName: string, report: Report): Promise<{ jsonPath: string; htmlPath: string }> {
  // A base name is a file name, not a path: refuse anything that would write elsewhere.
  if (baseName === "" || baseName === "." || baseName === ".." || /[/\\]/.test(baseName)) {
    throw new Error(`writeReport: bad base name ${JSON.stringify(baseName)}`);
  }
  await mkdir(dir, { recursive: true });
  const jsonPath = path.join(dir, `${baseName}.json`);
  const htmlPath = path.join(dir, `${baseName}.html`);
  await writeFile(jsonPath, `${report.json}\n`, "utf8");
  await writeFile(htmlPath, report.html, "utf8");
  return { jsonPath, htmlPath };
}

/** Where a report went: the local files, and its keys in the bucket. */
export interface SavedReport {
  json: string;
  html: string;
  r2Keys: string[];
}

/** A bucket a report is copied to (R2, local or remote). */
export interface ReportBucket {
  put(key: string, value: string, options: { httpMetadata: { contentType: string } }): Promise<unknown>;
}

/** Write the report into `dir` and the same bytes to `bucket` under `reports/`. */
export async function saveReport(dir: string, baseName: string, report: Report, bucket: ReportBucket): Promise<SavedReport> {
  const paths = await writeReport(dir, baseName, report);
  const r2Keys = [`reports/${baseName}.json`, `reports/${baseName}.html`];
  // The same bytes as the local file (writeReport ends it with a newline).
  await bucket.put(r2Keys[0] as string, `${report.json}\n`, { httpMetadata: { contentType: "application/json" } });
  await bucket.put(r2Keys[1] as string, report.html, { httpMetadata: { contentType: "text/html; charset=utf-8" } });
  return { json: paths.jsonPath, html: paths.htmlPath, r2Keys };
}
