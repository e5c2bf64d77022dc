/**
 * Shared helpers for the benchmarks: options, machine and version info,
 * statistics, tables, result files, cleanup on error or signal, a keep-alive
 * HTTP poster and a seeded EUR_USD tick generator.
 */
import { startRuntime, type RuntimeOptions } from "../scripts/runtime.ts";
import { readdirSync, readFileSync, rmSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { SeededRandom } from "../src/domain/random.ts";
import type { WireTick } from "../schemas/tick.ts";

export const ROOT = path.resolve(import.meta.dirname, "..");
export const RESULTS_DIR = path.join(ROOT, "bench", "results");
/** Where `--profile` runs write their results and CPU profiles (not committed: several MB a run). */
export const PROFILES_DIR = path.join(RESULTS_DIR, "profiles");

export interface BenchOptions {
  /** Short run for CI: keeps the scripts alive, never asserts thresholds. */
  quick: boolean;
  /** CPU-profile workerd's isolates over the measured phase (scenarios that support it; see isolate-profile.ts). */
  profile?: boolean;
}

export interface ScenarioResult {
  name: string;
  date: string;
  mode: "quick" | "full";
  machine: MachineInfo;
  versions: Record<string, string | null>;
  parameters: Record<string, unknown>;
  figures: unknown;
  baseline: unknown;
  ratios: Record<string, number | null>;
  targets?: { description: string; value: number | null; met: boolean | null }[];
  notes?: string[];
}

export interface Scenario {
  name: string;
  description: string;
  /** Left out of the full run unless named with --only (a long soak that would push it past 10 minutes); --quick still runs it. */
  onlyWhenNamed?: boolean;
  run(options: BenchOptions): Promise<ScenarioResult>;
}

// ---- machine and versions -------------------------------------------------------

export interface MachineInfo {
  os: string;
  arch: string;
  cpuModel: string;
  cpuCount: number;
  totalMemoryMB: number;
  node: string;
}

export function machineInfo(): MachineInfo {
  const cpus = os.cpus();
  return {
    os: `${os.type()} ${os.release()}`,
    arch: os.arch(),
    cpuModel: cpus[0]?.model.trim() ?? "unknown",
    cpuCount: cpus.length,
    totalMemoryMB: Math.round(os.totalmem() / 2 ** 20),
    node: process.version,
  };
}

async function packageVersion(name: string): Promise<string | null> {
  try {
    const json = JSON.parse(await readFile(path.join(ROOT, "node_modules", name, "package.json"), "utf8")) as { version?: string };
    return json.version ?? null;
  } catch {
    return null;
  }
}

export async function versions(): Promise<Record<string, string | null>> {
  const names = ["wrangler", "miniflare", "workerd", "partyserver", "ws"];
  const out: Record<string, string | null> = {};
  for (const n of names) out[n] = await packageVersion(n);
  return out;
}

export async function resultBase(name: string, options: BenchOptions): Promise<Pick<ScenarioResult, "name" | "date" | "mode" | "machine" | "versions">> {
  return { name, date: new Date().toISOString(), mode: options.quick ? "quick" : "full", machine: machineInfo(), versions: await versions() };
}

/** Profiled runs go to the profiles folder: their figures are slowed by the profiler and must not replace a run's. */
export async function writeResult(result: ScenarioResult, profiled = false): Promise<string> {
  const dir = profiled ? PROFILES_DIR : RESULTS_DIR;
  await mkdir(dir, { recursive: true });
  const file = path.join(dir, `${result.name}.json`);
  await writeFile(file, JSON.stringify(result, null, 2) + "\n");
  return file;
}

// ---- statistics -----------------------------------------------------------------

export interface LatencySummary {
  n: number;
  p50: number | null;
  p99: number | null;
  max: number | null;
  mean: number | null;
}

/** Nearest-rank percentile of an ascending array. */
export function percentile(sorted: readonly number[], p: number): number | null {
  if (sorted.length === 0) return null;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank] ?? null;
}

export function summarize(samples: readonly number[]): LatencySummary {
  const sorted = [...samples].sort((a, b) => a - b);
  const mean = sorted.length ? sorted.reduce((s, x) => s + x, 0) / sorted.length : null;
  return {
    n: sorted.length,
    p50: round(percentile(sorted, 50)),
    p99: round(percentile(sorted, 99)),
    max: round(sorted.length ? (sorted[sorted.length - 1] ?? null) : null),
    mean: round(mean),
  };
}

