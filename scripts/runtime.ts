/**
 * Starts the runtime locally: the production bundle (built by `wrangler deploy
 * --dry-run`, exactly what `wrangler deploy` uploads) served by Miniflare on
 * workerd with SQLite Durable Objects and local R2 persisted under STATE_DIR.
 * Miniflare is driven directly rather than through `wrangler dev`, whose extra
 * proxy hop costs several ms per request (measured in DESIGN.md).
 * Used by `npm start`, the tests that need a running runtime, and the benchmarks.
 * As on the platform, `/api/*` and `/parties/*` (wrangler.jsonc `assets.run_worker_first`)
 * go straight to the Worker: Miniflare's entry worker routes them to it itself
 * (workerFirstRoutes), instead of through the assets proxy and router, which
 * cost two more workers per request; every other path still reaches the
 * assets router, which applies run_worker_first as the platform does.
 * As on the platform, the Worker's scheduled() handler runs every minute on the
 * minute (wrangler.jsonc `triggers.crons`: wakes the pairs, backs up, prunes,
 * raises alerts): Miniflare serves requests but runs no cron by itself.
 */
import { execFile } from "node:child_process";
import { rmSync } from "node:fs";
import { mkdtemp, readdir, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { Log, LogLevel, Miniflare } from "miniflare";
import { unstable_getMiniflareWorkerOptions } from "wrangler";

const run = promisify(execFile);
export const ROOT = path.resolve(import.meta.dirname, "..");

export interface RuntimeOptions {
  port?: number;
  host?: string;
  /** Folder for local state (Durable Object SQLite, R2); wrangler's layout: `<stateDir>/v3/...`. */
  stateDir?: string;
  /** Overrides of wrangler.jsonc `vars` (FEED, PAIRS, ...) and secrets (ADMIN_API_KEY). */
  vars?: Record<string, string>;
  /** Requests per minute per client IP and per key (wrangler.jsonc `ratelimits`; benchmarks lift it). */
  rateLimitPerMinute?: number;
  verbose?: boolean;
  /** Open workerd's V8 inspector on this port (the soak forces garbage collections through it). */
  inspectorPort?: number;
  /**
   * Run the scheduled() handler at every multiple of this many ms of the clock.
   * Default CRON_PERIOD_MS, the platform's "* * * * *"; a shorter period is for
   * tests only; 0 turns the schedule off, for tests that compare the runtime's
   * state over time and must not see a backup or a retention run in between.
   */
  scheduleEveryMs?: number;
  /**
   * Also serve the Worker on a second port the way the served port did before
   * run_worker_first paths were routed to it directly: through Miniflare's
   * assets proxy and router, without its entry worker (Runtime.assetsRouterUrl).
   * For the benchmarks' stage figures only.
   */
  assetsRouterSocket?: boolean;
}

/** The one cron wrangler.jsonc declares ("* * * * *") and what the local schedule reproduces. */
export const CRON = "* * * * *";
export const CRON_PERIOD_MS = 60_000;
/** Bundle folders in the temp folder: `fxrt-build-<pid>-<random>`, so a later start can tell whose each is. */
const BUILD_PREFIX = "fxrt-build-";
/** A folder named before the pid was in the name is removed at this age: whose it is cannot be told. */
const UNNAMED_BUILD_MAX_AGE_MS = 24 * 3_600_000;
/** Stale folders removed per start at most (each about 2.6 MB): the rest go at the next starts. */
const STALE_BUILDS_MAX = 100;
/** A floor for tests' periods: each run wakes every pair and asks every actor about its backup. */
const SCHEDULE_MIN_MS = 1_000;
/** How long stop() waits for a scheduled run under way before disposing of the runtime anyway. */
const STOP_WAIT_MS = 10_000;

export interface Runtime {
  url: string;
  port: number;
  stateDir: string;
  miniflare: Miniflare;
  /** The Miniflare routes that send run_worker_first paths straight to the Worker (empty: all through the assets router). */
  workerFirstRoutes: string[];
  /** With `assetsRouterSocket`: the Worker behind the assets proxy and router, no entry worker. */
  assetsRouterUrl?: string;
  /** Run the Worker's scheduled() handler once now, besides the schedule (wakes every pair). */
  triggerScheduled(): Promise<void>;
  stop(): Promise<void>;
}

/** Offline-safe environment for wrangler/workerd child processes. */
export const OFFLINE_ENV = { CLOUDFLARE_CF_FETCH_ENABLED: "false", WRANGLER_SEND_METRICS: "false" } as const;

/** What Miniflare's entry worker can route by itself: a path, with at most a trailing `*`, in plain characters. */
const ROUTABLE_PATTERN = /^\/[A-Za-z0-9/_.~-]*\*?$/;

/**
 * The Miniflare routes (`*<pattern>`: any host) for wrangler.jsonc's
 * `assets.run_worker_first` patterns, so that Miniflare's entry worker sends
 * those paths straight to the Worker, as the platform does, instead of through
 * the assets proxy and router workers. A route matches the path and query
 * (`/api/*`: a path starting `/api/`), the router's rule the path alone
 * (`^/api/.*$`), so a route never takes a request the router would not give
 * the Worker; whatever no route takes (assets, other paths) still reaches the
 * router, which applies the rules itself. Empty, and everything goes through
 * the router as before, when the config has rules a route cannot state
 * exactly: negative patterns (`!/api/x`), wildcards inside a path, `true`.
 */
export function workerFirstRoutes(routerConfig: { static_routing?: { user_worker: string[]; asset_worker?: string[] | undefined } | undefined } | undefined): string[] {
  const rules = routerConfig?.static_routing;
  const patterns = rules?.user_worker ?? [];
  if ((rules?.asset_worker ?? []).length > 0 || !patterns.every((p) => ROUTABLE_PATTERN.test(p))) return [];
  return patterns.map((p) => `*${p}`);
}

export async function buildBundle(outDir: string): Promise<string> {
  const wrangler = path.join(ROOT, "node_modules", "wrangler", "bin", "wrangler.js");
  await run(process.execPath, [wrangler, "deploy", "--dry-run", "--outdir", outDir], {
    cwd: ROOT,
    env: { ...process.env, ...OFFLINE_ENV },
    maxBuffer: 16 * 1024 * 1024,
  });
  return path.join(outDir, "worker.js");
}

/** Whether a process runs with this pid (EPERM: it runs, as another user). */
function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Whether the runtime that made a bundle folder is gone. A folder whose pid
 * still runs is another runtime's (or a reused pid's) and is kept.
 */
