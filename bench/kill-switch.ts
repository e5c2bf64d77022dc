/**
 * Kill switch and coordinator approvals, on a runtime serving 10 pairs.
 *
 * (1) Propagation: POST /api/admin/kill-switch {action:"halt"} returns once the
 *     Coordinator has stored HALTED and every pair actor has stored it too
 *     (Coordinator.setState awaits Pair.setTradingState on each pair). The HTTP
 *     round trip of the halt is timed; outside the timed part each halt is
 *     checked through GET /api/admin/portfolio and a trade attempt that only the
 *     pair's own stored state can refuse (a reduce-only order, which never asks
 *     the coordinator), then trading is resumed (the resume is timed too).
 * (2) Approvals: many concurrent clients POST /api/trade/execute market orders
 *     of 1 unit across the 10 pairs, each order adding risk (so each one needs a
 *     coordinator approval = reservation). Baseline in the same run: the same
 *     number of orders per pair, same clients, that reduce those positions
 *     (reduce-only orders never ask the coordinator). The difference is the
 *     approval round trip plus the coordinator's serialisation of all pairs.
 *     The two kinds run in alternating blocks (orders/s falls as the pairs'
 *     tables grow, so one kind after the other would not compare like with like).
 */
import { monitorEventLoopDelay, performance } from "node:perf_hooks";
import { startRuntime } from "../scripts/runtime.ts";
import { getInstrument } from "../src/domain/instruments.ts";
import {
  BENCH_KEY, BENCH_SCHEDULE_EVERY_MS,
  fmt,
  onCleanup,
  Poster,
  printTable,
  ratio,
  resultBase,
  round,
  sleep,
  summarize,
  targetLine,
  tempDir,
  type BenchOptions,
  type LatencySummary,
  type Scenario,
  type ScenarioResult,
  json,
  put,
} from "./common.ts";

const PAIRS = ["EUR_USD", "USD_JPY", "GBP_USD", "AUD_USD", "USD_CHF", "USD_CAD", "EUR_JPY", "GBP_JPY", "NZD_USD", "EUR_GBP"] as const;
/** Plausible mids for the warm-up quotes (decimal). */
const MIDS: Record<string, number> = {
  EUR_USD: 1.085, USD_JPY: 150.0, GBP_USD: 1.27, AUD_USD: 0.66, USD_CHF: 0.88,
  USD_CAD: 1.36, EUR_JPY: 162.0, GBP_JPY: 190.0, NZD_USD: 0.61, EUR_GBP: 0.855,
};
/** Per-pair risk: enough orders per minute for the run (1000 is the schema's maximum), no weekend guard, quotes valid for a day. */
const PAIR_RISK = { maxOrdersPerMinute: 1000, stalePriceMs: 86_400_000, weekendGuard: false };
const PORTFOLIO_LIMITS = {
  maxGrossExposure: 1e12, maxNetExposurePerCurrency: 1e12, maxOpenPositions: 10_000, maxExposurePerPair: 1e12, dailyLossLimit: 1e12, maxDrawdown: 1e12,
};
const TARGET_HALT_P99_MS = 50;
/** Risk-increasing orders per pair in the measured phase, at most: the per-pair limit is 1000 accepted orders in any 60 s. */
const MAX_INCREASING_PER_PAIR = 900;
const WARMUP_ROUNDS = 5;
/** Orders per pair in one measured block. */
const BLOCK_PER_PAIR = 100;
const CONCURRENCY = 32;
const UNITS = 1;

/** Side that adds risk on a pair: buys on even-indexed pairs, sells on odd ones, so the book is not one-sided. */
const riskSide = (pair: string): "buy" | "sell" => (PAIRS.indexOf(pair as (typeof PAIRS)[number]) % 2 === 0 ? "buy" : "sell");
const reduceSide = (pair: string): "buy" | "sell" => (riskSide(pair) === "buy" ? "sell" : "buy");


type Post = Pick<Poster, "post">;

interface Portfolio {
  trading: { state: string; reason: string; since: number };
  openPositions: number;
  pairs: { pair: string; netUnits: number; openPositions: number }[];
  reservations: number;
}

