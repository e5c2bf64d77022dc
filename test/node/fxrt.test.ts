/**
 * The fxrt CLI against one real runtime (production bundle on workerd via
 * Miniflare, as `npm start` runs it). Commands run in process through
 * `fxrt(argv, env, io)` so their output can be read; one test spawns the
 * entry point to prove it runs as `npm run cli`.
 */
import { execFile } from "node:child_process";
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fxrt, type Io } from "../../scripts/fxrt.ts";
import { startRuntime, type Runtime } from "../../scripts/runtime.ts";

const ROOT = path.resolve(import.meta.dirname, "../..");
const KEY = "fxrt-cli-admin-key";

let stateDir: string;
let runtime: Runtime;

beforeAll(async () => {
  stateDir = await mkdtemp(path.join(tmpdir(), "fxrt-cli-"));
  // The schedule off: `backup status` is checked for an actor never backed up, which a
  // scheduled minute during the file would back up (test/node/local-schedule.test.ts runs it).
  runtime = await startRuntime({ port: 0, stateDir, vars: { FEED: "off", ADMIN_API_KEY: KEY }, scheduleEveryMs: 0 });
});

afterAll(async () => {
  await runtime?.stop();
  if (stateDir) await rm(stateDir, { recursive: true, force: true });
});

interface Run {
  code: number;
  out: string[];
  err: string[];
}

async function cli(argv: string[], options: { key?: string | null; io?: Partial<Io>; onErr?: (line: string) => void } = {}): Promise<Run> {
  const out: string[] = [];
  const err: string[] = [];
  const key = options.key === undefined ? KEY : options.key;
  // STATE_DIR: import and backtest use the running runtime's local R2.
  const env = { FXRT_URL: runtime.url, STATE_DIR: stateDir, ...(key === null ? {} : { FXRT_API_KEY: key }) };
  const code = await fxrt(argv, env, {
    out: (l) => out.push(l),
    err: (l) => {
      err.push(l);
      options.onErr?.(l);
    },
    ...options.io,
  });
  return { code, out, err };
}

let lastTs = 0;
async function postTick(pair: string, bid: number, ask: number): Promise<void> {
  lastTs = Math.max(Date.now() - 200, lastTs + 1);
  const res = await fetch(`${runtime.url}/api/pairs/${pair}/ticks`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-api-key": KEY },
    body: JSON.stringify({ ticks: [{ ts: lastTs, bid, ask }] }),
  });
  expect(await res.json()).toEqual({ accepted: 1, rejected: [] });
}

const fits80 = (lines: string[]) => lines.flatMap((l) => l.split("\n")).filter((l) => l.length > 80);

describe("help and usage", () => {
  it("prints help that fits 80 columns, globally and per command", async () => {
    const r = await cli(["--help"]);
    expect(r.code).toBe(0);
    const text = r.out.join("\n");
    for (const c of ["status", "pairs", "watch", "limits", "halt", "resume", "flatten", "keys", "backup", "import", "backtest", "--url", "--api-key", "--json"]) expect(text).toContain(c);
    expect(fits80(r.out)).toEqual([]);
    for (const c of ["status", "pairs", "watch", "limits", "halt", "resume", "flatten", "keys", "backup", "import", "backtest"]) {
      const h = await cli([c, "--help"]);
      expect(h.code).toBe(0);
      expect(h.out.join("\n")).toContain(`usage: fxrt ${c}`);
      expect(fits80(h.out)).toEqual([]);
    }
    expect((await cli(["help", "watch"])).out.join("\n")).toContain("usage: fxrt watch");
  });

  it("exits 2 on an unknown command, a bad option or a bad value", async () => {
    const r = await cli(["frobnicate"]);
    expect(r.code).toBe(2);
    expect(r.err.join("\n")).toMatch(/unknown command 'frobnicate'/);
    expect((await cli([])).code).toBe(2);
    expect((await cli(["pairs", "--bogus"])).code).toBe(2);
    expect((await cli(["limits", "set", "maxOpenPositions=lots"])).code).toBe(2);
    expect((await cli(["limits", "set", "noSuchLimit=5"])).code).toBe(2);
    expect((await cli(["watch"])).code).toBe(2);
    expect((await cli(["watch", "EUR_USD", "--tf", "7m"])).code).toBe(2);
    expect((await cli(["backtest", "--pair", "EUR_USD"])).code).toBe(2);
    expect((await cli(["import", "--pair", "EUR_USD"])).code).toBe(2);
  });

  it("runs as a process: npx fxrt and npm run cli, exit 2 on a bad command", async () => {
    const run = promisify(execFile);
    const { stdout } = await run("npm", ["run", "-s", "cli", "--", "--help"], { cwd: ROOT });
    expect(stdout).toContain("usage: npx fxrt <command>");
    // The package's bin, from another working directory.
    const npx = await run("npx", ["--no-install", "--prefix", ROOT, "fxrt", "status", "--help"], { cwd: tmpdir() });
    expect(npx.stdout).toMatch(/^usage: fxrt status/m);
    const bad = await run(process.execPath, [path.join(ROOT, "node_modules/tsx/dist/cli.mjs"), "scripts/fxrt.ts", "nope"], { cwd: ROOT }).catch((e: { code: number; stderr: string }) => e);
    expect(bad).toMatchObject({ code: 2, stderr: expect.stringContaining("unknown command 'nope'") });
  });
});

