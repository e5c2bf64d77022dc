/**
 * A tick's path measured from outside the way a plain client sees it: Node's
 * own fetch (undici, keep-alive: one connection reused for every request),
 * against the runtime exactly as `npm start` serves it, and against the Node
 * `ws` baseline (bench/baseline-server.ts) in the same run.
 *
 * 1. Stages, sequential requests, no room client: GET /api/health through
 *    the served port (Miniflare's entry worker, then the Worker), the same
 *    through the assets proxy and router (the way every /api request went
 *    before run_worker_first paths were routed straight to the Worker; no
 *    entry worker); GET /api/pairs/:pair (+ an RPC into the pair actor);
 *    POST a tick with the bootstrap admin key (+ body, key hash, the actor's
 *    validation, storage and answer) and with a trader key (+ the Gatekeeper's
 *    check); a tick sent as a "ticks" message on the pair's room socket (the
 *    actor alone: no HTTP, no Worker). The Worker's own view of the tick
 *    route (its latency window, 1 ms resolution in workerd) and the pair's
 *    broadcast window come from GET /api/metrics.
 * 2. Delivery: 50 room clients, one tick POST every 100 ms with the trader
 *    key; from just before each POST to the first frame carrying the tick (or
 *    a later one) at each client. Runtime and baseline rounds alternate.
 *
 * `npx tsx bench/tick-path.ts [--quick] [--rounds N] [--clients N] [--ticks N] [--samples N]
 * [--identity]` (the delivery rounds' POSTs with `Accept-Encoding: identity`),
 * or `npm run bench -- --only tick-path`. About 100 s (--quick: 35 s).
 */
import { performance } from "node:perf_hooks";
import { pathToFileURL } from "node:url";
import type { WireTick } from "../schemas/tick.ts";
import {
  BENCH_KEY,
  fmt,
  onCleanup,
  printTable,
  ratio,
  resultBase,
  runAllCleanups,
  sleep,
  summarize,
  targetLine,
  tempDir,
  TickWalk,
  type BenchOptions,
  type LatencySummary,
  type Scenario,
  type ScenarioResult,
  startBenchRuntime,
  writeResult,
} from "./common.ts";
import { startBaselineServer } from "./baseline-server.ts";
import { closeRoomClients, connectRoomClient, deliveryLatencies, RoomFeed, roomUrl, type RoomClient } from "./room-client.ts";

const PAIR = "EUR_USD";
const TICK_PATH = `/api/pairs/${PAIR}/ticks`;
const TARGET_P99_MS = 20;
const TARGET_RATIO = 1.5;

interface Params {
  clients: number;
  rounds: number;
  ticksPerRound: number;
  warmupTicks: number;
  intervalMs: number;
  stageSamples: number;
  /** Delivery rounds' POSTs ask for no compression (`--identity`): the entry worker then sends the answer as it is. */
  identity: boolean;
}

interface Stage {
  server: "runtime" | "node ws baseline";
  stage: string;
  latencyMs: LatencySummary;
}

interface Round {
  server: "runtime" | "node ws baseline";
  round: number;
  latencyMs: LatencySummary;
  lastClientLatencyMs: LatencySummary;
  postLatencyMs: LatencySummary;
  lost: number;
  postErrors: number;
}

/** One request with Node's fetch (global dispatcher: keep-alive), body read to the end. */
async function request(url: string, init: RequestInit = {}): Promise<{ status: number; body: string }> {
  const res = await fetch(url, init);
  return { status: res.status, body: await res.text() };
}

function tickBody(tick: WireTick): string {
  return JSON.stringify({ ticks: [tick] });
}

type Send = () => Promise<{ status: number; body: string }>;

/**
 * `samples` rounds (after 20 unmeasured ones) in which every stage sends one
 * request, one after another, 1 ms apart: interleaved, so that the host's
 * load, which moves by the second, weighs on every stage alike. Any answer
 * other than 200 throws.
 */
