/**
 * `npm start` (scripts/start.ts, run as a child process exactly as npm runs
 * it), on a temp folder of its own:
 * - at start it removes the bundle folders (`fxrt-build-*`) that killed
 *   runtimes left, and keeps those of runtimes still running;
 * - the schedule runs where the runtime runs: it fires the Worker's
 *   scheduled() handler every minute on the minute, as the platform's cron
 *   does, so an actor is backed up again within five minutes without anyone
 *   triggering it.
 * startRuntime (what npm start, the tests and the benchmarks run) never runs
 * two scheduled() at once. And `fxrt backup status` says LATE, not ok, for a
 * backup older than the schedule allows.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdir, mkdtemp, readdir, rm, utimes, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fxrt } from "../../scripts/fxrt.ts";
import { ROOT, startRuntime } from "../../scripts/runtime.ts";

const KEY = "schedule-test-admin-key";
/** The recovery point objective: two backups of an actor at most this far apart. */
const RPO_MS = 5 * 60_000;

let child: ChildProcess | undefined;
/** The child's temp folder (TMPDIR) and state folder. */
let dir: string | undefined;

afterAll(async () => {
  if (child && child.exitCode === null) {
    const exited = new Promise((r) => child!.once("exit", r));
    child.kill("SIGTERM");
    // start.ts stops the runtime on SIGTERM; a child that hangs is killed outright.
    const bound = setTimeout(() => child!.kill("SIGKILL"), 20_000);
    await exited;
    clearTimeout(bound);
  }
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** `npm start` in a child process; resolves with its URL once it prints it. */
async function npmStart(env: Record<string, string>): Promise<string> {
  child = spawn(process.execPath, [path.join(ROOT, "node_modules/tsx/dist/cli.mjs"), "scripts/start.ts"], {
    cwd: ROOT,
    env: { ...process.env, CLOUDFLARE_CF_FETCH_ENABLED: "false", PORT: "0", ADMIN_API_KEY: KEY, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  return new Promise<string>((resolve, reject) => {
    const onData = (d: Buffer) => {
      output = (output + d.toString()).slice(-10_000);
      const m = /FX actor runtime on (http:\/\/\S+)/.exec(output);
      if (m) resolve(m[1]!);
    };
    child!.stdout!.on("data", onData);
    child!.stderr!.on("data", onData);
    child!.once("exit", (code) => reject(new Error(`npm start exited (${code}) before serving:\n${output}`)));
  });
}

async function admin<T>(url: string, method: string, route: string, body?: unknown): Promise<T> {
  const res = await fetch(`${url}${route}`, {
    method,
    headers: { "x-api-key": KEY, ...(body === undefined ? {} : { "content-type": "application/json" }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  if (!res.ok) throw new Error(`${method} ${route}: ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}

type Snapshots = { snapshots: { key: string; takenAt: number }[] };

describe("npm start", () => {
  let url: string;
  let temp: string;
  /** A pid that ran a moment ago and has exited. */
  const deadPid = spawnSync(process.execPath, ["-e", ""]).pid;
  const folders = {
    dead: `fxrt-build-${deadPid}-aB3dE6`,
    live: `fxrt-build-${process.pid}-fG7hI9`,
    // Named before the pid was in the name: removed once a day old.
    unnamedOld: "fxrt-build-jK1lM2",
    unnamedNew: "fxrt-build-nO4pQ5",
    other: "not-a-build",
  };

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "fxrt-npm-start-"));
    temp = path.join(dir, "tmp");
    for (const name of Object.values(folders)) {
      await mkdir(path.join(temp, name), { recursive: true });
      await writeFile(path.join(temp, name, "worker.js"), "// a bundle");
    }
    const twoDaysAgo = new Date(Date.now() - 48 * 3_600_000);
    await utimes(path.join(temp, folders.unnamedOld), twoDaysAgo, twoDaysAgo);
    // The shortest backup interval the config allows (60 s), so the second backup is due at
    // the first minute after the one at start: the wall time stays under about two minutes.
    // The schedule itself is npm start's own, every minute: no shortened period here.
    url = await npmStart({ TMPDIR: temp, STATE_DIR: path.join(dir, "state"), FEED: "off", PAIRS: "EUR_USD", BACKUP_INTERVAL_SECONDS: "60" });
  }, 120_000);

  it("removes the bundle folders of runtimes that are gone, keeps those of live ones", async () => {
    const left = await readdir(temp);
    expect(left).not.toContain(folders.dead);
    expect(left).not.toContain(folders.unnamedOld);
    for (const kept of [folders.live, folders.unnamedNew, folders.other]) expect(left).toContain(kept);
    // Its own, named by its pid.
    const own = left.filter((n) => /^fxrt-build-\d+-/.test(n) && n !== folders.live);
    expect(own).toHaveLength(1);
    expect(() => process.kill(Number(/^fxrt-build-(\d+)-/.exec(own[0]!)![1]), 0)).not.toThrow();
  });

  it(
    "runs the schedule: backs an actor up again within five minutes, on the minute, with no trigger by hand",
    async () => {
      const snapshots = () => admin<Snapshots>(url, "GET", "/api/admin/backups?actor=pair:EUR_USD&limit=10").then((r) => r.snapshots);
      // The run at start backs every actor up once.
      await expect.poll(async () => (await snapshots()).length, { timeout: 30_000, interval: 500 }).toBe(1);
      // A new state, so the next backup is a new snapshot rather than "unchanged".
      expect(await admin(url, "POST", "/api/pairs/EUR_USD/ticks", { ticks: [{ ts: Date.now() - 100, bid: 1.1, ask: 1.1002 }] })).toEqual({ accepted: 1, rejected: [] });
      await expect.poll(async () => (await snapshots()).length, { timeout: 150_000, interval: 1_000 }).toBe(2);
      const [second, first] = (await snapshots()) as [Snapshots["snapshots"][0], Snapshots["snapshots"][0]];
      expect(second.takenAt - first.takenAt).toBeGreaterThanOrEqual(60_000);
      expect(second.takenAt - first.takenAt).toBeLessThanOrEqual(RPO_MS);
      // Taken by a scheduled run, which starts on the minute (the backups follow the pairs' wake-up in it).
      expect(second.takenAt % 60_000).toBeLessThan(20_000);
      // And the CLI sees it as on time.
      const out: string[] = [];
      expect(await fxrt(["backup", "status"], { FXRT_URL: url, FXRT_API_KEY: KEY }, { out: (l) => out.push(l), err: () => {} })).toBe(0);
      expect(out.find((l) => l.startsWith("pair:EUR_USD"))).toMatch(/\s+ok$/);
    },
    200_000,
  );
});

describe("startRuntime's schedule", () => {
  it("runs one scheduled() at a time: a run by hand waits for the schedule's, so an alert is delivered once", async () => {
    let delivered = 0;
    // A webhook that takes 1.5 s: a run delivering to it spans at least one tick of a 1 s schedule.
    const hook: Server = createServer((req, res) => {
      req.resume();
      req.on("end", () => setTimeout(() => {
        delivered++;
        res.writeHead(200).end("ok");
      }, 1_500));
    });
    await new Promise<void>((r) => hook.listen(0, "127.0.0.1", r));
    const stateDir = await mkdtemp(path.join(tmpdir(), "fxrt-one-run-"));
    const rt = await startRuntime({
      port: 0, stateDir, scheduleEveryMs: 1_000,
      vars: { FEED: "off", PAIRS: "EUR_USD", ADMIN_API_KEY: KEY, BACKUP_INTERVAL_SECONDS: "0", ALERT_WEBHOOK_URL: `http://127.0.0.1:${(hook.address() as { port: number }).port}/hook` },
    });
    try {
      // Six refused orders (too large, or the weekend) in a minute: the failed_orders alert.
      for (let i = 0; i < 6; i++) {
        const res = await fetch(`${rt.url}/api/trade/execute`, {
          method: "POST", headers: { "content-type": "application/json", "x-api-key": KEY },
          body: JSON.stringify({ pair: "EUR_USD", side: "buy", units: 900_000 }),
        });
        expect(res.status).toBe(422);
      }
      await rt.triggerScheduled();
      // Runs of the schedule go on after it; none may deliver the alert again.
      await new Promise((r) => setTimeout(r, 4_000));
      expect(delivered).toBe(1);
    } finally {
      await rt.stop();
      hook.closeAllConnections();
      await new Promise((r) => hook.close(r));
      await rm(stateDir, { recursive: true, force: true });
    }
  }, 120_000);
});

describe("fxrt backup status", () => {
  it("says LATE for a backup older than the interval plus the cron's minute, and for one never taken by an actor up that long", async () => {
    const now = Date.now();
    const status = (actor: string, ageMs: number | null, upForMs: number, intervalMs = 240_000, lastError: string | null = null) => ({
      actor, lastBackupAt: ageMs === null ? null : now - ageMs, ageMs, upForMs, lastSnapshot: null, intervalMs, lastError,
    });
    const actors = [
      status("coordinator", 9 * 60_000, 3_600_000), // the case: 9 minutes old, no error
      status("gatekeeper", 4 * 60_000, 3_600_000),
      status("pair:EUR_USD", null, 6 * 60_000),
      status("pair:USD_JPY", null, 2 * 60_000),
      status("pair:GBP_USD", 9 * 60_000, 3_600_000, 0),
      status("pair:AUD_USD", 30_000, 3_600_000, 240_000, "R2 down"),
    ];
    // The runtime's answer, served as it is: this test is about the CLI's judgement of it.
    const server: Server = createServer((req, res) => {
      res.writeHead(req.url === "/api/admin/backups" ? 200 : 404, { "content-type": "application/json" }).end(JSON.stringify({ time: now, actors }));
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    try {
      const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
      const out: string[] = [];
      expect(await fxrt(["backup", "status"], { FXRT_URL: url, FXRT_API_KEY: KEY }, { out: (l) => out.push(l), err: () => {} })).toBe(0);
      const state = (actor: string) => out.find((l) => l.startsWith(`${actor} `))?.split(/\s+/).at(-1);
      expect(actors.map((a) => [a.actor, state(a.actor)])).toEqual([
        ["coordinator", "LATE"],
        ["gatekeeper", "ok"],
        ["pair:EUR_USD", "LATE"],
        ["pair:USD_JPY", "ok"],
        ["pair:GBP_USD", "off"],
        ["pair:AUD_USD", "ERROR"],
      ]);
      const json: string[] = [];
      await fxrt(["backup", "status", "--json"], { FXRT_URL: url, FXRT_API_KEY: KEY }, { out: (l) => json.push(l), err: () => {} });
      expect((JSON.parse(json[0]!) as { actors: { state: string }[] }).actors.map((a) => a.state)).toEqual(["LATE", "ok", "LATE", "ok", "off", "ERROR"]);
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });
});
