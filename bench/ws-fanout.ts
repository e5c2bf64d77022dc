/**
 * Latency from a tick coming in to the "tick" frame at each of N WebSocket
 * clients (50, 200, 500) of one pair's room, at 10 and 50 ticks/s, and ticks
 * lost; for both ingress paths: an HTTP POST per tick, and a feed sending
 * "ticks" messages over its own room socket (no HTTP request per tick).
 * A tick counts as delivered to a client by the first frame carrying it or a
 * later tick: the room coalesces ticks closer than TICK_COALESCE_MS (10 ms)
 * into one frame with the latest quote, so in bursts some ticks travel inside
 * a later frame (by design: a client wants the latest price, not every one).
 * At 10 and 50 ticks/s every tick gets its own frame. Lost = a tick no frame
 * ever covered. Baseline in the same run: a plain Node HTTP + `ws` server in a
 * child process doing the same job with the same frames and the same client
 * code (it never coalesces).
 */
import { performance } from "node:perf_hooks";
import type { WireTick } from "../schemas/tick.ts";
import {
  BENCH_KEY,
  fmt,
  onCleanup,
  Poster,
  printTable,
  ratio,
  resultBase,
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
} from "./common.ts";
import { startBaselineServer } from "./baseline-server.ts";
import { freePort } from "./inspector-session.ts";
import { printProfiles, startProfiles, type IsolateProfile } from "./isolate-profile.ts";
import { closeRoomClients, connectRoomClient, deliveryLatencies, ROOM_QUERY, RoomFeed, roomUrl, type RoomClient } from "./room-client.ts";

const PAIR = "EUR_USD";
const TICK_PATH = `/api/pairs/${PAIR}/ticks`;
const RATES_PER_SEC = [10, 50] as const;
const TARGET_P99_MS = 20;
const TARGET_CLIENTS = 50;

/** How ticks come in: one HTTP POST each, or a "ticks" message on a feed's room socket. */
type Ingress = "feed" | "post";
const INGRESSES: readonly Ingress[] = ["feed", "post"];

interface RunFigures {
  ingress: Ingress;
  clients: number;
  ticksPerSec: number;
  ticks: number;
  latencyMs: LatencySummary;
  /** Per tick, the latency to the last client that got it. */
  lastClientLatencyMs: LatencySummary;
  /** Until the POST's answer, or the feed's "ticks_result". */
  postLatencyMs: LatencySummary;
  lostFrames: number;
  coalescedFrames: number;
  postErrors: number;
  tickFrameBytes: number | null;
  framesPerTickPerClient: number | null;
  connectSeconds: number;
}

async function connectAll(url: string, n: number): Promise<RoomClient[]> {
  const clients: RoomClient[] = [];
  for (let i = 0; i < n; i += 25) {
    const chunk = await Promise.all(Array.from({ length: Math.min(25, n - i) }, () => connectRoomClient(url)));
    clients.push(...chunk);
  }
  return clients;
}

