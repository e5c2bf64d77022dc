/**
 * Many pairs at once: N pairs (3, 10, then 30), each its own actor, every
 * pair ticking at the same fixed rate (10/s, so the total load grows with N),
 * one WebSocket client in each pair's room. Per pair, latency from a tick POST to the "tick" frame carrying it (or a
 * later tick of the same pair, if the room coalesced them) at that pair's
 * client; the target is that it stays flat as pairs are added: p99 at the
 * largest N within 1.2x of the p99 at 3 pairs, measured in the same run. Full
 * runs measure in 2 rounds that alternate the order of the configurations,
 * pooled, so a burst of other work on the machine does not land on one N only.
 *
 * Second baseline, to tell the runtime's growth from the machine's: a plain
 * Node HTTP + `ws` server with one room per pair (a child process, as workerd
 * is; bench/baseline-server.ts, shared with ws-fanout) taking the same POSTs and
 * sending the same frames (a tick frame carrying the 1m candle in progress) to the same clients.
 *
 * Where the time goes: for each run, the CPU the server process(es), this
 * client process and the whole machine used during the measured window, the
 * client's event-loop delay and how late the client sent each POST against its
 * schedule (a late or busy load generator shows there, not as server latency).
 */
import { readFileSync } from "node:fs";
import { monitorEventLoopDelay, performance } from "node:perf_hooks";
import { startBaselineServer } from "./baseline-server.ts";
import { closeRoomClients, connectRoomClient, ROOM_QUERY, roomUrl } from "./room-client.ts";
import { getInstrument, SYMBOLS } from "../src/domain/instruments.ts";
import type { WireTick } from "../schemas/tick.ts";
import {
  workerdPids,
  startBenchRuntime,
  fmt,
  onCleanup,
  percentile,
  Poster,
  printTable,
  ratio,
  resultBase,
  round,
  sleep,
  summarize,
  targetLine,
  tempDir,
  TickWalk,
  type BenchOptions,
  type LatencySummary,
  type Scenario,
  type ScenarioResult,
} from "./common.ts";

const PAIR_COUNTS = [3, 10, 30] as const;
/** Ticks per second on every pair. */
const RATE = 10;
const TARGET_GROWTH = 1.2;

// ---- price walks per pair ---------------------------------------------------------

/**
 * TickWalk in the pair's own points, from the pair's reference level (a price
 * the runtime takes for it: ticks far from it are refused as out of band).
 */
class PairWalk {
  private readonly walk: TickWalk;
  private readonly scale: number;

  constructor(pair: string, seed: number) {
    const instrument = getInstrument(pair);
    this.scale = 10 ** instrument.displayPrecision;
    this.walk = new TickWalk(seed, Math.round(instrument.referenceMid * this.scale));
  }

  next(ts: number): WireTick {
    // TickWalk writes its points as 5-digit decimals: back to points, then to this pair's decimals.
    const t = this.walk.next(ts);
    return { ts, bid: Math.round(t.bid * 1e5) / this.scale, ask: Math.round(t.ask * 1e5) / this.scale };
  }
}

// ---- CPU accounting (Linux /proc; null elsewhere) ---------------------------------------

const CLOCK_TICKS_PER_SEC = 100;

interface CpuSnapshot {
  at: number;
  client: NodeJS.CpuUsage;
  /** CPU seconds of the server processes. */
  server: number | null;
  /** /proc/stat: total and busy jiffies over all cores. */
  machine: { total: number; busy: number } | null;
}

/** utime + stime in seconds, or null if the process is gone or there is no /proc. */
function processCpuSeconds(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // fields[0] is field 3 (state): utime is field 14, stime field 15.
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SEC;
  } catch {
    return null;
  }
}

function machineJiffies(): { total: number; busy: number } | null {
  try {
    const line = readFileSync("/proc/stat", "utf8").split("\n")[0] ?? "";
    const v = line.trim().split(/\s+/).slice(1).map(Number);
    const total = v.reduce((s, x) => s + x, 0);
    const idle = (v[3] ?? 0) + (v[4] ?? 0);
    return { total, busy: total - idle };
  } catch {
    return null;
  }
}