interface OrderAnswer {
  status: number;
  ok: boolean;
  /** Rejection type (422) or error code. */
  refusal: string | null;
  reduceOnly: boolean | null;
  body: string;
}

async function order(poster: Post, pair: string, side: "buy" | "sell", units = UNITS): Promise<OrderAnswer> {
  const res = await poster.post("/api/trade/execute", JSON.stringify({ pair, side, units, type: "market" }));
  if (res.status === 200) {
    const parsed = JSON.parse(res.body) as { order: { status: string; reduceOnly: boolean } };
    return { status: 200, ok: parsed.order.status === "filled", refusal: parsed.order.status === "filled" ? null : `order_${parsed.order.status}`, reduceOnly: parsed.order.reduceOnly, body: res.body };
  }
  let refusal = `http_${res.status}`;
  try {
    const parsed = JSON.parse(res.body) as { error?: { code?: string; details?: { type?: string } } };
    refusal = parsed.error?.details?.type ?? parsed.error?.code ?? refusal;
  } catch {
    // not JSON
  }
  return { status: res.status, ok: false, refusal, reduceOnly: null, body: res.body };
}

function wireQuote(pair: string, ts: number): { ts: number; bid: number; ask: number } {
  const instrument = getInstrument(pair);
  const pip = 10 ** instrument.pipLocation;
  const mid = MIDS[pair]!;
  const d = instrument.displayPrecision;
  return { ts, bid: Number((mid - pip / 2).toFixed(d)), ask: Number((mid + pip / 2).toFixed(d)) };
}

// ---- (1) kill switch ---------------------------------------------------------------------

interface KillFigures {
  iterations: number;
  haltMs: LatencySummary;
  resumeMs: LatencySummary;
  verification: {
    portfolioHalted: number;
    tradeRefusedHalted: number;
    tradeAttempts: number;
    resumedActive: number;
    failures: string[];
  };
  /** trading_state entries among the latest 1000 of GET /api/admin/audit: the coordinator's ("portfolio") and the pairs' own. */
  auditTradingState: { portfolio: number; pairs: number } | null;
}

async function killSwitchRun(baseUrl: string, poster: Post, iterations: number): Promise<KillFigures> {
  const halt: number[] = [];
  const resume: number[] = [];
  const failures: string[] = [];
  let portfolioHalted = 0;
  let tradeRefusedHalted = 0;
  let tradeAttempts = 0;
  let resumedActive = 0;
  const fail = (msg: string) => {
    if (failures.length < 20) failures.push(msg);
  };
  for (let i = 0; i < iterations; i++) {
    const body = JSON.stringify({ action: "halt", reason: `bench halt ${i}` });
    const t0 = performance.now();
    const res = await poster.post("/api/admin/kill-switch", body);
    halt.push(performance.now() - t0);
    if (res.status !== 200) throw new Error(`halt ${i}: ${res.status} ${res.body.slice(0, 300)}`);
    const state = (JSON.parse(res.body) as { status: { state: string } }).status.state;
    if (state !== "HALTED") fail(`halt ${i}: answered state ${state}`);

    // ---- verification (not timed) ----
    const portfolio = await json<Portfolio>(`${baseUrl}/api/admin/portfolio`);
    if (portfolio.trading.state === "HALTED") portfolioHalted++;
    else fail(`halt ${i}: portfolio says ${portfolio.trading.state}`);
    // Every pair on the first and last halt, one pair (rotating) otherwise. The attempt reduces the pair's
    // open 1-unit position: reduce-only orders never ask the coordinator, so only the pair's stored state refuses it.
    const targets = i === 0 || i === iterations - 1 ? [...PAIRS] : [PAIRS[i % PAIRS.length]!];
    for (const pair of targets) {
      tradeAttempts++;
      const answer = await order(poster, pair, reduceSide(pair));
      if (answer.refusal === "trading_halted") tradeRefusedHalted++;
      else fail(`halt ${i}: ${pair} trade answered ${answer.status} ${answer.refusal ?? "filled"}`);
      if (answer.ok) throw new Error(`halt ${i}: a trade on ${pair} was filled while halted: ${answer.body.slice(0, 300)}`);
    }

    const r0 = performance.now();
    const resumed = await poster.post("/api/admin/kill-switch", JSON.stringify({ action: "resume", reason: `bench resume ${i}` }));
    resume.push(performance.now() - r0);
    if (resumed.status !== 200) throw new Error(`resume ${i}: ${resumed.status} ${resumed.body.slice(0, 300)}`);
    if ((JSON.parse(resumed.body) as { status: { state: string } }).status.state === "ACTIVE") resumedActive++;
    else fail(`resume ${i}: not ACTIVE`);
  }
  let auditTradingState: KillFigures["auditTradingState"] = null;
  try {
    const audit = await json<{ entries: { action: string; target: string }[] }>(`${baseUrl}/api/admin/audit?limit=1000`);
    const states = audit.entries.filter((e) => e.action === "trading_state");
    auditTradingState = { portfolio: states.filter((e) => e.target === "portfolio").length, pairs: states.filter((e) => e.target !== "portfolio").length };
  } catch {
    // reported as null
  }
  return {
    iterations,
    haltMs: summarize(halt),
    resumeMs: summarize(resume),
    verification: { portfolioHalted, tradeRefusedHalted, tradeAttempts, resumedActive, failures },
    auditTradingState,
  };
}