/** Connect N clients, post warm-up then measured ticks at a fixed rate (open loop), collect latencies. */
async function measure(baseUrl: string, ingress: Ingress, n: number, ticksPerSec: number, ticks: number, warmup: number, walk: TickWalk): Promise<RunFigures> {
  const intervalMs = 1000 / ticksPerSec;
  const wsUrl = roomUrl(baseUrl, PAIR);
  const c0 = performance.now();
  const clients = await connectAll(wsUrl, n);
  const connectSeconds = (performance.now() - c0) / 1000;
  const poster = new Poster(baseUrl, 4);
  // The feed is a room connection too (one more send per tick, for both servers); it is not measured.
  const feed = ingress === "feed" ? await RoomFeed.open(`${wsUrl}&key=${BENCH_KEY}`) : null;
  const sendTick = (tick: WireTick): Promise<{ status: number; body: string }> =>
    feed
      ? feed.send([tick]).then((r) => ({ status: r.accepted === 1 ? 200 : 422, body: JSON.stringify(r) }))
      : poster.post(TICK_PATH, JSON.stringify({ ticks: [tick] }));
  const sentAt = new Map<number, number>();
  const postLatencies: number[] = [];
  let postErrors = 0;
  try {
    await sleep(200);
    let lastTs = 0;
    const pending: Promise<void>[] = [];
    const start = performance.now() + 50;
    for (let i = 0; i < warmup + ticks; i++) {
      const wait = start + i * intervalMs - performance.now();
      if (wait > 0) await sleep(wait);
      const ts = Math.max(Date.now(), lastTs + 1);
      lastTs = ts;
      const tick = walk.next(ts);
      const measured = i >= warmup;
      const t0 = performance.now();
      if (measured) sentAt.set(ts, t0);
      pending.push(
        sendTick(tick).then(
          (res) => {
            if (measured) postLatencies.push(performance.now() - t0);
            if (res.status !== 200) {
              postErrors++;
              if (postErrors === 1) console.error(`  POST failed: ${res.status} ${res.body.slice(0, 200)}`);
            }
          },
          (err: unknown) => {
            postErrors++;
            if (postErrors === 1) console.error("  POST failed:", err);
          },
        ),
      );
    }
    await Promise.all(pending);
    await sleep(500); // stragglers
  } finally {
    poster.close();
    await feed?.close();
    await closeRoomClients(clients);
  }

  const { latencies, lastClient, lost } = deliveryLatencies(clients, sentAt);
  const tickFrames = clients.reduce((s, c) => s + c.tickFrames, 0);
  const tickBytes = clients.reduce((s, c) => s + c.tickBytes, 0);
  const otherFrames = clients.reduce((s, c) => s + c.otherFrames, 0);
  const totalTicks = warmup + ticks;
  return {
    ingress,
    clients: n,
    ticksPerSec,
    ticks,
    latencyMs: summarize(latencies),
    lastClientLatencyMs: summarize(lastClient),
    postLatencyMs: summarize(postLatencies),
    lostFrames: lost,
    coalescedFrames: clients.reduce((s, c) => s + c.coalesced, 0),
    postErrors,
    tickFrameBytes: tickFrames ? Math.round(tickBytes / tickFrames) : null,
    framesPerTickPerClient: tickFrames ? Math.round(((tickFrames + otherFrames) / (totalTicks * n)) * 100) / 100 : null,
    connectSeconds: Math.round(connectSeconds * 100) / 100,
  };
}

interface Stage {
  stage: string;
  latencyMs: LatencySummary;
}

/**
 * Where a tick's time goes before any client: sequential requests on one
 * keep-alive socket, no room client connected. Runtime: the Worker alone
 * (GET /api/health), plus the RPC to the pair actor (GET /api/pairs/:pair, a
 * read), plus the tick's validation and storage (POST, no client). Baseline:
 * the POST. With POST p50 at N clients, (that - POST p50 here) / N is what
 * each client adds to a tick: the server's send, and this process receiving
 * the frame before the POST's answer (the same for both servers, so the
 * difference between them is the server's).
 */
async function ingressStages(baseUrl: string, runtime: boolean, samples: number): Promise<Stage[]> {
  const poster = new Poster(baseUrl, 1);
  const walk = new TickWalk(11);
  let lastTs = 0;
  type Request = [string, () => Promise<{ status: number; body: string }>];
  const reads: Request[] = [
    ["GET /api/health (Worker)", () => poster.get("/api/health")],
    ["GET /api/pairs/:pair (Worker + actor RPC)", () => poster.get(`/api/pairs/${PAIR}`)],
  ];
  const requests: Request[] = [
    ...(runtime ? reads : []),
    [
      "POST tick, no client (+ validation, storage)",
      () => {
        lastTs = Math.max(Date.now(), lastTs + 1);
        return poster.post(TICK_PATH, JSON.stringify({ ticks: [walk.next(lastTs)] }));
      },
    ],
  ];
  const stages: Stage[] = [];
  try {
    for (const [stage, send] of requests) {
      const times: number[] = [];
      for (let i = 0; i < samples + 20; i++) {
        const t0 = performance.now();
        const res = await send();
        if (res.status !== 200) throw new Error(`${stage}: ${res.status} ${res.body.slice(0, 200)}`);
        if (i >= 20) times.push(performance.now() - t0);
        await sleep(2);
      }
      stages.push({ stage, latencyMs: summarize(times) });
    }
  } finally {
    poster.close();
  }
  return stages;
}

/** What one client adds to a tick, from the POST p50 at N clients (10 ticks/s) against the POST alone, in us. */
function sendCostUs(stages: readonly Stage[], runs: readonly RunFigures[], clients: number): number | null {
  const alone = stages.at(-1)?.latencyMs.p50;
  const withClients = runs.find((r) => r.ingress === "post" && r.clients === clients && r.ticksPerSec === 10)?.postLatencyMs.p50;
  return alone == null || withClients == null ? null : Math.round(((withClients - alone) / clients) * 1000 * 10) / 10;
}