function cpuSnapshot(serverPids: readonly number[]): CpuSnapshot {
  let server: number | null = serverPids.length ? 0 : null;
  for (const pid of serverPids) {
    const s = processCpuSeconds(pid);
    server = s === null || server === null ? null : server + s;
  }
  return { at: performance.now(), client: process.cpuUsage(), server, machine: machineJiffies() };
}

interface CpuFigures {
  /** Cores' worth of CPU (CPU seconds per wall second) over the measured window. */
  clientCores: number | null;
  serverCores: number | null;
  /** Share of all cores busy (any process), 0-1. */
  machineBusy: number | null;
}

// ---- clients ----------------------------------------------------------------------------

// ---- one run ---------------------------------------------------------------------------------

/** What one measured run leaves; runs of the same server and N are pooled (see combine). */
interface RawRun {
  /** Per pair: latency samples, each with the tick's ts (to find the slowest). */
  samples: { ts: number; ms: number }[][];
  /** Date.now() when the measured window opened. */
  startedAt: number;
  lost: number[];
  coalesced: number;
  postLatencies: number[];
  sendLag: number[];
  postErrors: number;
  rejectedTicks: number;
  measuredTicks: number;
  seconds: number;
  /** Client event-loop delay beyond the monitor's timer resolution. */
  loopDelayMs: { p99: number | null; max: number | null };
  cpu: { wall: number; client: number; server: number | null; machineTotal: number | null; machineBusy: number | null };
}

interface RunPlan {
  baseUrl: string;
  pairs: readonly string[];
  warmupSeconds: number;
  measureSeconds: number;
  ticksPerSec: number;
  serverPids: readonly number[];
  seed: number;
}

/**
 * One client per pair room, then each pair's ticks on its own schedule, the
 * pairs staggered evenly over the tick interval (open loop: a slow answer never
 * delays the next send). One keep-alive connection per pair, so one pair's
 * ticks stay in order (as from one feed writer) and pairs do not queue behind
 * each other in the client.
 */