describe("against the runtime", () => {
  it("status: health, trading state and portfolio with the admin key; --json", async () => {
    const r = await cli(["status"]);
    expect(r.code).toBe(0);
    const text = r.out.join("\n");
    expect(text).toMatch(/trading\s+ACTIVE/);
    expect(text).toMatch(/equity\s+[\d,.]+ USD/);
    expect(text).toContain("maxOpenPositions");
    expect(fits80(r.out)).toEqual([]);
    const j = await cli(["status", "--json"]);
    expect(JSON.parse(j.out[0]!)).toMatchObject({ access: "admin", health: { status: "ok" }, portfolio: { trading: { state: "ACTIVE" } } });
  });

  it("keys create/list/revoke; status with a viewer key shows metrics instead of the portfolio", async () => {
    const created = await cli(["keys", "create", "--role", "viewer", "--label", "cli test", "--json"]);
    expect(created.code).toBe(0);
    const { id, key } = JSON.parse(created.out[0]!) as { id: string; key: string };
    expect(key).toMatch(/^fxk_/);

    const list = await cli(["keys", "list"]);
    expect(list.out.some((l) => l.startsWith(id) && l.includes("viewer") && l.includes("cli test"))).toBe(true);

    const viewer = await cli(["status"], { key });
    expect(viewer.code).toBe(0);
    expect(viewer.out.join("\n")).toMatch(/trading\s+ACTIVE/);
    expect(viewer.out.join("\n")).toMatch(/EUR_USD\s+ACTIVE/);
    expect(viewer.err.join("\n")).toMatch(/needs an admin key/);
    expect(JSON.parse((await cli(["status", "--json"], { key })).out[0]!)).toMatchObject({ access: "viewer", metrics: { trading: "ACTIVE" } });
    // An admin command with a viewer key: the server's 403.
    const refused = await cli(["limits", "get"], { key });
    expect(refused.code).toBe(1);
    expect(refused.err[0]).toMatch(/forbidden/);

    // No key at all: health only.
    const anon = await cli(["status"], { key: null });
    expect(anon.code).toBe(0);
    expect(anon.out.join("\n")).toContain("server time");

    const revoked = await cli(["keys", "revoke", id]);
    expect(revoked).toMatchObject({ code: 0, out: [`revoked ${id}`] });
    const after = await cli(["status"], { key });
    expect(after.code).toBe(1);
    expect(after.err[0]).toMatch(/invalid_key/);
    expect((await cli(["keys", "create", "--role", "god"])).code).toBe(2);
  });

  it("a wrong key exits 1 with the server's error code (as JSON with --json)", async () => {
    const r = await cli(["limits", "get"], { key: "wrong" });
    expect(r.code).toBe(1);
    expect(r.err[0]).toMatch(/^fxrt: invalid_key: .*HTTP 401/);
    const j = await cli(["limits", "get", "--json"], { key: "wrong" });
    expect(j.code).toBe(1);
    expect(JSON.parse(j.out[0]!)).toMatchObject({ error: { status: 401, code: "invalid_key" } });
  });

  it("pairs: last bid/ask, spread and tick age", async () => {
    await postTick("EUR_USD", 1.08501, 1.08511);
    const r = await cli(["pairs"]);
    expect(r.code).toBe(0);
    const row = r.out.find((l) => l.startsWith("EUR_USD"))!;
    expect(row).toMatch(/^EUR_USD\s+1\.08501\s+1\.08511\s+1\.0\s+\d+s ago$/);
    expect(r.out.find((l) => l.startsWith("USD_JPY"))).toMatch(/no ticks/);
    expect(fits80(r.out)).toEqual([]);
    const j = JSON.parse((await cli(["pairs", "--json"])).out[0]!) as { pairs: { pair: string; lastTick: unknown }[] };
    expect(j.pairs.find((p) => p.pair === "EUR_USD")?.lastTick).toMatchObject({ bid: 1.08501, ask: 1.08511 });
  });

  it("limits set changes only the given keys; get reads them back", async () => {
    const before = JSON.parse((await cli(["limits", "get", "--json"])).out[0]!) as Record<string, number>;
    const set = await cli(["limits", "set", "maxOpenPositions=5", "dailyLossLimit=2_500"]);
    expect(set.code).toBe(0);
    expect(set.out.join("\n")).toMatch(/maxOpenPositions\s+5\s+\(was 20\)/);
    const after = JSON.parse((await cli(["limits", "get", "--json"])).out[0]!) as Record<string, number>;
    expect(after).toEqual({ ...before, maxOpenPositions: 5, dailyLossLimit: 2500 });
    const get = await cli(["limits", "get"]);
    expect(get.out.find((l) => l.startsWith("maxOpenPositions"))).toMatch(/maxOpenPositions\s+5$/);
    // Out of the server's range: its own validation error, exit 1.
    const tooMany = await cli(["limits", "set", "maxOpenPositions=99999"]);
    expect(tooMany.code).toBe(1);
    expect(tooMany.err[0]).toMatch(/invalid_limits/);
  });

  it("halt asks for confirmation, resume, flatten --yes", async () => {
    const refused = await cli(["halt", "--reason", "test"]);
    expect(refused.code).toBe(2);
    expect(refused.err[0]).toMatch(/--yes/);
    const declined = await cli(["halt"], { io: { isTTY: true, ask: async () => "n" } });
    expect(declined.code).toBe(1);
    expect(JSON.parse((await cli(["status", "--json"])).out[0]!).portfolio.trading.state).toBe("ACTIVE");

    let asked = "";
    const halted = await cli(["halt", "--reason", "cli test"], {
      io: {
        isTTY: true,
        ask: async (q) => {
          asked = q;
          return "y";
        },
      },
    });
    expect(asked).toMatch(/Halt trading/);
    expect(halted.code).toBe(0);
    expect(halted.out[0]).toMatch(/^trading HALTED since .* \(cli test\)$/);
    expect((await cli(["status"])).out.join("\n")).toMatch(/trading\s+HALTED .*cli test/);

    const resumed = await cli(["resume"]);
    expect(resumed.code).toBe(0);
    expect(resumed.out[0]).toMatch(/^trading ACTIVE/);

    const flat = await cli(["flatten", "--yes", "--json"]);
    expect(flat.code).toBe(0);
    const body = JSON.parse(flat.out[0]!) as { status: { state: string }; pairs: Record<string, string> };
    expect(body.status.state).toBe("HALTED");
    expect(body.pairs.EUR_USD).toMatch(/flattening 0 positions/);
    expect((await cli(["resume", "-y"])).code).toBe(0);
  });

  it("backup now / status / list / restore: a pair rebuilt to the snapshot's digest", async () => {
    await postTick("EUR_USD", 1.1, 1.1002);
    const now = await cli(["backup", "now", "pair:EUR_USD", "coordinator", "--json"]);
    expect(now.code).toBe(0);
    const [pair] = JSON.parse(now.out[0]!).results as { actor: string; snapshot: string; digest: string; unchanged: boolean }[];
    expect(pair).toMatchObject({ actor: "pair:EUR_USD", unchanged: false });

    const status = await cli(["backup", "status"]);
    expect(status.code).toBe(0);
    expect(status.out[0]).toMatch(/^actor\s+last backup \(UTC\)\s+age\s+state$/);
    expect(status.out.find((l) => l.startsWith("pair:EUR_USD"))).toMatch(/\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\s+\d+s\s+ok$/);
    expect(status.out.find((l) => l.startsWith("pair:USD_JPY"))).toMatch(/never\s+-\s+ok$/);

    await postTick("EUR_USD", 1.2, 1.2002);
    const list = await cli(["backup", "list", "pair:EUR_USD", "--json"]);
    const listed = JSON.parse(list.out[0]!) as { digest: string; snapshots: { key: string }[] };
    expect(listed.snapshots[0]!.key).toBe(pair!.snapshot);
    expect(listed.digest).not.toBe(pair!.digest);

    // Without a terminal, restore needs --yes.
    expect((await cli(["backup", "restore", "pair:EUR_USD"])).code).toBe(2);
    const restored = await cli(["backup", "restore", "pair:EUR_USD", "--snapshot", pair!.snapshot, "--yes"]);
    expect(restored.code).toBe(0);
    expect(restored.out.join("\n")).toContain(`restored pair:EUR_USD from ${pair!.snapshot}`);
    expect(restored.out.join("\n")).toContain(`digest ${pair!.digest.slice(0, 16)} (checked)`);
    const after = JSON.parse((await cli(["backup", "list", "pair:EUR_USD", "--json"])).out[0]!) as { digest: string };
    expect(after.digest).toBe(pair!.digest);
    const status2 = (await (await fetch(`${runtime.url}/api/pairs/EUR_USD`)).json()) as { lastTick: { bid: number } };
    expect(status2.lastTick.bid).toBe(1.1);

    expect((await cli(["backup", "restore", "EUR_USD", "--yes"])).code).toBe(2);
    expect(fits80(status.out)).toEqual([]);
  });

  it("watch prints one line per tick and stops after --count", async () => {
    let connected!: () => void;
    const ready = new Promise<void>((r) => (connected = r));
    const watching = cli(["watch", "EUR_USD", "--count", "2"], { onErr: (l) => l.startsWith("watching") && connected() });
    await ready;
    await postTick("EUR_USD", 1.08521, 1.08531);
    await new Promise((r) => setTimeout(r, 50)); // past the 10 ms coalescing window: two frames
    await postTick("EUR_USD", 1.08541, 1.08552);
    const r = await watching;
    expect(r.code).toBe(0);
    expect(r.out).toHaveLength(2);
    expect(r.out[0]).toMatch(/EUR_USD tick\s+bid 1\.08521\s+ask 1\.08531\s+spread 1\.0$/);
    expect(r.out[1]).toMatch(/EUR_USD tick\s+bid 1\.08541\s+ask 1\.08552\s+spread 1\.1$/);
    expect(fits80(r.out)).toEqual([]);

    // Candle closes only: a tick in the next minute closes the first one.
    let subscribed!: () => void;
    const ready2 = new Promise<void>((r) => (subscribed = r));
    const closes = cli(["watch", "AUD_USD", "--no-ticks", "--count", "1"], { onErr: (l) => l.startsWith("watching") && subscribed() });
    await ready2;
    const minute = Math.floor(Date.now() / 60_000) * 60_000 - 180_000;
    const res = await fetch(`${runtime.url}/api/pairs/AUD_USD/ticks`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-api-key": KEY },
      body: JSON.stringify({ ticks: [{ ts: minute + 1_000, bid: 0.66101, ask: 0.66111 }, { ts: minute + 30_000, bid: 0.66151, ask: 0.66161 }, { ts: minute + 61_000, bid: 0.66121, ask: 0.66131 }] }),
    });
    expect((await res.json()).accepted).toBe(3);
    const c = await closes;
    expect(c.code).toBe(0);
    expect(c.out).toEqual([`${new Date(minute).toISOString().slice(5, 16).replace("T", " ")} AUD_USD 1m  O 0.66101 H 0.66151 L 0.66101 C 0.66151 n 2`]);

    // JSON lines, and --seconds stops a quiet watch.
    const quiet = await cli(["watch", "USD_JPY", "--seconds", "0.5", "--json"]);
    expect(quiet).toMatchObject({ code: 0, out: [] });
    expect((await cli(["watch", "XXX_YYY", "--count", "1"])).err[0]).toMatch(/unknown_pair/);
  });

  it("as a process, status and watch --seconds exit by themselves (nothing left holding the event loop)", async () => {
    const run = promisify(execFile);
    const tsx = [path.join(ROOT, "node_modules/tsx/dist/cli.mjs"), "scripts/fxrt.ts"];
    const env = { ...process.env, FXRT_URL: runtime.url, FXRT_API_KEY: KEY };
    const status = await run(process.execPath, [...tsx, "status", "--json"], { cwd: ROOT, env, timeout: 20_000 });
    expect(JSON.parse(status.stdout)).toMatchObject({ access: "admin" });
    const watched = await run(process.execPath, [...tsx, "watch", "GBP_USD", "--seconds", "0.5"], { cwd: ROOT, env, timeout: 20_000 });
    expect(watched.stderr).toMatch(/^watching GBP_USD 1m, no ticks yet/);
    expect(watched.stdout).toBe("");
  });

  it("an unreachable runtime exits 1 with a clear message", async () => {
    const port = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, "127.0.0.1", () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    const r = await cli(["status", "--url", `http://127.0.0.1:${port}`]);
    expect(r.code).toBe(1);
    expect(r.err[0]).toMatch(/cannot reach the runtime at http:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED\)/);
    const j = await cli(["pairs", "--json", `--url=http://127.0.0.1:${port}`]);
    expect(JSON.parse(j.out[0]!)).toMatchObject({ error: { code: "unreachable" } });
    expect((await cli(["keys", "list", "--url", `http://127.0.0.1:${port}`])).code).toBe(1);
  });
});

