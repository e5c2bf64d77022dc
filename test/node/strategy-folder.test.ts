/**
 * A strategy is a file in strategies/ and nothing else: in a temporary copy
 * of the project, one new file (strategies/copy-breakout.ts) is listed by the
 * copy's CLI, backtested by it over real history, and accepted by the copy's
 * runtime through PUT /api/admin/pairs/:pair/strategies, with no other file
 * of the copy changed (build outputs are git-ignored). A misspelt parameter
 * is refused by the CLI (exit 2) and the API (400) with the valid names.
 */
import { execFile, execFileSync } from "node:child_process";
import { createReadStream, existsSync } from "node:fs";
import { copyFile, mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { createGunzip } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Runtime } from "../../scripts/runtime.ts";
import { STRATEGY_NAMES } from "../../src/domain/strategy/catalog.ts";

const ROOT = path.resolve(import.meta.dirname, "../..");
const HISTDATA = path.join(path.resolve(import.meta.dirname, "../../../shared/data"), "m1_histdata", "DAT_ASCII_EURUSD_M1_2018.csv.gz");
const present = existsSync(HISTDATA);
if (!present) console.warn(`strategy-folder: skipped, no histdata file at ${HISTDATA}`);

const KEY = "strategy-folder-admin-key";
const NAME = "copy-breakout";
const FILE = `strategies/${NAME}.ts`;
/** Bars up to (not including) this histdata day (New York clock) are imported: January 2018 and a few days. */
const SLICE_END = "20180206";

const STRATEGY_SOURCE = `import { defineStrategy, param, v } from "../src/domain/strategy/index.ts";

/** Long on a close above the previous lookback candles' high, short on a close below their low. */
export default defineStrategy({
  name: ${JSON.stringify(NAME)},
  description: "Channel breakout: long above the last N candles' high, short below their low",
  params: v.object({
    timeframe: param.timeframe("1h"),
    lookback: param.period(20),
  }),
  watch: (p) => ({ timeframes: [p.timeframe], history: p.lookback + 1 }),
  init: () => ({ side: 0 }),
  onCandle(ctx, state) {
    const candles = ctx.candles(ctx.params.timeframe);
    if (candles.length <= ctx.params.lookback) return state;
    const before = candles.slice(0, -1);
    const high = Math.max(...before.map((c) => c.high));
    const low = Math.min(...before.map((c) => c.low));
    const close = ctx.candle.close;
    if (close > high && state.side !== 1) {
      ctx.buy({ reason: "close above the channel", metadata: { high } });
      return { side: 1 };
    }
    if (close < low && state.side !== -1) {
      ctx.sell({ reason: "close below the channel", metadata: { low } });
      return { side: -1 };
    }
    return state;
  },
});
`;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

let tmp: string;
let copy: string;
let stateDir: string;
let runtime: Runtime | undefined;

const childEnv = (): NodeJS.ProcessEnv => ({ ...process.env, CLOUDFLARE_CF_FETCH_ENABLED: "false", WRANGLER_SEND_METRICS: "false", STATE_DIR: stateDir });

/** The copy's CLI launcher as a process, in the copy. */
function fxrt(args: readonly string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [path.join(copy, "bin/fxrt.js"), ...args], { cwd: copy, env: childEnv(), timeout: 60_000, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof (err as { code?: unknown }).code === "number" ? ((err as { code: number }).code) : -1;
      resolve({ code, stdout, stderr });
    });
  });
}

function git(args: readonly string[]): string {
  return execFileSync("git", ["-c", "user.name=strategy-folder test", "-c", "user.email=test@invalid", "-c", "commit.gpgsign=false", ...args], { cwd: copy, encoding: "utf8" });
}

/** The first weeks of the year's histdata bars, as a plain CSV file. */
async function slice(out: string): Promise<number> {
  const lines: string[] = [];
  const input = createReadStream(HISTDATA).pipe(createGunzip());
  const reader = createInterface({ input, crlfDelay: Infinity });
  for await (const line of reader) {
    if (line.slice(0, 8) >= SLICE_END) break;
    if (line.trim() !== "") lines.push(line);
  }
  reader.close();
  input.destroy();
  await writeFile(out, `${lines.join("\n")}\n`);
  return lines.length;
}