async function timeStages(samples: number, stages: readonly (readonly [Stage["server"], string, Send])[]): Promise<Stage[]> {
  const times = stages.map((): number[] => []);
  for (let i = 0; i < samples + 20; i++) {
    for (const [j, [, label, send]] of stages.entries()) {
      const t0 = performance.now();
      const res = await send();
      const t = performance.now() - t0;
      if (res.status !== 200) throw new Error(`${label}: ${res.status} ${res.body.slice(0, 200)}`);
      if (i >= 20) times[j]!.push(t);
      await sleep(1);
    }
  }
  return stages.map(([server, stage], j) => ({ server, stage, latencyMs: summarize(times[j]!) }));
}

/** Ticks one after another for one server: each strictly later than the last, on one walk. */
class TickSource {
  private lastTs = 0;
  private readonly walk = new TickWalk(11);
  next(): WireTick {
    this.lastTs = Math.max(Date.now(), this.lastTs + 1);
    return this.walk.next(this.lastTs);
  }
}

const postTick = (url: string, key: string, ticks: TickSource): Send => () =>
  request(`${url}${TICK_PATH}`, { method: "POST", headers: { "x-api-key": key, "content-type": "application/json" }, body: tickBody(ticks.next()) });

/** The HTTP stages of both servers, interleaved; no room client connected. */
function httpStages(runtime: { url: string; routerUrl: string | undefined; traderKey: string; ticks: TickSource }, baseline: { url: string; ticks: TickSource }) {
  const { url, routerUrl } = runtime;
  const stages: (readonly [Stage["server"], string, Send])[] = [
    ["runtime", "GET /api/health: entry worker + Worker", () => request(`${url}/api/health`)],
    ["runtime", "GET /api/health, Accept-Encoding: identity (no gzip by the entry worker)", () => request(`${url}/api/health`, { headers: { "accept-encoding": "identity" } })],
    ...(routerUrl ? [["runtime", "GET /api/health: assets proxy + router + Worker, no entry worker", () => request(`${routerUrl}/api/health`)] as const] : []),
    ["runtime", `GET /api/pairs/${PAIR}: + actor RPC (a read)`, () => request(`${url}/api/pairs/${PAIR}`)],
    ["runtime", "POST tick, admin key: + body, key hash, actor ingest", postTick(url, BENCH_KEY, runtime.ticks)],
    ["runtime", "POST tick, trader key: + the Gatekeeper's check", postTick(url, runtime.traderKey, runtime.ticks)],
    ["node ws baseline", "GET /api/health", () => request(`${baseline.url}/api/health`)],
    ["node ws baseline", "POST tick", postTick(baseline.url, BENCH_KEY, baseline.ticks)],
  ];
  return stages;
}

/** A tick sent as a "ticks" message over one room socket until its "ticks_result", both servers interleaved (one room member each: the feed). */
async function feedStages(runtime: { url: string; traderKey: string; ticks: TickSource }, baseline: { url: string; ticks: TickSource }, samples: number): Promise<Stage[]> {
  const feeds = [await RoomFeed.open(`${roomUrl(runtime.url, PAIR)}&key=${runtime.traderKey}`), await RoomFeed.open(roomUrl(baseline.url, PAIR))] as const;
  const send = (feed: RoomFeed, ticks: TickSource): Send => () =>
    feed.send([ticks.next()]).then((r) => ({ status: r.accepted === 1 ? 200 : 422, body: JSON.stringify(r) }));
  try {
    return await timeStages(samples, [
      ["runtime", "tick as a room 'ticks' message: the actor alone (no HTTP, no Worker)", send(feeds[0], runtime.ticks)],
      ["node ws baseline", "tick as a room 'ticks' message", send(feeds[1], baseline.ticks)],
    ]);
  } finally {
    await Promise.all(feeds.map((f) => f.close()));
  }
}