// ---- (2) approvals -------------------------------------------------------------------------

type Kind = "risk-increasing (coordinator approval)" | "reduce-only (no coordinator)";
const INCREASING: Kind = "risk-increasing (coordinator approval)";
const REDUCING: Kind = "reduce-only (no coordinator)";

/** One block of orders of one kind, as measured. */
interface Block {
  orders: number;
  accepted: number;
  refused: Record<string, number>;
  /** Orders whose answer said reduceOnly differently from what the block intends. */
  wrongKind: number;
  seconds: number;
  latencies: number[];
  perPair: Record<string, number>;
  slowest: { block: number; atS: number; ms: number; pair: string }[];
  loopMaxMs: number;
  networkErrors: { block: number; atS: number; afterMs: number; pair: string; error: string }[];
}

interface PhaseFigures {
  kind: Kind;
  blocks: number;
  orders: number;
  accepted: number;
  refused: Record<string, number>;
  wrongKind: number;
  /** Sum of the blocks' durations (first request sent to last answer). */
  seconds: number;
  acceptedPerSec: number | null;
  latencyMs: LatencySummary;
  /** Accepted orders per second in each block, in run order (drift as the pairs' tables grow). */
  acceptedPerSecByBlock: (number | null)[];
  /** The slowest orders: block, start (s into the block), duration, pair. */
  slowest: { block: number; atS: number; ms: number; pair: string }[];
  /** This process's event-loop delay, worst block (client side, and Miniflare forwarding workerd's output), ms. */
  clientLoopDelayMaxMs: number | null;
  /** Requests that got no HTTP answer (first 10). */
  networkErrors: Block["networkErrors"];
}