async function api(method: string, route: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  if (!runtime) throw new Error("no runtime");
  const res = await fetch(`${runtime.url}${route}`, {
    method,
    headers: { "x-api-key": KEY, ...(body === undefined ? {} : { "content-type": "application/json" }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

describe.skipIf(!present)("a strategy file in strategies/, and nothing else, in a copy of the project", () => {
  beforeAll(async () => {
    process.env.CLOUDFLARE_CF_FETCH_ENABLED = "false";
    tmp = await mkdtemp(path.join(tmpdir(), "fxrt-strategy-folder-"));
    copy = path.join(tmp, "project");
    stateDir = path.join(tmp, "state");
    await mkdir(stateDir);
    // The project's files (tracked, and new ones not yet added), not its build outputs, node_modules or state.
    const listed = execFileSync("git", ["ls-files", "-z", "--cached", "--others", "--exclude-standard"], { cwd: ROOT, encoding: "utf8" }).split("\0").filter((f) => f !== "");
    const files = [...new Set(listed)].filter((f) => existsSync(path.join(ROOT, f)));
    for (const f of files) {
      await mkdir(path.dirname(path.join(copy, f)), { recursive: true });
      await copyFile(path.join(ROOT, f), path.join(copy, f));
    }
    expect(existsSync(path.join(copy, FILE))).toBe(false);
    expect(existsSync(path.join(copy, "build"))).toBe(false);
    await symlink(path.join(ROOT, "node_modules"), path.join(copy, "node_modules"), "dir");
    // A baseline of the copy: every file as copied, committed.
    git(["init", "-q"]);
    // .gitignore's `node_modules/` matches a folder, not this symlink: excluded here, outside the project's files.
    await writeFile(path.join(copy, ".git", "info", "exclude"), "/node_modules\n");
    git(["add", "-A"]);
    git(["commit", "-q", "-m", "the project as copied"]);
    expect(git(["status", "--porcelain", "--untracked-files=all"])).toBe("");
    // The one change: a new strategy file.
    await writeFile(path.join(copy, FILE), STRATEGY_SOURCE);
  }, 120_000);

  afterAll(async () => {
    await runtime?.stop();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it("is listed by the copy's CLI with its parameters (and only there: the project itself has no such strategy)", async () => {
    expect(STRATEGY_NAMES).not.toContain(NAME);
    const json = await fxrt(["strategy", "list", "--json"]);
    expect(json.stderr).toBe("");
    expect(json.code).toBe(0);
    const { strategies } = JSON.parse(json.stdout) as { strategies: { name: string; description: string; params: { name: string }[] }[] };
    expect(strategies.map((s) => s.name)).toEqual(expect.arrayContaining([NAME, "sma-cross", "ema-cross", "rsi-reversion", "trend-pullback"]));
    expect(strategies.find((s) => s.name === NAME)).toEqual({
      name: NAME,
      description: "Channel breakout: long above the last N candles' high, short below their low",
      params: [
        { name: "timeframe", type: "picklist", default: "1h", options: ["1m", "5m", "15m", "1h", "4h", "1D"] },
        { name: "lookback", type: "integer", default: 20, min: 2, max: 500 },
      ],
    });
    const text = await fxrt(["strategy", "list"]);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(new RegExp(`^${NAME}  Channel breakout`, "m"));
    expect(text.stdout).toMatch(/^ {4}lookback=20 \(integer 2\.\.500\)$/m);
  });

  it("is backtested by the copy's CLI over imported history; a misspelt parameter exits 2 naming the valid ones", async () => {
    const csv = path.join(tmp, "DAT_ASCII_EURUSD_M1_201801.csv");
    const rows = await slice(csv);
    expect(rows).toBeGreaterThan(20_000);
    const imported = await fxrt(["import", csv, "--pair", "EUR_USD", "--json"]);
    expect(imported.code, imported.stderr).toBe(0);
    expect(JSON.parse(imported.stdout)).toMatchObject({ pair: "EUR_USD", kind: "m1", rows, bad: 0 });

    const args = ["backtest", "--pair", "EUR_USD", "--from", "2018-01-01", "--to", "2018-02-01", "--strategy", NAME];
    const run = await fxrt([...args, "--param", "lookback=24", "--json", "--no-report"]);
    expect(run.code, run.stderr).toBe(0);
    const result = JSON.parse(run.stdout) as { pair: string; params: Record<string, unknown>; bars: number; candles: number; tradeCount: number; pnlAccount: number };
    expect(result).toMatchObject({ pair: "EUR_USD", params: { timeframe: "1h", lookback: 24 } });
    expect(result.bars).toBeGreaterThan(20_000);
    expect(result.candles).toBeGreaterThan(400);
    expect(result.tradeCount).toBeGreaterThan(0);
    expect(Number.isFinite(result.pnlAccount)).toBe(true);
    expect(existsSync(path.join(copy, "reports"))).toBe(false);

    const misspelt = await fxrt([...args, "--param", "misspelt=1", "--no-report"]);
    expect(misspelt.code).toBe(2);
    expect(misspelt.stdout).toBe("");
    expect(misspelt.stderr).toMatch(/unknown parameter "misspelt" for copy-breakout; its parameters are: timeframe, lookback/);
  });

  it("is accepted by the copy's runtime through PUT /api/admin/pairs/:pair/strategies; a misspelt parameter is a 400 naming the valid ones", async () => {
    // The copy's own runtime module: its ROOT is the copy, so its wrangler build indexes the copy's strategies/.
    const copyRuntime = path.join(copy, "scripts", "runtime.ts");
    const { startRuntime } = (await import(copyRuntime)) as typeof import("../../scripts/runtime.ts");
    runtime = await startRuntime({ port: 0, stateDir: path.join(tmp, "runtime-state"), vars: { FEED: "off", PAIRS: "EUR_USD", ADMIN_API_KEY: KEY }, rateLimitPerMinute: 1_000_000, scheduleEveryMs: 0 });

    const config = { id: "cb", kind: NAME, params: { lookback: 12 } };
    const put = await api("PUT", "/api/admin/pairs/EUR_USD/strategies", { strategies: [config] });
    expect(put.status, JSON.stringify(put.json)).toBe(200);
    expect(put.json).toMatchObject({ pair: "EUR_USD", strategies: [{ id: "cb", kind: NAME, params: { timeframe: "1h", lookback: 12 } }] });
    const got = await api("GET", "/api/admin/pairs/EUR_USD/strategies");
    expect(got.status).toBe(200);
    expect(got.json).toMatchObject({ pair: "EUR_USD", strategies: [{ id: "cb", kind: NAME, params: { timeframe: "1h", lookback: 12 } }] });

    const bad = await api("PUT", "/api/admin/pairs/EUR_USD/strategies", { strategies: [{ ...config, params: { misspelt: 1 } }] });
    expect(bad.status).toBe(400);
    expect(bad.json).toMatchObject({ error: { code: "invalid_strategies" } });
    expect(JSON.stringify(bad.json)).toMatch(/unknown parameter \\"misspelt\\" for copy-breakout; its parameters are: timeframe, lookback/);
    // Refused as a whole: the pair still runs the configuration it had.
    expect((await api("GET", "/api/admin/pairs/EUR_USD/strategies")).json).toMatchObject({ strategies: [{ id: "cb", params: { lookback: 12 } }] });
  }, 120_000);

  it("changed no file of the copy but the new strategy", () => {
    // build/, .wrangler/ and reports/ are git-ignored outputs; every copied file is as it was committed.
    expect(git(["status", "--porcelain", "--untracked-files=all"])).toBe(`?? ${FILE}\n`);
    expect(existsSync(path.join(copy, "build", "strategies.ts"))).toBe(true);
  });
});
