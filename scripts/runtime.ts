/**
 * Starts the runtime locally: the production bundle (built by `wrangler deploy
 * --dry-run`, exactly what `wrangler deploy` uploads) served by Miniflare on
 * workerd with SQLite Durable Objects and local R2 persisted under STATE_DIR.
 * Miniflare is driven directly rather than through `wrangler dev`, whose extra
 * proxy hop costs several ms per request (measured in DESIGN.md).
 * Used by `npm start`, the tests that need a running runtime, and the benchmarks.
 */
import { execFile } from "node:child_process";
import { rmSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
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
}

export interface Runtime {
  url: string;
  port: number;
  stateDir: string;
  miniflare: Miniflare;
  /** Run the Worker's scheduled() handler once (wakes every pair). */
  triggerScheduled(): Promise<void>;
  stop(): Promise<void>;
}

/** Offline-safe environment for wrangler/workerd child processes. */
export const OFFLINE_ENV = { CLOUDFLARE_CF_FETCH_ENABLED: "false", WRANGLER_SEND_METRICS: "false" } as const;

export async function buildBundle(outDir: string): Promise<string> {
  const wrangler = path.join(ROOT, "node_modules", "wrangler", "bin", "wrangler.js");
  await run(process.execPath, [wrangler, "deploy", "--dry-run", "--outdir", outDir], {
    cwd: ROOT,
    env: { ...process.env, ...OFFLINE_ENV },
    maxBuffer: 16 * 1024 * 1024,
  });
  return path.join(outDir, "worker.js");
}

export async function startRuntime(options: RuntimeOptions = {}): Promise<Runtime> {
  Object.assign(process.env, OFFLINE_ENV);
  const stateDir = path.resolve(options.stateDir ?? path.join(ROOT, ".wrangler", "state"));
  const buildDir = await mkdtemp(path.join(tmpdir(), "fxrt-build-"));
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
    ...(options.inspectorPort !== undefined ? { inspectorPort: options.inspectorPort } : {}),
    log: new Log(options.verbose ? LogLevel.INFO : LogLevel.WARN),
  });
  const ready = await miniflare.ready;
  const url = `http://${host}:${ready.port}`;
  return {
    url,
    port: Number(ready.port),
    stateDir,
    miniflare,
    async triggerScheduled() {
      // Through Miniflare's API: with static assets, /cdn-cgi/handler/scheduled reaches the
      // assets router (which has no scheduled handler), not the Worker.
      const result = await (await miniflare.getWorker()).scheduled({ cron: "* * * * *" });
      if (result.outcome !== "ok") throw new Error(`scheduled trigger failed: ${result.outcome}`);
    },
    async stop() {
      await miniflare.dispose();
      process.off("exit", removeBuild);
      await rm(buildDir, { recursive: true, force: true });
    },
  };
}
