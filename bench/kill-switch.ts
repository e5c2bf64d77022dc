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
 */
import { monitorEventLoopDelay, performance } from "node:perf_hooks";
import { startRuntime } from "../scripts/runtime.ts";
import { getInstrument } from "../src/domain/instruments.ts";
import {
  BENCH_KEY,
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
const CONCURRENCY = 32;
const UNITS = 1;

/** Side that adds risk on a pair: buys on even-indexed pairs, sells on odd ones, so the book is not one-sided. */
const riskSide = (pair: string): "buy" | "sell" => (PAIRS.indexOf(pair as (typeof PAIRS)[number]) % 2 === 0 ? "buy" : "sell");
const reduceSide = (pair: string): "buy" | "sell" => (riskSide(pair) === "buy" ? "sell" : "buy");

async function json<T>(url: string, init: RequestInit = {}): Promise<T> {
  const headers = new Headers(init.headers);
  headers.set("x-api-key", BENCH_KEY);
  const res = await fetch(url, { ...init, headers });
  const text = await res.text();
  if (!res.ok) throw new Error(`${init.method ?? "GET"} ${url}: ${res.status} ${text.slice(0, 300)}`);
  return JSON.parse(text) as T;
}

const put = (url: string, body: unknown) =>
  json<unknown>(url, { method: "PUT", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });

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

async function order(poster: Poster, pair: string, side: "buy" | "sell", units = UNITS): Promise<OrderAnswer> {
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
  auditTradingStateEntries: number | null;
}

async function killSwitchRun(baseUrl: string, poster: Poster, iterations: number): Promise<KillFigures> {
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
  let auditTradingStateEntries: number | null = null;
  try {
    const audit = await json<{ entries: { action: string }[] }>(`${baseUrl}/api/admin/audit?limit=1000`);
    auditTradingStateEntries = audit.entries.filter((e) => e.action === "trading_state").length;
  } catch {
    // reported as null
  }
  return {
    iterations,
    haltMs: summarize(halt),
    resumeMs: summarize(resume),
    verification: { portfolioHalted, tradeRefusedHalted, tradeAttempts, resumedActive, failures },
    auditTradingStateEntries,
  };
}

// ---- (2) approvals -------------------------------------------------------------------------

interface PhaseFigures {
  kind: "risk-increasing (coordinator approval)" | "reduce-only (no coordinator)";
  orders: number;
  accepted: number;
  refused: Record<string, number>;
  /** Orders whose answer said reduceOnly differently from what the phase intends. */
  wrongKind: number;
  seconds: number;
  acceptedPerSec: number | null;
  latencyMs: LatencySummary;
  perPair: Record<string, number>;
  /** The slowest orders: when they started (s after the phase began), how long they took, on which pair. */
  slowest: { atS: number; ms: number; pair: string }[];
  /** This process's event-loop delay during the phase (client side, and Miniflare's forwarding of workerd's output), ms. */
  clientLoopDelayMs: { p99: number | null; max: number | null };
  /** Requests that got no HTTP answer (first 10). */
  networkErrors: { atS: number; afterMs: number; pair: string; error: string }[];
}

/**
 * Runs `plan` (a list of pairs, one order each) with `concurrency` clients pulling from a shared index,
 * until the plan is done or `deadline` (performance.now() ms) passes.
 */
async function runPhase(
  poster: Poster,
  kind: PhaseFigures["kind"],
  plan: readonly string[],
  concurrency: number,
  deadline: number,
): Promise<PhaseFigures> {
  const side = kind.startsWith("risk") ? riskSide : reduceSide;
  const expectReduceOnly = !kind.startsWith("risk");
  let next = 0;
  let accepted = 0;
  let wrongKind = 0;
  const refused: Record<string, number> = {};
  const perPair: Record<string, number> = Object.fromEntries(PAIRS.map((p) => [p, 0]));
  const latencies: number[] = [];
  const samples: { atS: number; ms: number; pair: string }[] = [];
  const networkErrors: PhaseFigures["networkErrors"] = [];
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  const t0 = performance.now();
  let tEnd = t0;
  const worker = async () => {
    while (next < plan.length && performance.now() < deadline) {
      const pair = plan[next++]!;
      const s = performance.now();
      let answer: OrderAnswer;
      try {
        answer = await order(poster, pair, side(pair));
      } catch (err) {
        // A connection closed without an answer: counted (and its time kept), not fatal.
        const code = (err as { code?: string }).code ?? "error";
        answer = { status: 0, ok: false, refusal: `network_${code}`, reduceOnly: null, body: String(err) };
        if (networkErrors.length < 10) networkErrors.push({ atS: round((s - t0) / 1000)!, afterMs: round(performance.now() - s)!, pair, error: String(err) });
      }
      const e = performance.now();
      latencies.push(e - s);
      samples.push({ atS: (s - t0) / 1000, ms: e - s, pair });
      tEnd = Math.max(tEnd, e);
      if (answer.ok) {
        accepted++;
        perPair[pair] = (perPair[pair] ?? 0) + 1;
        if (answer.reduceOnly !== expectReduceOnly) wrongKind++;
      } else {
        const key = answer.refusal ?? "unknown";
        refused[key] = (refused[key] ?? 0) + 1;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  loop.disable();
  const seconds = (tEnd - t0) / 1000;
  return {
    kind,
    orders: latencies.length,
    accepted,
    refused,
    wrongKind,
    seconds: round(seconds)!,
    acceptedPerSec: seconds > 0 ? round(accepted / seconds, 1) : null,
    latencyMs: summarize(latencies),
    perPair,
    slowest: samples
      .sort((a, b) => b.ms - a.ms)
      .slice(0, 5)
      .map((x) => ({ atS: round(x.atS)!, ms: round(x.ms)!, pair: x.pair })),
    clientLoopDelayMs: { p99: round(loop.percentile(99) / 1e6), max: round(loop.max / 1e6) },
    networkErrors,
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
      });
      stopRuntime = onCleanup(() => runtime.stop());
      const url = runtime.url;
      serial = new Poster(url, 1);
      many = new Poster(url, CONCURRENCY);

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
      const warmCounts = Object.fromEntries(PAIRS.map((p) => [p, WARMUP_ROUNDS]));
      const warmA = await runPhase(many, "risk-increasing (coordinator approval)", interleave(warmCounts), CONCURRENCY, Infinity);
      const warmB = await runPhase(many, "reduce-only (no coordinator)", interleave(warmA.perPair), CONCURRENCY, Infinity);
      if (warmA.accepted !== PAIRS.length * WARMUP_ROUNDS || warmB.accepted !== warmA.accepted) {
        throw new Error(`warm-up orders refused: ${JSON.stringify({ a: warmA.refused, b: warmB.refused })}`);
      }

      const planA = interleave(Object.fromEntries(PAIRS.map((p) => [p, MAX_INCREASING_PER_PAIR])));
      const phaseA = await runPhase(many, "risk-increasing (coordinator approval)", planA, CONCURRENCY, performance.now() + phaseSeconds * 1000);
      // The baseline: exactly as many orders per pair as were accepted, each one reducing what phase A added.
      const phaseB = await runPhase(many, "reduce-only (no coordinator)", interleave(phaseA.perPair), CONCURRENCY, Infinity);
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
          `resume ACTIVE ${kill.verification.resumedActive}/${iterations}; audit trading_state entries ${kill.auditTradingStateEntries ?? "-"} (expected ${2 * iterations})` +
          (kill.verification.failures.length ? `; failures: ${kill.verification.failures.join("; ")}` : ""),
      );
      console.log(
        `approval phase: ${phaseA.accepted}/${phaseA.orders} accepted in ${fmt(phaseA.seconds)} s${Object.keys(phaseA.refused).length ? `, refused ${JSON.stringify(phaseA.refused)}` : ""}; ` +
          `baseline: ${phaseB.accepted}/${phaseB.orders} in ${fmt(phaseB.seconds)} s${Object.keys(phaseB.refused).length ? `, refused ${JSON.stringify(phaseB.refused)}` : ""}; ` +
          `orders of the wrong kind ${phaseA.wrongKind + phaseB.wrongKind}`,
      );
      console.log(
        `after both phases: reservations ${settled.portfolio.reservations} (waited ${fmt(settled.waitedMs, 0)} ms), open positions ${settled.portfolio.openPositions}, ` +
          `net units back to the opening 1 unit per pair: ${netOk ? "yes" : "no"}`,
      );
      console.log(
        "baseline = the same number of orders per pair, same clients, each reducing the position the approval phase built (reduce-only orders skip the coordinator). " +
          "Alternating buy/sell on one pair would make every other order reduce-only, so the approval phase only adds risk (buys on half the pairs, sells on the other half).",
      );
      const slow = (p: PhaseFigures) => p.slowest.map((x) => `${fmt(x.ms, 0)} ms ${x.pair} at ${fmt(x.atS)} s`).join(", ");
      console.log(`slowest orders: approval phase ${slow(phaseA)}; baseline ${slow(phaseB)}`);
      console.log(
        `client event-loop delay max: approval phase ${fmt(phaseA.clientLoopDelayMs.max)} ms, baseline ${fmt(phaseB.clientLoopDelayMs.max)} ms` +
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
          phaseSecondsMax: phaseSeconds,
          maxRiskIncreasingOrdersPerPair: MAX_INCREASING_PER_PAIR,
          warmupOrdersPerPair: WARMUP_ROUNDS,
          units: UNITS,
          pairRisk: PAIR_RISK,
          portfolioLimits: PORTFOLIO_LIMITS,
          client: `node:http keep-alive; kill switch over 1 socket sequentially, orders over ${CONCURRENCY} sockets`,
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
          `The approval phase stops at ${phaseSeconds} s or ${MAX_INCREASING_PER_PAIR} orders per pair (maxOrdersPerMinute is at most 1000 by schema); the baseline replays the same per-pair counts to completion.`,
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