async function buildGone(folder: string): Promise<boolean> {
  const pid = /^fxrt-build-(\d+)-/.exec(path.basename(folder))?.[1];
  if (pid !== undefined) return !processAlive(Number(pid));
  // Named before the pid was in the name: whose it is cannot be told, so its age decides.
  const made = await stat(folder).catch(() => null);
  return made !== null && Date.now() - made.mtimeMs > UNNAMED_BUILD_MAX_AGE_MS;
}

/**
 * Removes the bundle folders of runtimes that are gone: a killed runtime never
 * runs its exit handler, so its folder stayed in the temp folder for good.
 */
async function removeStaleBuilds(): Promise<void> {
  let removed = 0;
  for (const name of await readdir(tmpdir())) {
    if (removed >= STALE_BUILDS_MAX) break;
    const folder = path.join(tmpdir(), name);
    if (!name.startsWith(BUILD_PREFIX) || !(await buildGone(folder))) continue;
    await rm(folder, { recursive: true, force: true });
    removed++;
  }
}

/**
 * Calls `run` at every multiple of `periodMs` of the wall clock, as a cron does,
 * one run at a time: a run still going at the next multiple delays the one
 * after it to the multiple that follows its end, so runs never pile up. A run
 * that fails is reported and the schedule goes on, as the platform's does.
 */
function everyPeriod(periodMs: number, run: () => Promise<void>, onError: (err: unknown) => void): { stop(): Promise<void> } {
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();
  let stopped = false;
  const arm = () => {
    if (stopped) return;
    const at = (Math.floor(Date.now() / periodMs) + 1) * periodMs;
    const wait = () => {
      // A timer may fire a millisecond early: wait for the multiple itself, so it runs once.
      if (Date.now() < at) {
        timer = setTimeout(wait, at - Date.now());
        timer.unref();
        return;
      }
      running = run().catch(onError).finally(arm);
    };
    timer = setTimeout(wait, at - Date.now());
    // The schedule alone never keeps the process alive (Miniflare's server does while it runs).
    timer.unref();
  };
  arm();
  return {
    async stop() {
      stopped = true;
      clearTimeout(timer);
      let bound: NodeJS.Timeout | undefined;
      await Promise.race([running, new Promise((r) => (bound = setTimeout(r, STOP_WAIT_MS)))]);
      clearTimeout(bound);
    },
  };
}