export function round(x: number | null, digits = 3): number | null {
  if (x === null || !Number.isFinite(x)) return null;
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

export function ratio(a: number | null | undefined, b: number | null | undefined): number | null {
  if (a == null || b == null || b === 0) return null;
  return round(a / b, 2);
}

// ---- output -----------------------------------------------------------------------

export function fmt(x: number | null | undefined, digits = 2): string {
  if (x === null || x === undefined || !Number.isFinite(x)) return "-";
  if (Math.abs(x) >= 1000) return Math.round(x).toLocaleString("en-US");
  return x.toFixed(digits);
}

export function printTable(headers: string[], rows: (string | number)[][]): void {
  const cells = [headers, ...rows.map((r) => r.map(String))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? "").length)));
  const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join("  ");
  console.log(line(headers));
  console.log(widths.map((w) => "-".repeat(w)).join("  "));
  for (const r of cells.slice(1)) console.log(line(r));
}

export function targetLine(description: string, value: number | null, met: boolean | null): string {
  return `target ${description}: ${met === null ? "n/a" : met ? "met" : "not met"} (${fmt(value)})`;
}

// ---- cleanup ----------------------------------------------------------------------

type Cleanup = () => Promise<void> | void;
interface CleanupEntry {
  run: Cleanup;
  /** Best effort on SIGINT/SIGTERM/exit, when there is no time for async work. */
  sync?: () => void;
}
const cleanups = new Set<CleanupEntry>();
let handlersInstalled = false;

/**
 * Register a cleanup; returns a function that runs and unregisters it.
 * `sync` runs instead if the process is interrupted: importing wrangler (via
 * scripts/runtime.ts) installs a SIGINT/SIGTERM handler that calls
 * process.exit() at once, so async cleanups cannot finish on a signal.
 * Miniflare's own exit hook kills workerd.
 */
export function onCleanup(fn: Cleanup, sync?: () => void): () => Promise<void> {
  installHandlers();
  const entry: CleanupEntry = sync ? { run: fn, sync } : { run: fn };
  cleanups.add(entry);
  return async () => {
    if (!cleanups.delete(entry)) return;
    await fn();
  };
}

export async function runAllCleanups(): Promise<void> {
  const all = [...cleanups].reverse();
  cleanups.clear();
  for (const entry of all) {
    try {
      await entry.run();
    } catch (err) {
      console.error("cleanup failed:", err);
    }
  }
}

function runSyncCleanups(): void {
  const all = [...cleanups].reverse();
  cleanups.clear();
  for (const entry of all) {
    try {
      entry.sync?.();
    } catch {
      // best effort
    }
  }
}

function installHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    // Prepended so it runs before wrangler's handler, which exits with status 0.
    process.prependListener(sig, () => {
      console.error(`\n${sig}: cleaning up`);
      runSyncCleanups();
      process.exit(sig === "SIGINT" ? 130 : 143);
    });
  }
  process.on("exit", runSyncCleanups);
}

/** A fresh temp directory, removed by the returned function (and on signal or exit). */
export async function tempDir(prefix: string): Promise<{ dir: string; remove: () => Promise<void> }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  const remove = onCleanup(
    () => rm(dir, { recursive: true, force: true }),
    () => rmSync(dir, { recursive: true, force: true }),
  );
  return { dir, remove };
}

// ---- HTTP -------------------------------------------------------------------------

const IDLE_SOCKET_MS = 4_000;

/** Keep-alive poster over node:http (lighter than fetch, so the client costs less of the 2 cores). */
export class Poster {
  readonly agent: http.Agent;
  private readonly url: URL;

  /** keepAlive false: a new connection per request (see bench/kill-switch.ts for why it matters). */
  constructor(baseUrl: string, maxSockets = 16, keepAlive = true) {
    this.url = new URL(baseUrl);
    // workerd closes a keep-alive connection after 5 s idle without a Keep-Alive hint;
    // a request sent on such a socket as it closes fails with "socket hang up". Idle
    // sockets are dropped here at 4 s, before workerd's close (undici's fetch does the same).
    this.agent = new http.Agent({ keepAlive, maxSockets, timeout: IDLE_SOCKET_MS });
  }

  post(pathname: string, body: string): Promise<{ status: number; body: string }> {
    return this.request("POST", pathname, body);
  }