/** One round: `clients` room clients, a tick POST every `intervalMs` (open loop), delivery latencies. */
async function deliveryRound(server: Round["server"], round: number, url: string, key: string, ticks: TickSource, p: Params): Promise<Round> {
  const clients: RoomClient[] = [];
  for (let i = 0; i < p.clients; i += 25) {
    clients.push(...(await Promise.all(Array.from({ length: Math.min(25, p.clients - i) }, () => connectRoomClient(roomUrl(url, PAIR))))));
  }
  const sent: [number, number][] = [];
  const answers: number[] = [];
  let postErrors = 0;
  try {
    await sleep(200);
    const pending: Promise<void>[] = [];
    const start = performance.now() + 50;
    for (let i = 0; i < p.warmupTicks + p.ticksPerRound; i++) {
      const wait = start + i * p.intervalMs - performance.now();
      if (wait > 0) await sleep(wait);
      const tick = ticks.next();
      const measured = i >= p.warmupTicks;
      const t0 = performance.now();
      if (measured) sent.push([tick.ts, t0]);
      pending.push(
        request(`${url}${TICK_PATH}`, {
          method: "POST",
          headers: { "x-api-key": key, "content-type": "application/json", ...(p.identity ? { "accept-encoding": "identity" } : {}) },
          body: tickBody(tick),
        }).then(
          (res) => {
            if (measured) answers.push(performance.now() - t0);
            if (res.status !== 200 && ++postErrors === 1) console.error(`  POST failed: ${res.status} ${res.body.slice(0, 200)}`);
          },
          (err: unknown) => {
            if (++postErrors === 1) console.error("  POST failed:", err);
          },
        ),
      );
    }
    await Promise.all(pending);
    await sleep(300);
  } finally {
    await closeRoomClients(clients);
  }
  const d = deliveryLatencies(clients, sent);
  return {
    server,
    round,
    latencyMs: summarize(d.latencies),
    lastClientLatencyMs: summarize(d.lastClient),
    postLatencyMs: summarize(answers),
    lost: d.lost,
    postErrors,
  };
}

const median = (xs: readonly (number | null)[]): number | null => {
  const v = xs.filter((x): x is number => x !== null).sort((a, b) => a - b);
  if (v.length === 0) return null;
  const m = Math.floor(v.length / 2);
  return v.length % 2 ? v[m]! : (v[m - 1]! + v[m]!) / 2;
};
const spread = (xs: readonly (number | null)[]): string => {
  const v = xs.filter((x): x is number => x !== null);
  return v.length ? `${fmt(Math.min(...v))}-${fmt(Math.max(...v))}` : "-";
};

/** The tick route's and the pair's own windows (ms; workerd's clock moves in whole ms, and only across I/O). */
async function insideFigures(url: string): Promise<Record<string, unknown>> {
  const res = await request(`${url}/api/metrics`, { headers: { "x-api-key": BENCH_KEY } });
  if (res.status !== 200) return {};
  const m = JSON.parse(res.body) as {
    routes: { route: string; latencyMs: unknown }[];
    pairs: { pair: string; latencyMs: Record<string, unknown> }[];
  };
  const pair = m.pairs.find((x) => x.pair === PAIR);
  return {
    workerTickRoute: m.routes.find((r) => r.route === `POST /api/pairs/:pair/ticks`)?.latencyMs ?? null,
    pairIngest: pair?.latencyMs.ingest ?? null,
    pairRoomBroadcast: pair?.latencyMs.roomBroadcast ?? null,
  };
}