/** The schedule's period from the options; the config must declare the cron it reproduces. */
async function schedulePeriod(options: RuntimeOptions): Promise<number> {
  const every = options.scheduleEveryMs ?? CRON_PERIOD_MS;
  if (every !== 0 && !(Number.isInteger(every) && every >= SCHEDULE_MIN_MS && every <= CRON_PERIOD_MS)) {
    throw new RangeError(`scheduleEveryMs must be 0 (off) or an integer in [${SCHEDULE_MIN_MS}, ${CRON_PERIOD_MS}], got ${every}`);
  }
  const { experimental_readRawConfig } = await import("wrangler");
  const { rawConfig } = experimental_readRawConfig({ config: path.join(ROOT, "wrangler.jsonc") }) as { rawConfig: { triggers?: { crons?: unknown } } };
  const crons = rawConfig.triggers?.crons;
  // Another cron would run on the platform and not here: refuse rather than diverge silently.
  if (!(Array.isArray(crons) && crons.length === 1 && crons[0] === CRON)) {
    throw new Error(`wrangler.jsonc triggers.crons is ${JSON.stringify(crons)}: the local runtime reproduces only ["${CRON}"] (scripts/runtime.ts)`);
  }
  return every;
}

export async function startRuntime(options: RuntimeOptions = {}): Promise<Runtime> {
  Object.assign(process.env, OFFLINE_ENV);
  const period = await schedulePeriod(options);
  const stateDir = path.resolve(options.stateDir ?? path.join(ROOT, ".wrangler", "state"));
  await removeStaleBuilds();
  const buildDir = await mkdtemp(path.join(tmpdir(), `${BUILD_PREFIX}${process.pid}-`));
  // wrangler's import installs signal handlers that call process.exit(): clean up on exit too.
  const removeBuild = () => rmSync(buildDir, { recursive: true, force: true });
  process.once("exit", removeBuild);
  const scriptPath = await buildBundle(buildDir);
  const { workerOptions } = unstable_getMiniflareWorkerOptions(path.join(ROOT, "wrangler.jsonc"));
  const bindings = { ...(workerOptions.bindings ?? {}), ...(options.vars ?? {}) };
  const limit = options.rateLimitPerMinute;
  const ratelimits =
    limit === undefined
      ? workerOptions.ratelimits
      : Object.fromEntries(Object.keys(workerOptions.ratelimits ?? {}).map((name) => [name, { simple: { limit, period: 60 as const } }]));
  const host = options.host ?? "127.0.0.1";
  const routes = workerFirstRoutes(workerOptions.assets?.routerConfig);
  const miniflare = new Miniflare({
    ...workerOptions,
    bindings,
    ...(ratelimits ? { ratelimits } : {}),
    modules: true,
    modulesRoot: buildDir,
    scriptPath,
    modulesRules: [{ type: "Text", include: ["**/*.sql"] }],
    host,
    port: options.port ?? 8787,
    defaultPersistRoot: path.join(stateDir, "v3"),
    unsafeTriggerHandlers: true,
    ...(routes.length > 0 ? { routes } : {}),
    ...(options.assetsRouterSocket ? { unsafeDirectSockets: [{ host, port: 0 }] } : {}),
    ...(options.inspectorPort !== undefined ? { inspectorPort: options.inspectorPort } : {}),
    log: new Log(options.verbose ? LogLevel.INFO : LogLevel.WARN),
  });
  const ready = await miniflare.ready;
  const url = `http://${host}:${ready.port}`;
  const runScheduled = async () => {
    // Through Miniflare's API: with static assets, /cdn-cgi/handler/scheduled reaches the
    // assets router (which has no scheduled handler), not the Worker. It resolves once the
    // run's waitUntil work is done.
    const result = await (await miniflare.getWorker()).scheduled({ cron: CRON });
    if (result.outcome !== "ok") throw new Error(`scheduled trigger failed: ${result.outcome}`);
  };
  // One run at a time, as the platform runs the minute's cron once: a run by hand waits for
  // the schedule's and the reverse (two at once delivered the same alert twice).
  let lastRun: Promise<unknown> = Promise.resolve();
  const triggerScheduled = () => {
    const run = lastRun.then(runScheduled, runScheduled);
    lastRun = run.catch(() => undefined);
    return run;
  };
  const assetsRouterUrl = options.assetsRouterSocket ? (await miniflare.unsafeGetDirectURL()).origin : undefined;
  const schedule = period === 0 ? null : everyPeriod(period, triggerScheduled, (err) => console.error(`runtime: scheduled run failed: ${String(err)}`));
  return {
    url,
    port: Number(ready.port),
    stateDir,
    miniflare,
    workerFirstRoutes: routes,
    ...(assetsRouterUrl !== undefined ? { assetsRouterUrl } : {}),
    triggerScheduled,
    async stop() {
      await schedule?.stop();
      await miniflare.dispose();
      process.off("exit", removeBuild);
      await rm(buildDir, { recursive: true, force: true });
    },
  };
}