export const wsFanout: Scenario = {
  name: "ws-fanout",
  description: "tick in (feed message or POST) -> 'tick' frame latency at N WebSocket clients of one pair room",
  async run(options: BenchOptions): Promise<ScenarioResult> {
    const base = await resultBase("ws-fanout", options);
    const clientCounts = options.quick ? [50] : [50, 200, 500];
    const rates = options.quick ? [10] : RATES_PER_SEC;
    // About 6 s of measured ticks per run at 10/s, 4 s at 50/s (quick: 3 s), for each ingress.
    const ticksAt = (rate: number) => (options.quick ? 30 : rate === 10 ? 60 : 200);
    const warmup = options.quick ? 5 : 10;

    const state = await tempDir("fxrt-bench-ws-");
    let stopRuntime: (() => Promise<void>) | null = null;
    let stopBaseline: (() => Promise<void>) | null = null;
    try {
      console.log("starting runtime (bundling the Worker) and the baseline server...");
      const inspectorPort = options.profile ? await freePort() : undefined;
      const runtime = await startBenchRuntime(state.dir, {}, inspectorPort);
      stopRuntime = onCleanup(() => runtime.stop());
      const baselineServer = await startBaselineServer();
      stopBaseline = baselineServer.stop;

      console.log("  ingress stages, no client connected: runtime, then baseline...");
      const stageSamples = options.quick ? 100 : 300;
      const runtimeStages = await ingressStages(runtime.url, true, stageSamples);
      const baselineStages = await ingressStages(baselineServer.url, false, stageSamples);

      const runtimeRuns: RunFigures[] = [];
      const baselineRuns: RunFigures[] = [];
      const stopProfiles = inspectorPort === undefined ? null : await startProfiles(inspectorPort, "ws-fanout");
      for (const ingress of INGRESSES) {
        for (const rate of rates) {
          for (const n of clientCounts) {
            console.log(`  ${ingress}: ${n} clients at ${rate} ticks/s: runtime...`);
            runtimeRuns.push(await measure(runtime.url, ingress, n, rate, ticksAt(rate), warmup, new TickWalk(7)));
            console.log(`  ${ingress}: ${n} clients at ${rate} ticks/s: baseline...`);
            baselineRuns.push(await measure(baselineServer.url, ingress, n, rate, ticksAt(rate), warmup, new TickWalk(7)));
          }
        }
      }

      const profiles: IsolateProfile[] | null = stopProfiles ? await stopProfiles() : null;
      const key = (r: RunFigures) => `${r.ingress}_${r.clients}_${r.ticksPerSec}`;
      const ratios: Record<string, number | null> = {};
      for (const [i, r] of runtimeRuns.entries()) {
        const b = baselineRuns[i];
        ratios[`p99_runtimeOverBaseline_${key(r)}`] = ratio(r.latencyMs.p99, b?.latencyMs.p99);
        ratios[`p50_runtimeOverBaseline_${key(r)}`] = ratio(r.latencyMs.p50, b?.latencyMs.p50);
      }
      // Targets on the worst rate measured for each ingress and client count.
      const worstRatio = (ingress: Ingress, clients: number) => {
        const values = runtimeRuns.filter((r) => r.ingress === ingress && r.clients === clients).map((r) => ratios[`p99_runtimeOverBaseline_${key(r)}`] ?? null);
        return values.some((x) => x === null) || values.length === 0 ? null : Math.max(...(values as number[]));
      };
      const worstP99 = (ingress: Ingress, clients: number) =>
        runtimeRuns.filter((r) => r.ingress === ingress && r.clients === clients).reduce<number | null>((m, r) => (r.latencyMs.p99 === null ? m : Math.max(m ?? 0, r.latencyMs.p99)), null);
      const targets = INGRESSES.flatMap((ingress) => {
        const p99At50 = worstP99(ingress, TARGET_CLIENTS);
        const ratio50 = worstRatio(ingress, TARGET_CLIENTS);
        const ratio500 = worstRatio(ingress, 500);
        return [
          { description: `${ingress}: p99 < ${TARGET_P99_MS} ms for ${TARGET_CLIENTS} clients (worst rate)`, value: p99At50, met: p99At50 === null ? null : p99At50 < TARGET_P99_MS },
          { description: `${ingress}: p99 within 1.5x the ws baseline for ${TARGET_CLIENTS} clients (worst rate)`, value: ratio50, met: ratio50 === null ? null : ratio50 <= 1.5 },
          ...(clientCounts.includes(500) ? [{ description: `${ingress}: p99 within 2x the ws baseline for 500 clients (worst rate)`, value: ratio500, met: ratio500 === null ? null : ratio500 <= 2 }] : []),
        ];
      });
      targets.push({ description: "no tick lost", value: runtimeRuns.reduce((s, r) => s + r.lostFrames, 0), met: runtimeRuns.every((r) => r.lostFrames === 0) });

      console.log(`\nws-fanout (${options.quick ? "quick" : "full"}): latency = arrival of the first frame carrying the tick (or a later one) - just before its POST or feed message`);
      const rows: (string | number)[][] = [];
      for (const [i, r] of runtimeRuns.entries()) {
        const b = baselineRuns[i]!;
        for (const [label, f] of [["runtime", r], ["node ws baseline", b]] as const) {
          rows.push([
            label,
            f.ingress,
            f.clients,
            f.ticksPerSec,
            f.latencyMs.n,
            fmt(f.latencyMs.p50),
            fmt(f.latencyMs.p99),
            fmt(f.latencyMs.max),
            fmt(f.lastClientLatencyMs.p50),
            fmt(f.postLatencyMs.p50),
            f.lostFrames,
            f.coalescedFrames,
            f.tickFrameBytes ?? "-",
            f.framesPerTickPerClient ?? "-",
          ]);
        }
        rows.push([
          "ratio runtime/baseline",
          r.ingress,
          r.clients,
          r.ticksPerSec,
          "",
          `${fmt(ratios[`p50_runtimeOverBaseline_${key(r)}`])}x`,
          `${fmt(ratios[`p99_runtimeOverBaseline_${key(r)}`])}x`,
          "",
          "",
          "",
          "",
          "",
          "",
          "",
        ]);
      }
      printTable(
        ["server", "ingress", "clients", "ticks/s", "samples", "p50 ms", "p99 ms", "max ms", "last-client p50", "answer p50", "lost", "coalesced", "tick B", "frames/tick"],
        rows,
      );
      console.log("\nwhere a tick's time goes (sequential requests, no client connected):");
      printTable(
        ["server", "stage", "p50 ms", "p99 ms"],
        [
          ...runtimeStages.map((st) => ["runtime", st.stage, fmt(st.latencyMs.p50), fmt(st.latencyMs.p99)]),
          ...baselineStages.map((st) => ["node ws baseline", st.stage, fmt(st.latencyMs.p50), fmt(st.latencyMs.p99)]),
        ],
      );
      const sendCost = Object.fromEntries(
        clientCounts.map((n) => [n, { runtimeUs: sendCostUs(runtimeStages, runtimeRuns, n), baselineUs: sendCostUs(baselineStages, baselineRuns, n) }]),
      );
      for (const [n, c] of Object.entries(sendCost)) {
        console.log(`cost per client of a tick at ${n} clients, (POST p50 at 10/s - POST p50 alone) / ${n}: runtime ${fmt(c.runtimeUs, 1)} us, node ws ${fmt(c.baselineUs, 1)} us`);
      }
      if (profiles) printProfiles(profiles);
      for (const t of targets) console.log(targetLine(t.description, t.value, t.met));

      return {
        ...base,
        parameters: {
          pair: PAIR,
          clientCounts,
          ticksPerSec: rates,
          ticksPerRun: Object.fromEntries(rates.map((r) => [r, ticksAt(r)])),
          warmupTicks: warmup,
          roomQuery: ROOM_QUERY,
          tickCoalesceMs: 10,
          client: "ws package, perMessageDeflate off, all clients and the poster in this process",
        },
        figures: { runs: runtimeRuns, stages: runtimeStages, perClientCostUs: sendCost, ...(profiles ? { cpuProfile: profiles } : {}) },
        baseline: { description: "plain Node http + ws server in a child process, same POST body or feed message, same frames (tick with the 1m candle in progress)", runs: baselineRuns, stages: baselineStages },
        ratios,
        targets,
        notes: [
          "latency samples = clients x ticks; last-client = per tick, the slowest client.",
          "frames/tick counts every frame a client got per posted tick (1 = one tick frame carrying the candle in progress).",
          "Targets are reported, not asserted.",
        ],
      };
    } finally {
      if (stopBaseline) await stopBaseline();
      if (stopRuntime) await stopRuntime();
      await state.remove();
    }
  },
};