async function run(options: BenchOptions, p: Params): Promise<ScenarioResult> {
  const base = await resultBase("tick-path", options);
  const state = await tempDir("fxrt-bench-tick-");
  let stopRuntime: (() => Promise<void>) | null = null;
  let stopBaseline: (() => Promise<void>) | null = null;
  try {
    console.log("starting runtime (bundling the Worker) and the baseline server...");
    // assetsRouterSocket: ignored by a runtime from before it existed (then that stage is left out).
    const runtime = await startBenchRuntime(state.dir, {}, undefined, { assetsRouterSocket: true });
    stopRuntime = onCleanup(() => runtime.stop());
    const baseline = await startBaselineServer();
    stopBaseline = baseline.stop;
    // Both undefined on a runtime from before they existed (the comparison runs of old code).
    const routes = runtime.workerFirstRoutes as string[] | undefined;
    const layout = routes?.length
      ? `served port: Miniflare entry worker -> Worker for ${routes.join(", ")}; other paths via the assets proxy and router`
      : "served port: Miniflare entry worker -> assets proxy -> assets router -> Worker for every path";
    console.log(`  ${layout}`);

    const made = await request(`${runtime.url}/api/admin/keys`, {
      method: "POST",
      headers: { "x-api-key": BENCH_KEY, "content-type": "application/json" },
      body: JSON.stringify({ role: "trader", label: "bench tick-path" }),
    });
    if (made.status !== 201) throw new Error(`creating a trader key: ${made.status} ${made.body.slice(0, 200)}`);
    const traderKey = (JSON.parse(made.body) as { key: string }).key;

    const runtimeTicks = new TickSource();
    const baselineTicks = new TickSource();
    console.log(`  stages: ${p.stageSamples} rounds of one request each, interleaved...`);
    const rt = { url: runtime.url, routerUrl: runtime.assetsRouterUrl, traderKey, ticks: runtimeTicks };
    const bl = { url: baseline.url, ticks: baselineTicks };
    const stages = [...(await timeStages(p.stageSamples, httpStages(rt, bl))), ...(await feedStages(rt, bl, p.stageSamples))];
    stages.sort((a, b) => Number(a.server !== "runtime") - Number(b.server !== "runtime"));
    const inside = await insideFigures(runtime.url);

    const rounds: Round[] = [];
    for (let r = 1; r <= p.rounds; r++) {
      console.log(`  round ${r}/${p.rounds}: ${p.clients} clients, a POST every ${p.intervalMs} ms: runtime, then baseline...`);
      rounds.push(await deliveryRound("runtime", r, runtime.url, traderKey, runtimeTicks, p));
      rounds.push(await deliveryRound("node ws baseline", r, baseline.url, BENCH_KEY, baselineTicks, p));
    }

    console.log(`\ntick-path (${options.quick ? "quick" : "full"}): stages, sequential, Node fetch keep-alive, no room client`);
    printTable(
      ["server", "stage", "p50 ms", "p99 ms", "max ms"],
      stages.map((s) => [s.server, s.stage, fmt(s.latencyMs.p50), fmt(s.latencyMs.p99), fmt(s.latencyMs.max)]),
    );
    console.log(`inside, from GET /api/metrics (ms; workerd's clock moves in whole ms): ${JSON.stringify(inside)}`);
    console.log(`\ndelivery: ${p.clients} clients, a tick POST (trader key${p.identity ? ", Accept-Encoding: identity" : ""}) every ${p.intervalMs} ms, ${p.ticksPerRound} ticks a round; latency = first frame carrying the tick - just before its POST`);
    printTable(
      ["server", "round", "samples", "p50 ms", "p99 ms", "max ms", "last-client p50", "POST answer p50", "lost", "POST errors"],
      rounds.map((r) => [r.server, r.round, r.latencyMs.n, fmt(r.latencyMs.p50), fmt(r.latencyMs.p99), fmt(r.latencyMs.max), fmt(r.lastClientLatencyMs.p50), fmt(r.postLatencyMs.p50), r.lost, r.postErrors]),
    );
    const of = (server: Round["server"], f: (r: Round) => number | null) => rounds.filter((r) => r.server === server).map(f);
    const summary = {
      runtime: { p50: median(of("runtime", (r) => r.latencyMs.p50)), p99: median(of("runtime", (r) => r.latencyMs.p99)), p50Spread: spread(of("runtime", (r) => r.latencyMs.p50)), p99Spread: spread(of("runtime", (r) => r.latencyMs.p99)) },
      baseline: { p50: median(of("node ws baseline", (r) => r.latencyMs.p50)), p99: median(of("node ws baseline", (r) => r.latencyMs.p99)), p50Spread: spread(of("node ws baseline", (r) => r.latencyMs.p50)), p99Spread: spread(of("node ws baseline", (r) => r.latencyMs.p99)) },
    };
    const p99Ratio = ratio(summary.runtime.p99, summary.baseline.p99);
    const p50Ratio = ratio(summary.runtime.p50, summary.baseline.p50);
    console.log(
      `medians over ${p.rounds} rounds: runtime p50 ${fmt(summary.runtime.p50)} (${summary.runtime.p50Spread}) p99 ${fmt(summary.runtime.p99)} (${summary.runtime.p99Spread}); ` +
        `baseline p50 ${fmt(summary.baseline.p50)} (${summary.baseline.p50Spread}) p99 ${fmt(summary.baseline.p99)} (${summary.baseline.p99Spread}); ratio p50 ${fmt(p50Ratio)}x p99 ${fmt(p99Ratio)}x`,
    );
    const lost = rounds.reduce((s, r) => s + r.lost, 0);
    const targets = [
      { description: `delivery p99 <= ${TARGET_P99_MS} ms at ${p.clients} clients (median of rounds)`, value: summary.runtime.p99, met: summary.runtime.p99 === null ? null : summary.runtime.p99 <= TARGET_P99_MS },
      { description: `delivery p99 within ${TARGET_RATIO}x the Node ws baseline (median of rounds)`, value: p99Ratio, met: p99Ratio === null ? null : p99Ratio <= TARGET_RATIO },
      { description: "no tick lost", value: lost, met: lost === 0 },
    ];
    for (const t of targets) console.log(targetLine(t.description, t.value, t.met));
    return {
      ...base,
      parameters: { pair: PAIR, ...p, client: "Node fetch (global undici dispatcher, keep-alive) for HTTP; ws package room clients, perMessageDeflate off; all in this process", layout },
      figures: { stages: stages.filter((s) => s.server === "runtime"), inside, rounds: rounds.filter((r) => r.server === "runtime"), summary: summary.runtime },
      baseline: { description: "plain Node http + ws server in a child process (bench/baseline-server.ts)", stages: stages.filter((s) => s.server !== "runtime"), rounds: rounds.filter((r) => r.server !== "runtime"), summary: summary.baseline },
      ratios: { deliveryP99_runtimeOverBaseline: p99Ratio, deliveryP50_runtimeOverBaseline: p50Ratio },
      targets,
      notes: ["Rounds of the runtime and the baseline alternate; figures are the medians of the rounds' p50 and p99.", "Targets are reported, not asserted."],
    };
  } finally {
    if (stopBaseline) await stopBaseline();
    if (stopRuntime) await stopRuntime();
    await state.remove();
  }
}