async function measure(plan: RunPlan): Promise<RawRun> {
  const { pairs } = plan;
  const n = pairs.length;
  const intervalMs = 1000 / plan.ticksPerSec;
  const warmupTicks = Math.round(plan.warmupSeconds * plan.ticksPerSec);
  const measuredTicks = Math.round(plan.measureSeconds * plan.ticksPerSec);
  // Client event-loop delay over the measured window.
  const loop = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });

  const clients = await Promise.all(pairs.map((p) => connectRoomClient(roomUrl(plan.baseUrl, p))));
  const posters = pairs.map(() => new Poster(plan.baseUrl, 1));
  const walks = pairs.map((p, i) => new PairWalk(p, plan.seed + i));
  const lastTs = pairs.map(() => 0);
  const sent = pairs.map((): { ts: number; t0: number }[] => []);
  const postLatencies: number[] = [];
  const sendLag: number[] = [];
  let postErrors = 0;
  let rejectedTicks = 0;
  let cpuStart: CpuSnapshot | null = null;
  let cpuEnd: CpuSnapshot | null = null;
  let startedAt = Date.now();
  try {
    await sleep(100);
    const pending: Promise<void>[] = [];
    const start = performance.now() + 50;
    const slots = (warmupTicks + measuredTicks) * n;
    for (let s = 0; s < slots; s++) {
      const k = Math.floor(s / n);
      const i = s % n;
      const measured = k >= warmupTicks;
      const due = start + k * intervalMs + (i * intervalMs) / n;
      const wait = due - performance.now();
      if (wait > 0) await sleep(wait);
      if (measured && cpuStart === null) {
        cpuStart = cpuSnapshot(plan.serverPids);
        startedAt = Date.now();
        loop.enable();
      }
      const pair = pairs[i]!;
      const ts = Math.max(Date.now(), (lastTs[i] ?? 0) + 1);
      lastTs[i] = ts;
      const body = JSON.stringify({ ticks: [walks[i]!.next(ts)] });
      const t0 = performance.now();
      if (measured) {
        sent[i]!.push({ ts, t0 });
        sendLag.push(Math.max(0, t0 - due));
      }
      pending.push(
        posters[i]!.post(`/api/pairs/${pair}/ticks`, body).then(
          (res) => {
            if (measured) postLatencies.push(performance.now() - t0);
            if (res.status !== 200) {
              postErrors++;
              if (postErrors === 1) console.error(`  POST ${pair} failed: ${res.status} ${res.body.slice(0, 200)}`);
              return;
            }
            const rejected = (JSON.parse(res.body) as { rejected?: unknown[] }).rejected?.length ?? 0;
            if (rejected > 0) {
              rejectedTicks += rejected;
              if (rejectedTicks === rejected) console.error(`  ${pair}: tick rejected: ${res.body.slice(0, 200)}`);
            }
          },
          (err: unknown) => {
            postErrors++;
            if (postErrors === 1) console.error(`  POST ${pair} failed:`, err);
          },
        ),
      );
    }
    // The window closes one interval after the last send, when that tick's frames are due.
    await sleep(intervalMs);
    cpuEnd = cpuSnapshot(plan.serverPids);
    loop.disable();
    await Promise.all(pending);
    // Stragglers: until every pair's last measured tick has been seen, at most 1 s.
    const settleBy = performance.now() + 1_000;
    while (performance.now() < settleBy) {
      const done = clients.every((c, i) => {
        const last = sent[i]!.at(-1);
        return last === undefined || (c.arrivals.at(-1)?.ts ?? -1) >= last.ts;
      });
      if (done) break;
      await sleep(10);
    }
  } finally {
    loop.disable();
    for (const p of posters) p.close();
    await closeRoomClients(clients);
  }

  const samples: { ts: number; ms: number }[][] = [];
  const lost: number[] = [];
  for (const [i, c] of clients.entries()) {
    const own: { ts: number; ms: number }[] = [];
    let missing = 0;
    let k = 0;
    // First frame at or after each sent tick (a coalesced frame carries the latest tick).
    for (const { ts, t0 } of sent[i]!) {
      while (k < c.arrivals.length && c.arrivals[k]!.ts < ts) k++;
      const frame = c.arrivals[k];
      if (frame === undefined) missing++;
      else own.push({ ts, ms: frame.at - t0 });
    }
    samples.push(own);
    lost.push(missing);
  }
  const loopMs = (ns: number) => (Number.isFinite(ns) && ns > 0 ? Math.max(0, ns / 1e6 - LOOP_RESOLUTION_MS) : null);
  const a = cpuStart ?? cpuSnapshot(plan.serverPids);
  const b = cpuEnd ?? a;
  return {
    samples,
    startedAt,
    lost,
    coalesced: clients.reduce((s, c) => s + c.coalesced, 0),
    postLatencies,
    sendLag,
    postErrors,
    rejectedTicks,
    measuredTicks: measuredTicks * n,
    seconds: (b.at - a.at) / 1000,
    loopDelayMs: { p99: loopMs(loop.percentile(99)), max: loopMs(loop.max) },
    cpu: {
      wall: (b.at - a.at) / 1000,
      client: (b.client.user - a.client.user + b.client.system - a.client.system) / 1e6,
      server: a.server === null || b.server === null ? null : b.server - a.server,
      machineTotal: a.machine && b.machine ? b.machine.total - a.machine.total : null,
      machineBusy: a.machine && b.machine ? b.machine.busy - a.machine.busy : null,
    },
  };
}

interface PairFigures {
  pair: string;
  latencyMs: LatencySummary;
  lost: number;
}

interface RunFigures {
  server: "runtime" | "baseline";
  /** "3", "10", "10x30" (10 pairs at 30 ticks/s). */
  config: string;
  pairs: number;
  pairNames: string[];
  ticksPerSecPerPair: number;
  /** Measured runs pooled into these figures (alternating N, so both see the same machine). */
  rounds: number;
  measuredTicks: number;
  /** Measured ticks over the measured windows (all pairs). */
  ticksPerSec: number | null;
  /** Every pair's samples together. */
  latencyMs: LatencySummary;
  /** Each pair's own p99: the median over pairs and the worst pair. */
  pairP99MedianMs: number | null;
  worstPair: { pair: string; p99: number | null } | null;
  perPair: PairFigures[];
  /**
   * The slowest samples: pair, latency, which run (round) and when in its measured window the tick
   * was sent (several pairs slow at the same instant = a process- or machine-wide pause, not one
   * pair's queue), and whether the tick was its pair's first of a minute (it closes the 1m candle).
   */
  slowest: { pair: string; ms: number; run: number; atS: number; minuteClose: boolean }[];
  postLatencyMs: LatencySummary;
  lostFrames: number;
  coalescedFrames: number;
  postErrors: number;
  rejectedTicks: number;
  /** How late the client sent each POST against its schedule. */
  sendLagMs: LatencySummary;
  /** Client event-loop delay beyond the monitor's timer resolution: the worst run's p99 and max. */
  clientLoopDelayMs: { p99: number | null; max: number | null };
  cpu: CpuFigures;
}