  get(pathname: string): Promise<{ status: number; body: string }> {
    return this.request("GET", pathname);
  }

  private request(method: string, pathname: string, body?: string): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
      const req = http.request(
        {
          host: this.url.hostname,
          port: this.url.port,
          path: pathname,
          method,
          agent: this.agent,
          headers: { "x-api-key": BENCH_KEY, ...(body === undefined ? {} : { "content-type": "application/json", "content-length": Buffer.byteLength(body) }) },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }));
          res.on("error", reject);
        },
      );
      req.on("error", reject);
      req.end(body);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

// ---- ticks -----------------------------------------------------------------------

/**
 * Seeded EUR_USD random walk in integer points (1e-5), spread 1 pip (10 points),
 * emitted as decimal wire prices with 5 digits.
 */
export class TickWalk {
  private readonly rng: SeededRandom;
  private mid: number;

  constructor(seed = 42, startMid = 108_500) {
    this.rng = new SeededRandom(seed);
    this.mid = startMid;
  }

  next(ts: number): WireTick {
    this.mid = Math.max(50_000, this.mid + Math.round(this.rng.normal() * 3));
    const bid = this.mid - 5;
    return { ts, bid: bid / 1e5, ask: (bid + 10) / 1e5 };
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Admin key of the runtimes the benchmarks start (the ADMIN_API_KEY secret). */
export const BENCH_KEY = "bench-admin-key";

/**
 * The minute schedule is off in benchmarks: a backup or retention run at a
 * minute boundary would land at a random point of a measurement (a pair's
 * backup holds it for as long as it reads its database). The backup scenario
 * runs backups itself.
 */
export const BENCH_SCHEDULE_EVERY_MS = 0;

/** The runtime as `npm start` runs it, with the feed off, a known key, the rate limits lifted (one client sends everything) and no schedule. */
export function startBenchRuntime(stateDir: string, vars: Record<string, string> = {}, inspectorPort?: number, extra: Pick<RuntimeOptions, "assetsRouterSocket"> = {}) {
  return startRuntime({
    ...extra,
    port: 0,
    stateDir,
    vars: { FEED: "off", ADMIN_API_KEY: BENCH_KEY, ...vars },
    rateLimitPerMinute: 1_000_000_000,
    scheduleEveryMs: BENCH_SCHEDULE_EVERY_MS,
    ...(inspectorPort !== undefined ? { inspectorPort } : {}),
  });
}

/** GET (or `init`) a JSON answer from a bench runtime with the bench admin key; non-2xx throws. */
export async function json<T>(url: string, init: RequestInit = {}): Promise<T> {
  const headers = new Headers(init.headers);
  headers.set("x-api-key", BENCH_KEY);
  const res = await fetch(url, { ...init, headers });
  const text = await res.text();
  if (!res.ok) throw new Error(`${init.method ?? "GET"} ${url}: ${res.status} ${text.slice(0, 300)}`);
  return JSON.parse(text) as T;
}

export const put = (url: string, body: unknown) =>
  json<unknown>(url, { method: "PUT", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });

// ---- processes (Linux /proc; empty or null elsewhere) -----------------------------------

/** The workerd processes this process started (descendants named workerd; another bench's workerd is not ours). */
export function workerdPids(): number[] {
  try {
    const parent = new Map<number, number>();
    const comm = new Map<number, string>();
    for (const entry of readdirSync("/proc")) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
        const open = stat.indexOf("(");
        const close = stat.lastIndexOf(")");
        comm.set(Number(entry), stat.slice(open + 1, close));
        parent.set(Number(entry), Number(stat.slice(close + 2).split(" ")[1]));
      } catch {
        // process gone
      }
    }
    const isOurs = (pid: number): boolean => {
      for (let p = parent.get(pid), hops = 0; p !== undefined && p > 1 && hops < 32; p = parent.get(p), hops++) if (p === process.pid) return true;
      return false;
    };
    return [...comm].filter(([pid, name]) => name === "workerd" && isOurs(pid)).map(([pid]) => pid);
  } catch {
    return [];
  }
}

/** Resident memory of the processes, MB (VmRSS summed), or null without /proc. */
export function rssMb(pids: readonly number[]): number | null {
  let kb = 0;
  for (const pid of pids) {
    try {
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
      kb += Number(m?.[1] ?? 0);
    } catch {
      return null;
    }
  }
  return pids.length ? Math.round(kb / 102.4) / 10 : null;
}