function params(quick: boolean, argv: readonly string[] = []): Params {
  const arg = (name: string, fallback: number) => {
    const i = argv.indexOf(name);
    const value = i >= 0 ? Number(argv[i + 1]) : fallback;
    if (!Number.isInteger(value) || value <= 0) throw new Error(`${name} must be a positive integer`);
    return value;
  };
  return {
    clients: arg("--clients", 50),
    rounds: arg("--rounds", quick ? 1 : 3),
    ticksPerRound: arg("--ticks", quick ? 30 : 100),
    warmupTicks: 10,
    intervalMs: 100,
    stageSamples: arg("--samples", quick ? 50 : 200),
    identity: argv.includes("--identity"),
  };
}

export const tickPath: Scenario = {
  name: "tick-path",
  // About 100 s: the full run would pass 10 minutes (--quick runs its short form, about 35 s).
  onlyWhenNamed: true,
  description: "a tick from a plain client (Node fetch, keep-alive): stages (entry worker, router, Worker, actor) and delivery to 50 room clients at 10 ticks/s, against a Node ws server",
  run: (options) => run(options, params(options.quick)),
};

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const argv = process.argv.slice(2);
  run({ quick: argv.includes("--quick") }, params(argv.includes("--quick"), argv))
    .then(async (result) => console.log(`wrote ${await writeResult(result)}`))
    .catch((err: unknown) => {
      console.error(err);
      process.exitCode = 1;
    })
    .finally(() => runAllCleanups());
}