const LOOP_RESOLUTION_MS = 10;

interface RunConfig {
  key: string;
  pairs: number;
  ticksPerSec: number;
  label: string;
}

function combine(server: "runtime" | "baseline", config: RunConfig, pairs: readonly string[], raws: readonly RawRun[]): RunFigures {
  const pooled: number[] = [];
  const perPair: PairFigures[] = [];
  const all: { pair: string; ts: number; ms: number; run: number; atS: number }[] = [];
  for (const [i, pair] of pairs.entries()) {
    const own = raws.flatMap((r) => r.samples[i] ?? []);
    for (const [run, r] of raws.entries()) for (const x of r.samples[i] ?? []) all.push({ pair, ...x, run: run + 1, atS: (x.ts - r.startedAt) / 1000 });
    pooled.push(...own.map((s) => s.ms));
    perPair.push({ pair, latencyMs: summarize(own.map((s) => s.ms)), lost: raws.reduce((s, r) => s + (r.lost[i] ?? 0), 0) });
  }
  // A pair's first tick of a minute closes its 1m candle (indicators, strategy): mark it.
  const firstOfMinute = new Set<string>();
  for (const [i, pair] of pairs.entries()) {
    for (const r of raws) {
      let minute = -1;
      for (const s of r.samples[i] ?? []) {
        const m = Math.floor(s.ts / 60_000);
        if (m !== minute && minute !== -1) firstOfMinute.add(`${pair}@${s.ts}`);
        minute = m;
      }
    }
  }
  const slowest = all
    .sort((a, b) => b.ms - a.ms)
    .slice(0, 5)
    .map((s) => ({ pair: s.pair, ms: round(s.ms, 2) ?? 0, run: s.run, atS: round(s.atS, 3) ?? 0, minuteClose: firstOfMinute.has(`${s.pair}@${s.ts}`) }));
  const pairP99s = perPair.map((p) => p.latencyMs.p99).filter((x): x is number => x !== null);
  const worst = perPair.reduce<PairFigures | null>((w, p) => (p.latencyMs.p99 !== null && (w === null || p.latencyMs.p99 > (w.latencyMs.p99 ?? -1)) ? p : w), null);
  const worstOf = (xs: (number | null)[]) => (xs.some((x) => x === null) || xs.length === 0 ? null : round(Math.max(...(xs as number[])), 2));
  const seconds = raws.reduce((s, r) => s + r.seconds, 0);
  const measuredTicks = raws.reduce((s, r) => s + r.measuredTicks, 0);
  const sum = (f: (r: RawRun) => number | null) => raws.reduce<number | null>((s, r) => (s === null || f(r) === null ? null : s + (f(r) as number)), 0);
  const wall = sum((r) => r.cpu.wall) ?? 0;
  const serverCpu = sum((r) => r.cpu.server);
  const machineTotal = sum((r) => r.cpu.machineTotal);
  const machineBusy = sum((r) => r.cpu.machineBusy);
  return {
    server,
    config: config.key,
    pairs: pairs.length,
    pairNames: [...pairs],
    ticksPerSecPerPair: config.ticksPerSec,
    rounds: raws.length,
    measuredTicks,
    ticksPerSec: seconds > 0 ? round(measuredTicks / seconds, 1) : null,
    latencyMs: summarize(pooled),
    pairP99MedianMs: round(percentile([...pairP99s].sort((a, b) => a - b), 50)),
    worstPair: worst ? { pair: worst.pair, p99: worst.latencyMs.p99 } : null,
    perPair,
    slowest,
    postLatencyMs: summarize(raws.flatMap((r) => r.postLatencies)),
    lostFrames: perPair.reduce((s, p) => s + p.lost, 0),
    coalescedFrames: raws.reduce((s, r) => s + r.coalesced, 0),
    postErrors: raws.reduce((s, r) => s + r.postErrors, 0),
    rejectedTicks: raws.reduce((s, r) => s + r.rejectedTicks, 0),
    sendLagMs: summarize(raws.flatMap((r) => r.sendLag)),
    clientLoopDelayMs: { p99: worstOf(raws.map((r) => r.loopDelayMs.p99)), max: worstOf(raws.map((r) => r.loopDelayMs.max)) },
    cpu: {
      clientCores: wall > 0 ? round(raws.reduce((s, r) => s + r.cpu.client, 0) / wall, 2) : null,
      serverCores: wall > 0 && serverCpu !== null ? round(serverCpu / wall, 2) : null,
      machineBusy: machineTotal && machineBusy !== null ? round(machineBusy / machineTotal, 2) : null,
    },
  };
}