/** Runs `plan` (a list of pairs, one order each) with `concurrency` clients pulling from a shared index. */
async function runBlock(poster: Post, kind: Kind, plan: readonly string[], concurrency: number, blockNo: number): Promise<Block> {
  const side = kind === INCREASING ? riskSide : reduceSide;
  const expectReduceOnly = kind === REDUCING;
  let next = 0;
  const out: Block = { orders: 0, accepted: 0, refused: {}, wrongKind: 0, seconds: 0, latencies: [], perPair: Object.fromEntries(PAIRS.map((p) => [p, 0])), slowest: [], loopMaxMs: 0, networkErrors: [] };
  const samples: { atS: number; ms: number; pair: string }[] = [];
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  const t0 = performance.now();
  let tEnd = t0;
  const worker = async () => {
    while (next < plan.length) {
      const pair = plan[next++]!;
      const s = performance.now();
      let answer: OrderAnswer;
      try {
        answer = await order(poster, pair, side(pair));
      } catch (err) {
        // A connection closed without an answer: counted (and its time kept), not fatal.
        const code = (err as { code?: string }).code ?? "error";
        answer = { status: 0, ok: false, refusal: `network_${code}`, reduceOnly: null, body: String(err) };
        out.networkErrors.push({ block: blockNo, atS: round((s - t0) / 1000)!, afterMs: round(performance.now() - s)!, pair, error: String(err) });
      }
      const e = performance.now();
      out.latencies.push(e - s);
      samples.push({ atS: (s - t0) / 1000, ms: e - s, pair });
      tEnd = Math.max(tEnd, e);
      if (answer.ok) {
        out.accepted++;
        out.perPair[pair] = (out.perPair[pair] ?? 0) + 1;
        if (answer.reduceOnly !== expectReduceOnly) out.wrongKind++;
      } else {
        const key = answer.refusal ?? "unknown";
        out.refused[key] = (out.refused[key] ?? 0) + 1;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  loop.disable();
  out.orders = out.latencies.length;
  out.seconds = (tEnd - t0) / 1000;
  out.loopMaxMs = loop.max / 1e6;
  out.slowest = samples
    .sort((x, y) => y.ms - x.ms)
    .slice(0, 5)
    .map((x) => ({ block: blockNo, atS: round(x.atS)!, ms: round(x.ms)!, pair: x.pair }));
  return out;
}

function phaseFigures(kind: Kind, blocks: readonly Block[]): PhaseFigures {
  const refused: Record<string, number> = {};
  for (const b of blocks) for (const [k, n] of Object.entries(b.refused)) refused[k] = (refused[k] ?? 0) + n;
  const seconds = blocks.reduce((t, b) => t + b.seconds, 0);
  const accepted = blocks.reduce((t, b) => t + b.accepted, 0);
  return {
    kind,
    blocks: blocks.length,
    orders: blocks.reduce((t, b) => t + b.orders, 0),
    accepted,
    refused,
    wrongKind: blocks.reduce((t, b) => t + b.wrongKind, 0),
    seconds: round(seconds)!,
    acceptedPerSec: seconds > 0 ? round(accepted / seconds, 1) : null,
    latencyMs: summarize(blocks.flatMap((b) => b.latencies)),
    acceptedPerSecByBlock: blocks.map((b) => (b.seconds > 0 ? round(b.accepted / b.seconds, 1) : null)),
    slowest: blocks.flatMap((b) => b.slowest).sort((x, y) => y.ms - x.ms).slice(0, 5),
    clientLoopDelayMaxMs: blocks.length ? round(Math.max(...blocks.map((b) => b.loopMaxMs))) : null,
    networkErrors: blocks.flatMap((b) => b.networkErrors).slice(0, 10),
  };
}

/** Round-robin over the pairs, `counts[pair]` orders each. */
function interleave(counts: Record<string, number>): string[] {
  const left = { ...counts };
  const out: string[] = [];
  for (let more = true; more; ) {
    more = false;
    for (const p of PAIRS) {
      if ((left[p] ?? 0) > 0) {
        out.push(p);
        left[p]!--;
        more = true;
      }
    }
  }
  return out;
}

async function settledPortfolio(baseUrl: string, timeoutMs: number): Promise<{ portfolio: Portfolio; waitedMs: number }> {
  const t0 = performance.now();
  for (;;) {
    const portfolio = await json<Portfolio>(`${baseUrl}/api/admin/portfolio`);
    const waited = performance.now() - t0;
    if (portfolio.reservations === 0 || waited > timeoutMs) return { portfolio, waitedMs: round(waited)! };
    await sleep(50);
  }
}

export const killSwitch: Scenario = {
  name: "kill-switch",
  description: "kill switch halt round trip to 10 pairs, and orders/s with vs without a coordinator approval",
  async run(options: BenchOptions): Promise<ScenarioResult> {
    const base = await resultBase("kill-switch", options);
    const iterations = options.quick ? 20 : 200;
    const phaseSeconds = options.quick ? 3 : 10;

    const state = await tempDir("fxrt-bench-kill-");
    let stopRuntime: (() => Promise<void>) | null = null;
    let serial: Poster | null = null;
    let many: Poster | null = null;
    try {
      console.log("starting runtime with 10 pairs (bundling the Worker)...");
      // As startBenchRuntime, plus PAIRS.
      const runtime = await startRuntime({
        port: 0,
        stateDir: state.dir,
        vars: { FEED: "off", ADMIN_API_KEY: BENCH_KEY, PAIRS: PAIRS.join(",") },
        rateLimitPerMinute: 1_000_000_000,
        scheduleEveryMs: BENCH_SCHEDULE_EVERY_MS,
      });
      stopRuntime = onCleanup(() => runtime.stop());
      const url = runtime.url;
      serial = new Poster(url, 1);
      // A new loopback connection per request. Over keep-alive sockets, a burst of
      // requests on connections that were idle sees about half of them answered only
      // once the other connections go quiet (held for the whole phase, once reset
      // after 9 s), in workerd's HTTP serving rather than in the actors: the same
      // orders over fresh connections show no such stall and the same orders/s.
      many = new Poster(url, CONCURRENCY, false);

      const health = await json<{ pairs: number }>(`${url}/api/health`);
      if (health.pairs !== PAIRS.length) throw new Error(`runtime serves ${health.pairs} pairs, expected ${PAIRS.length}`);

      // Warm every pair: risk limits, one quote a second old, and a 1-unit position (what the halt checks try to reduce).
      console.log("  warming 10 pairs (risk limits, one quote, a 1-unit position each)...");
      await put(`${url}/api/admin/limits`, PORTFOLIO_LIMITS);
      const ts = Date.now() - 1000;
      for (const pair of PAIRS) {
        await put(`${url}/api/admin/pairs/${pair}/risk`, { limits: PAIR_RISK });
        const res = await serial.post(`/api/pairs/${pair}/ticks`, JSON.stringify({ ticks: [wireQuote(pair, ts)] }));
        const accepted = res.status === 200 ? (JSON.parse(res.body) as { accepted: number }).accepted : 0;
        if (accepted !== 1) throw new Error(`${pair} warm tick: ${res.status} ${res.body.slice(0, 300)}`);
      }
      for (const pair of PAIRS) {
        const answer = await order(serial, pair, riskSide(pair));
        if (!answer.ok) throw new Error(`${pair} opening order: ${answer.status} ${answer.body.slice(0, 300)}`);
      }

      // ---- (1) ----
      console.log(`  kill switch: ${iterations} x (halt [timed], verify, resume [timed])...`);
      const kill = await killSwitchRun(url, serial, iterations);

      // ---- (2) ----
      console.log(`  approvals: warm-up, then ${CONCURRENCY} clients, up to ${phaseSeconds} s or ${MAX_INCREASING_PER_PAIR} orders per pair...`);
      // Warm-up: one block of each kind, not counted.
      const warmCounts = Object.fromEntries(PAIRS.map((p) => [p, WARMUP_ROUNDS]));
      const warmA = await runBlock(many, INCREASING, interleave(warmCounts), CONCURRENCY, -1);
      const warmB = await runBlock(many, REDUCING, interleave(warmA.perPair), CONCURRENCY, -1);
      if (warmA.accepted !== PAIRS.length * WARMUP_ROUNDS || warmB.accepted !== warmA.accepted) {
        throw new Error(`warm-up orders refused: ${JSON.stringify({ a: warmA.refused, b: warmB.refused })}`);
      }
      // Alternating blocks, so both kinds meet the same table sizes (throughput falls as the pairs' tables grow):
      // a block adding risk, then a block with exactly as many orders per pair reducing what it added.
      const blocksA: Block[] = [];
      const blocksB: Block[] = [];
      const maxBlocks = Math.floor(MAX_INCREASING_PER_PAIR / BLOCK_PER_PAIR);
      while (blocksA.length < maxBlocks && blocksA.reduce((t, b) => t + b.seconds, 0) < phaseSeconds) {
        const n = blocksA.length;
        const a = await runBlock(many, INCREASING, interleave(Object.fromEntries(PAIRS.map((p) => [p, BLOCK_PER_PAIR]))), CONCURRENCY, n);
        blocksA.push(a);
        blocksB.push(await runBlock(many, REDUCING, interleave(a.perPair), CONCURRENCY, n));
      }
      const phaseA = phaseFigures(INCREASING, blocksA);
      const phaseB = phaseFigures(REDUCING, blocksB);
      const settled = await settledPortfolio(url, 3000);
      const expectedNet = Object.fromEntries(PAIRS.map((p) => [p, riskSide(p) === "buy" ? UNITS : -UNITS]));
      const netOk = PAIRS.every((p) => settled.portfolio.pairs.find((r) => r.pair === p)?.netUnits === expectedNet[p]);

      const ratios: Record<string, number | null> = {
        ordersPerSec_reduceOnlyOverApproved: ratio(phaseB.acceptedPerSec, phaseA.acceptedPerSec),
        p50_approvedOverReduceOnly: ratio(phaseA.latencyMs.p50, phaseB.latencyMs.p50),
        p99_approvedOverReduceOnly: ratio(phaseA.latencyMs.p99, phaseB.latencyMs.p99),
        haltP50_overResumeP50: ratio(kill.haltMs.p50, kill.resumeMs.p50),
      };
      const verified =
        kill.verification.portfolioHalted === iterations &&
        kill.verification.tradeRefusedHalted === kill.verification.tradeAttempts &&
        kill.verification.resumedActive === iterations;
      const targets = [
        {
          description: `kill switch to 10 pairs halted and persisted, p99 < ${TARGET_HALT_P99_MS} ms (HTTP round trip of the halt)`,
          value: kill.haltMs.p99,
          met: kill.haltMs.p99 === null ? null : kill.haltMs.p99 < TARGET_HALT_P99_MS,
        },
      ];

      console.log(`\nkill-switch (${options.quick ? "quick" : "full"}): 10 pairs, ${iterations} halts, ${CONCURRENCY} concurrent order clients`);
      const row = (name: string, unit: string, s: LatencySummary): (string | number)[] => [name, unit, s.n, fmt(s.p50), fmt(s.p99), fmt(s.max), fmt(s.mean), ""];
      const phaseRow = (name: string, p: PhaseFigures): (string | number)[] => [...row(name, "ms", p.latencyMs).slice(0, 7), fmt(p.acceptedPerSec, 1)];
      printTable(
        ["series", "unit", "samples", "p50", "p99", "max", "mean", "orders/s"],
        [
          row("halt POST (10 pairs persisted)", "ms", kill.haltMs),
          row("resume POST (10 pairs persisted)", "ms", kill.resumeMs),
          phaseRow("order adding risk (approval)", phaseA),
          phaseRow("order reduce-only (baseline)", phaseB),
        ],
      );
      console.log(
        `halt checks: portfolio HALTED ${kill.verification.portfolioHalted}/${iterations}, trade refused trading_halted ${kill.verification.tradeRefusedHalted}/${kill.verification.tradeAttempts}, ` +
          `resume ACTIVE ${kill.verification.resumedActive}/${iterations}; audit trading_state entries in the latest 1000: portfolio ${kill.auditTradingState?.portfolio ?? "-"}, pairs ${kill.auditTradingState?.pairs ?? "-"} (${2 * iterations} and ${2 * iterations * PAIRS.length} changes made)` +
          (kill.verification.failures.length ? `; failures: ${kill.verification.failures.join("; ")}` : ""),
      );
      console.log(
        `approval blocks: ${phaseA.accepted}/${phaseA.orders} accepted in ${fmt(phaseA.seconds)} s${Object.keys(phaseA.refused).length ? `, refused ${JSON.stringify(phaseA.refused)}` : ""}; ` +
          `baseline blocks: ${phaseB.accepted}/${phaseB.orders} in ${fmt(phaseB.seconds)} s${Object.keys(phaseB.refused).length ? `, refused ${JSON.stringify(phaseB.refused)}` : ""}; ` +
          `orders of the wrong kind ${phaseA.wrongKind + phaseB.wrongKind}`,
      );
      console.log(
        `after all blocks: reservations ${settled.portfolio.reservations} (waited ${fmt(settled.waitedMs, 0)} ms), open positions ${settled.portfolio.openPositions}, ` +
          `net units back to the opening 1 unit per pair: ${netOk ? "yes" : "no"}`,
      );
      console.log(
        `method: ${phaseA.blocks} blocks of ${BLOCK_PER_PAIR} orders per pair adding risk (each needs a coordinator approval), each followed by a baseline block with the same orders per pair ` +
          "reducing what it added (reduce-only orders skip the coordinator); alternating blocks because orders/s falls as the pairs' tables grow. " +
          "Alternating buy/sell on one pair would make every other order reduce-only, so approval orders only add risk (buys on half the pairs, sells on the other half).",
      );
      const perBlock = (p: PhaseFigures) => p.acceptedPerSecByBlock.map((x) => fmt(x, 0)).join(" ");
      console.log(`orders/s per block, in run order: approval ${perBlock(phaseA)}; baseline ${perBlock(phaseB)}`);
      const slow = (p: PhaseFigures) => p.slowest.map((x) => `${fmt(x.ms, 0)} ms ${x.pair} (block ${x.block} at ${fmt(x.atS)} s)`).join(", ");
      console.log(`slowest orders: approval phase ${slow(phaseA)}; baseline ${slow(phaseB)}`);
      console.log(
        `client event-loop delay max: approval blocks ${fmt(phaseA.clientLoopDelayMaxMs)} ms, baseline blocks ${fmt(phaseB.clientLoopDelayMaxMs)} ms` +
          (phaseA.networkErrors.length + phaseB.networkErrors.length ? `; requests without an answer: ${JSON.stringify([...phaseA.networkErrors, ...phaseB.networkErrors].slice(0, 3))}` : ""),
      );
      for (const t of targets) console.log(targetLine(t.description, t.value, t.met));
      if (!verified) console.log("WARNING: some halts were not verified (see failures above)");

      return {
        ...base,
        parameters: {
          pairs: [...PAIRS],
          killSwitchIterations: iterations,
          verification: "after each halt (untimed): GET /api/admin/portfolio trading.state, and a reduce-only 1-unit order on one pair (all 10 on the first and last halt) refused with trading_halted by the pair's own stored state",
          orderClients: CONCURRENCY,
          approvalSecondsBudget: phaseSeconds,
          blockOrdersPerPair: BLOCK_PER_PAIR,
          maxRiskIncreasingOrdersPerPair: MAX_INCREASING_PER_PAIR,
          warmupOrdersPerPair: WARMUP_ROUNDS,
          units: UNITS,
          pairRisk: PAIR_RISK,
          portfolioLimits: PORTFOLIO_LIMITS,
          client: `node:http; kill switch over 1 keep-alive socket sequentially; orders from ${CONCURRENCY} concurrent clients, a new connection per request`,
        },
        figures: {
          killSwitch: kill,
          approvals: { riskIncreasing: phaseA, warmup: { riskIncreasing: warmA.accepted, reduceOnly: warmB.accepted } },
          afterPhases: { reservations: settled.portfolio.reservations, waitedMs: settled.waitedMs, openPositions: settled.portfolio.openPositions, netUnitsRestored: netOk },
        },
        baseline: { description: "the same number of orders per pair, same clients, each reducing a position (reduce-only: no coordinator approval)", ...phaseB },
        ratios,
        targets,
        notes: [
          "Halt round trip = POST /api/admin/kill-switch {action:'halt'}: the Coordinator stores HALTED (+ audit row) and awaits Pair.setTradingState on all 10 pairs before answering.",
          "Halts are verified outside the timed part; the trade check uses a reduce-only order, which only the pair's own stored state can refuse (the coordinator is not asked for it).",
          "Every accepted order in the approval phase adds 1 unit to its pair's position, so each one goes through Coordinator.approve (a reservation); reports after fills happen in both phases (not awaited by the order).",
          `Blocks alternate (approval, baseline, approval, ...) so both kinds meet the same table sizes: orders/s falls block after block as the pairs' tables grow. Approval blocks stop after ${phaseSeconds} s in all or ${MAX_INCREASING_PER_PAIR} orders per pair (maxOrdersPerMinute is at most 1000 by schema).`,
          "Orders use a new loopback connection per request: over keep-alive sockets a burst on idle connections had about half its requests held until the other connections went quiet (seconds), in workerd's HTTP serving, not in the actors.",
          "Client and runtime share the machine's CPUs. Targets are reported, not asserted.",
        ],
      };
    } finally {
      serial?.close();
      many?.close();
      if (stopRuntime) await stopRuntime();
      await state.remove();
    }
  },
};