describe("data lake commands", () => {
  it("import shows progress on stderr and a summary; backtest runs over it (table and --json); no data exits 1", async () => {
    // Three days of histdata M1 bars (New York clock, bid only) following a slow sine wave.
    const lines: string[] = [];
    const start = Date.UTC(2018, 0, 2, 5);
    for (let i = 0; i < 3 * 1440; i++) {
      const s = new Date(start + i * 60_000 - 5 * 3_600_000).toISOString();
      const p = (1.2 + 0.01 * Math.sin(i / 200)).toFixed(5);
      lines.push(`${s.slice(0, 4)}${s.slice(5, 7)}${s.slice(8, 10)} ${s.slice(11, 13)}${s.slice(14, 16)}00;${p};${p};${p};${p};0`);
    }
    const file = path.join(stateDir, "DAT_ASCII_EURUSD_M1_test.csv");
    await writeFile(file, `${lines.join("\n")}\n`);

    const imported = await cli(["import", file, "--pair", "EUR_USD"]);
    expect(imported.code).toBe(0);
    expect(imported.err.join("\n")).toMatch(/import: wrote candles\/EUR_USD\/1m\/2018\.arrow/);
    expect(imported.out.join("\n")).toMatch(/bars\s+4,320 kept, 0 bad/);
    expect(fits80(imported.out)).toEqual([]);
    const again = await cli(["import", file, "--pair", "EUR_USD", "--json"]);
    expect(JSON.parse(again.out[0]!)).toMatchObject({ pair: "EUR_USD", rows: 4320, replaced: 4320 });

    const args = ["backtest", "--pair", "EUR_USD", "--from", "2018-01-01", "--to", "2018-02-01", "--param", "timeframe=15m"];
    const out = await mkdtemp(path.join(tmpdir(), "fxrt-cli-reports-"));
    try {
      const table = await cli([...args, "--out", out]);
      expect(table.code).toBe(0);
      expect(table.err.join("\n")).toMatch(/backtest: 100%/);
      expect(table.out.join("\n")).toMatch(/range\s+2018-01-01 \.\. 2018-02-01 \(4,320 bars/);
      // The report paths sit on lines of their own; their length is the caller's (--out), the table's is ours.
      const reportLines = table.out.flatMap((l) => l.split("\n")).filter((l) => l.includes(out));
      expect(reportLines).toHaveLength(2);
      expect(fits80(table.out.flatMap((l) => l.split("\n")).filter((l) => !l.includes(out)))).toEqual([]);
      expect((await readdir(out)).sort()).toEqual(["EUR_USD_sma-cross_2018-01-01_2018-02-01.html", "EUR_USD_sma-cross_2018-01-01_2018-02-01.json"]);
    } finally {
      await rm(out, { recursive: true, force: true });
    }
    const json = await cli([...args, "--no-report", "--json"]);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.out[0]!)).toMatchObject({ pair: "EUR_USD", bars: 4320, tradeCount: expect.any(Number), metrics: expect.any(Object) });

    const none = await cli(["backtest", "--pair", "EUR_USD", "--from", "2019-01-01", "--to", "2019-02-01", "--no-report"]);
    expect(none.code).toBe(1);
    expect(none.err[0]).toMatch(/no EUR_USD candles/);
  });
});