/** Wake every pair before the first run (actor start, SQLite, first candle): 20 ticks each, pairs in parallel. */
async function warmPairs(baseUrl: string, pairs: readonly string[]): Promise<void> {
  const poster = new Poster(baseUrl, pairs.length);
  try {
    await Promise.all(
      pairs.map(async (pair, i) => {
        const walk = new PairWalk(pair, 1000 + i);
        let last = 0;
        for (let k = 0; k < 20; k++) {
          const ts = Math.max(Date.now(), last + 1);
          last = ts;
          const res = await poster.post(`/api/pairs/${pair}/ticks`, JSON.stringify({ ticks: [walk.next(ts)] }));
          if (res.status !== 200) throw new Error(`warm-up POST ${pair}: ${res.status} ${res.body.slice(0, 200)}`);
        }
      }),
    );
  } finally {
    poster.close();
  }
}

// ---- the scenario -------------------------------------------------------------------------

export const manyPairs: Scenario = {
  name: "many-pairs",
  description: "per-pair tick POST -> 'tick' frame latency with 3, 10 and 30 pairs ticking at once",
  async run(options: BenchOptions): Promise<ScenarioResult> {
    const base = await resultBase("many-pairs", options);
    const maxN = Math.max(...PAIR_COUNTS);
    if (SYMBOLS.length < maxN) throw new Error(`${maxN} pairs asked, ${SYMBOLS.length} instruments known`);
    const allPairs = SYMBOLS.slice(0, maxN);
    const configs: RunConfig[] = PAIR_COUNTS.map((n) => ({ key: String(n), pairs: n, ticksPerSec: RATE, label: `${n} pairs x ${RATE}/s` }));
    // Before the first round, every pair ticks unmeasured for a while on each server (JIT, actors, sockets);
    // then each run has a short warm-up of its own. Full: 2 rounds of 5 s per server and configuration
    // (10 s pooled); quick: 1 round of 2 s.
    const firstWarmupSeconds = options.quick ? 1 : 2;
    const warmupSeconds = options.quick ? 0.5 : 1;
    const rounds = options.quick ? 1 : 2;
    const measureSeconds = options.quick ? 2 : 5;

    const state = await tempDir("fxrt-bench-pairs-");
    let stopRuntime: (() => Promise<void>) | null = null;
    let stopBaseline: (() => Promise<void>) | null = null;
    try {
      console.log(`starting runtime with ${allPairs.length} pairs (bundling the Worker) and the baseline server...`);
      const t0 = performance.now();
      const baselineStarting = startBaselineServer();
      // Kept for cleanup even if the runtime fails to start.
      baselineStarting.then((b) => (stopBaseline = b.stop)).catch(() => undefined);
      const runtime = await startBenchRuntime(state.dir, { PAIRS: allPairs.join(",") });
      stopRuntime = onCleanup(() => runtime.stop());
      const baselineServer = await baselineStarting;
      stopBaseline = baselineServer.stop;
      console.log(`  started in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
      const runtimePids = workerdPids();
      const servers = [
        { server: "runtime" as const, url: runtime.url, pids: runtimePids },
        { server: "baseline" as const, url: baselineServer.url, pids: baselineServer.pid > 0 ? [baselineServer.pid] : [] },
      ];

      for (const { url } of servers) {
        await warmPairs(url, allPairs);
        await measure({ baseUrl: url, pairs: allPairs, ticksPerSec: RATE, warmupSeconds: firstWarmupSeconds, measureSeconds: 0, serverPids: [], seed: 1 });
      }

      // Rounds alternate the order of the configurations (3, 10, ..., then ..., 10, 3) and are pooled per
      // server and configuration, so noise from the rest of the machine falls on every N alike.
      const raw = new Map<string, RawRun[]>();
      for (let round = 0; round < rounds; round++) {
        const order = round % 2 === 0 ? configs : [...configs].reverse();
        for (const config of order) {
          for (const { server, url, pids } of servers) {
            console.log(`  round ${round + 1}/${rounds}: ${config.label}, ${server}...`);
            const key = `${server}/${config.key}`;
            const run = await measure({
              baseUrl: url,
              pairs: allPairs.slice(0, config.pairs),
              ticksPerSec: config.ticksPerSec,
              warmupSeconds,
              measureSeconds,
              serverPids: pids,
              seed: 100 * (round + 1),
            });
            raw.set(key, [...(raw.get(key) ?? []), run]);
            await sleep(300);
          }
        }
      }
      const figuresOf = (server: "runtime" | "baseline") => configs.map((c) => combine(server, c, allPairs.slice(0, c.pairs), raw.get(`${server}/${c.key}`) ?? []));
      const runtimeRuns = figuresOf("runtime");
      const baselineRuns = figuresOf("baseline");

      const r3 = runtimeRuns[0]!;
      const b3 = baselineRuns[0]!;
      const ratios: Record<string, number | null> = {};
      for (const [i, r] of runtimeRuns.entries()) {
        const b = baselineRuns[i]!;
        ratios[`p99_runtime_${r.config}_over_3`] = ratio(r.latencyMs.p99, r3.latencyMs.p99);
        ratios[`p50_runtime_${r.config}_over_3`] = ratio(r.latencyMs.p50, r3.latencyMs.p50);
        ratios[`p99_baseline_${b.config}_over_3`] = ratio(b.latencyMs.p99, b3.latencyMs.p99);
        ratios[`p50_baseline_${b.config}_over_3`] = ratio(b.latencyMs.p50, b3.latencyMs.p50);
        ratios[`p99_runtimeOverBaseline_${r.config}`] = ratio(r.latencyMs.p99, b.latencyMs.p99);
        ratios[`p50_runtimeOverBaseline_${r.config}`] = ratio(r.latencyMs.p50, b.latencyMs.p50);
      }
      const growthAt = (key: string) => ratios[`p99_runtime_${key}_over_3`] ?? null;
      const lost = runtimeRuns.reduce((s, r) => s + r.lostFrames, 0);
      const targets = [
        {
          description: `per-pair p99 at ${maxN} pairs within ${TARGET_GROWTH}x of p99 at 3 pairs`,
          value: growthAt(String(maxN)),
          met: growthAt(String(maxN)) === null ? null : (growthAt(String(maxN)) as number) <= TARGET_GROWTH,
        },
        { description: "no frame lost (runtime, every configuration)", value: lost, met: lost === 0 },
      ];

      console.log(
        `\nmany-pairs (${options.quick ? "quick" : "full"}): one client per pair room; latency = arrival of the first frame carrying the pair's tick ` +
          `(or a later one) - just before its POST; ${rounds} x ${measureSeconds} s measured per server and configuration`,
      );
      const rows: (string | number)[][] = [];
      for (const [i, r] of runtimeRuns.entries()) {
        const b = baselineRuns[i]!;
        for (const f of [r, b]) {
          rows.push([
            f.server === "runtime" ? "runtime" : "node ws baseline",
            f.pairs,
            f.ticksPerSecPerPair,
            fmt(f.ticksPerSec, 0),
            f.latencyMs.n,
            fmt(f.latencyMs.p50),
            fmt(f.latencyMs.p99),
            fmt(f.latencyMs.max),
            fmt(f.pairP99MedianMs),
            f.worstPair ? `${fmt(f.worstPair.p99)} ${f.worstPair.pair}` : "-",
            `${fmt(f.postLatencyMs.p50)} / ${fmt(f.postLatencyMs.p99)}`,
            f.lostFrames,
            `${fmt(ratio(f.latencyMs.p99, (f.server === "runtime" ? r3 : b3).latencyMs.p99))}x`,
          ]);
        }
        rows.push([
          "ratio runtime/baseline",
          r.pairs,
          r.ticksPerSecPerPair,
          "",
          "",
          `${fmt(ratios[`p50_runtimeOverBaseline_${r.config}`])}x`,
          `${fmt(ratios[`p99_runtimeOverBaseline_${r.config}`])}x`,
          "",
          "",
          "",
          "",
          "",
          "",
        ]);
      }
      printTable(["server", "pairs", "ticks/s/pair", "ticks/s", "samples", "p50 ms", "p99 ms", "max ms", "pair p99 median", "worst pair p99", "POST p50 / p99", "lost", "p99 / p99@3"], rows);

      console.log("\nwhere the time goes (measured windows): CPU in cores (2 = both), client = this process (all POSTs and all clients)");
      printTable(
        ["server", "pairs", "ticks/s/pair", "server CPU", "client CPU", "machine busy", "client loop delay p99 / max ms", "send lag p99 / max ms", "coalesced", "POST errors", "rejected"],
        [...runtimeRuns, ...baselineRuns].map((f) => [
          f.server === "runtime" ? "runtime (workerd)" : "node ws baseline",
          f.pairs,
          f.ticksPerSecPerPair,
          fmt(f.cpu.serverCores),
          fmt(f.cpu.clientCores),
          f.cpu.machineBusy === null ? "-" : `${Math.round(f.cpu.machineBusy * 100)}%`,
          `${fmt(f.clientLoopDelayMs.p99)} / ${fmt(f.clientLoopDelayMs.max)}`,
          `${fmt(f.sendLagMs.p99)} / ${fmt(f.sendLagMs.max)}`,
          f.coalescedFrames,
          f.postErrors,
          f.rejectedTicks,
        ]),
      );
      for (const f of [...runtimeRuns, ...baselineRuns]) {
        const list = f.slowest.map((x) => `${fmt(x.ms)} ms ${x.pair} (run ${x.run}, ${x.atS.toFixed(3)} s${x.minuteClose ? ", closes its 1m candle" : ""})`);
        console.log(`slowest, ${f.server} at ${f.pairs} pairs x ${f.ticksPerSecPerPair}/s (run, s into its window): ${list.join(", ")}`);
      }
      for (const t of targets) console.log(targetLine(t.description, t.value, t.met));
      for (const r of baselineRuns.slice(1)) {
        console.log(`node ws baseline p99 at ${r.pairs} pairs x ${r.ticksPerSecPerPair}/s over 3 pairs: ${fmt(ratios[`p99_baseline_${r.config}_over_3`])}x (the machine's share of any growth)`);
      }

      return {
        ...base,
        parameters: {
          pairCounts: [...PAIR_COUNTS],
          pairs: allPairs,
          configurations: configs.map(({ key, pairs, ticksPerSec }) => ({ key, pairs, ticksPerSecPerPair: ticksPerSec })),
          firstWarmupSeconds,
          warmupSeconds,
          measureSeconds,
          rounds,
          clientsPerPair: 1,
          roomQuery: ROOM_QUERY,
          schedule: "open loop; each pair on its own fixed interval, the pairs staggered evenly over it; one keep-alive connection per pair; rounds alternate the order of the configurations",
          client: "ws package, perMessageDeflate off; every client and every poster in this one Node process",
        },
        figures: { runs: runtimeRuns },
        baseline: {
          description:
            "3 pairs of the same run (for p99 at N / p99 at 3); and a plain Node http + ws server with one room per pair in a child process, same POSTs, same frames (tick with the 1m candle in progress), same clients, same configurations",
          runs: baselineRuns,
        },
        ratios,
        targets,
        notes: [
          "Pooled latency = every pair's samples together; pair p99 median / worst pair = each pair's own p99, the median and the highest over the pairs (the worst of 10 is the highest of more draws than the worst of 3).",
          "CPU in cores over the measured windows from /proc (Linux only): server = the workerd processes this run started, or the baseline child; client = this process; machine = every process, including other work on the machine.",
          "Targets are reported, not asserted.",
        ],
      };
    } finally {
      if (stopBaseline) await (stopBaseline as () => Promise<void>)();
      if (stopRuntime) await stopRuntime();
      await state.remove();
    }
  },
};
