/**
 * Tick to decision: how long a tick that closes a candle takes through
 * candle close -> indicators -> strategy -> signal -> risk -> order intent
 * (the decision), and on to paper fill -> position, measured two ways in the
 * same run.
 *
 * (a) Runtime: the actor's clock stands still between I/O, so the cost is
 *     measured from the client. Every data minute gets two ticks: one that
 *     closes the previous minute (the "closing" tick: it always produces a
 *     signal and an order), then one in the same minute (the "baseline" tick:
 *     HTTP + RPC + ingest, nothing closes).
 *     - Decision: a keyed room client times the first "order" frame of a
 *       closing tick (sent once per-pair risk and the coordinator approved
 *       the order and it is stored with its outbox entry) and the "tick" frame
 *       of a baseline tick, both from the POST. Decision = order frame -
 *       tick frame, per percentile: the same ingress and delivery cancel out.
 *     - To position: closing POST - baseline POST (the POST answers once the
 *       fill and position are stored), per percentile.
 * (b) Domain: the same pipeline in-process in Node (CandleAggregator.onTick,
 *     IndicatorSet, runStrategies, checkOrder, fillMarket, applyFill) over the
 *     same ticks, timed per tick with performance.now().
 *
 * Ticks: sma-cross fast 2 / slow 3 on 1m over a zig-zag of minute closes
 * (L, H, L, H, ...): fast is always (L + H) / 2 while slow alternates above
 * and below it, so the SMAs cross on every candle and each close reverses the
 * position. Timestamps are old but ordered (back-fill), within the last day:
 * stalePriceMs is capped at 86_400_000 by the schema, and the risk check
 * compares the last quote with the actor's wall clock.
 */
import { intentForSignal } from "../src/domain/trading/signal-intent.ts";
import { performance } from "node:perf_hooks";
import { CandleAggregator } from "../src/domain/candle-aggregator.ts";
import type { Tick, Timeframe } from "../src/domain/candle.ts";
import { candleToMidHLC, IndicatorSet, roundIndicatorValues } from "../src/domain/indicators.ts";
import { getInstrument, pointsPerPip, type Instrument } from "../src/domain/instruments.ts";
import { toDecimal } from "../src/domain/price.ts";
import { fillMarket } from "../src/domain/trading/fill-model.ts";
import { applyFill, onQuote, type Position } from "../src/domain/trading/position.ts";
import { checkOrder, signedUnits } from "../src/domain/trading/risk.ts";
import { runStrategies } from "../src/domain/trading/signal-engine.ts";
import { startRun, type StrategyRun } from "../src/domain/strategy/run.ts";
import type { Signal } from "../src/domain/trading/types.ts";
import { DEFAULT_FILL_MODEL, RiskLimits } from "../schemas/trading.ts";
import type { StrategyConfig } from "../schemas/strategy.ts";
import type { WireTick } from "../schemas/tick.ts";
import * as v from "valibot";
import WebSocket from "ws";
import { freePort } from "./inspector-session.ts";
import { printProfiles, startProfiles, type IsolateProfile } from "./isolate-profile.ts";
import {
  BENCH_KEY,
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
  type BenchOptions,
  type LatencySummary,
  type Scenario,
  type ScenarioResult,
  startBenchRuntime,
  json,
  put,
} from "./common.ts";

const MINUTE_MS = 60_000;
/** Within a data minute: the closing tick 1 s in, the baseline tick 31 s in. */
const CLOSING_OFFSET_MS = 1_000;
const BASELINE_OFFSET_MS = 31_000;
/** Unmeasured minutes first: actor start, SQLite, JIT, and the strategy's warm-up (first signal on the 4th close). */
const WARMUP_MINUTES = 20;
/**
 * Orders count against maxOrdersPerMinute (<= 1000, schema) by the actor's
 * wall clock, and GET orders lists at most 1000: so at most this many
 * measured closes per pair, and several pairs for a full run.
 */
const MAX_CLOSES_PER_PAIR = 880;
/** Between requests, so fire-and-forget work of one (signal hub publish) does not land in the next. */
const PAUSE_MS = 1;
const TARGET_DOMAIN_P50_US = 20;
const TARGET_DECISION_P99_MS = 2;
const STRATEGY_ID = "ref";
const UNITS = 10_000;
const ACCOUNT_CURRENCY = "USD";

const STRATEGY: StrategyConfig = {
  id: STRATEGY_ID,
  kind: "sma-cross",
  enabled: true,
  units: UNITS,
  params: { timeframe: "1m", fast: 2, slow: 3, price: "bid" },
};
const LIMITS_BODY = {
  stalePriceMs: 86_400_000,
  weekendGuard: false,
  stopLossRequired: "never",
  maxOrdersPerMinute: 1000,
  maxPositionUnits: 1_000_000_000,
} as const;
const LIMITS: RiskLimits = v.parse(RiskLimits, LIMITS_BODY);

/** Mid prices the zig-zag swings around, points. */
const MIDS: Record<string, number> = { EUR_USD: 108_500, GBP_USD: 127_000, AUD_USD: 65_500, USD_JPY: 150_000 };
/** Pairs quoted in the account currency (USD): their fills need no conversion rate. */
const PAIRS_FULL = ["EUR_USD", "GBP_USD", "AUD_USD"];

interface SeqTick {
  tick: Tick;
  kind: "closing" | "baseline";
  /** Index of the data minute; minutes < WARMUP_MINUTES + 1 are not measured. */
  minute: number;
}

/** Two ticks per minute, minute closes alternating low/high by 10 pips, spread 1 pip. */
function zigzag(instrument: Instrument, startTs: number, minutes: number): SeqTick[] {
  const pip = pointsPerPip(instrument);
  const mid = MIDS[instrument.symbol] ?? 100_000;
  const out: SeqTick[] = [];
  for (let m = 0; m < minutes; m++) {
    const bid = m % 2 === 0 ? mid - 10 * pip : mid + 10 * pip;
    const t = startTs + m * MINUTE_MS;
    // Minute 0's first tick closes nothing; every later minute's first tick closes the one before.
    out.push({ tick: { ts: t + CLOSING_OFFSET_MS, bid, ask: bid + pip }, kind: m === 0 ? "baseline" : "closing", minute: m });
    out.push({ tick: { ts: t + BASELINE_OFFSET_MS, bid, ask: bid + pip }, kind: "baseline", minute: m });
  }
  return out;
}

function toWire(t: Tick, instrument: Instrument): WireTick {
  return { ts: t.ts, bid: toDecimal(t.bid, instrument), ask: toDecimal(t.ask, instrument) };
}

const measured = (s: SeqTick) => s.minute > WARMUP_MINUTES;

// ---- (b) the domain pipeline in-process ------------------------------------------

interface DomainPass {
  closingUs: number[];
  baselineUs: number[];
  /** Per tick of the sequence: candles closed, orders filled. */
  closedPerTick: number[];
  ordersPerTick: number[];
  orders: number;
  rejections: number;
}

/**
 * One pass over the sequence with fresh state, as the actor does it (minus
 * storage): aggregate, indicators per closed candle (rounded for the wire),
 * strategies, then per signal the intent, per-pair risk, market fill and
 * netting position; every tick then marks open positions (trader.onQuote).
 */
function domainPass(instrument: Instrument, seq: readonly SeqTick[]): DomainPass {
  const dp = instrument.displayPrecision;
  const aggregator = new CandleAggregator();
  const indicators = new Map<Timeframe, IndicatorSet>();
  let runs: StrategyRun[] = [startRun(STRATEGY, instrument)];
  let position: Position | null = null;
  let pairNet = 0;
  const orderTimes: number[] = [];
  const out: DomainPass = { closingUs: [], baselineUs: [], closedPerTick: [], ordersPerTick: [], orders: 0, rejections: 0 };

  for (const s of seq) {
    const tick = s.tick;
    const now = tick.ts;
    const t0 = performance.now();
    const closed = aggregator.onTick(tick);
    const signals: Signal[] = [];
    for (const { tf, candle } of closed) {
      let set = indicators.get(tf);
      if (!set) indicators.set(tf, (set = new IndicatorSet()));
      // The pair's shared indicators, stored and published with each candle (the strategies keep their own).
      roundIndicatorValues(set.update(candleToMidHLC(candle, dp)), dp + 3);
      const r = runStrategies(runs, { tf, candle }, position && position.status === "OPEN" ? [position] : [], instrument);
      runs = r.runs;
      for (const sig of r.signals) signals.push(sig);
    }
    let orders = 0;
    for (const signal of signals) {
      const run = runs.find((r) => r.config.id === signal.strategyId);
      if (!run) continue;
      const current = position && position.status === "OPEN" ? signedUnits(position.side, position.units) : 0;
      const intent = intentForSignal(signal, current, run.config.units);
      if (!intent) continue;
      while (orderTimes.length > 0 && orderTimes[0]! <= now - MINUTE_MS) orderTimes.shift();
      const decision = checkOrder(intent, {
        limits: LIMITS,
        instrument,
        pairNetUnits: pairNet,
        strategyNetUnits: current,
        quote: tick,
        recentOrderTimesMs: orderTimes,
        nowMs: now,
      });
      if (!decision.accepted) {
        out.rejections++;
        continue;
      }
      orderTimes.push(now);
      const fill = fillMarket(intent, tick, DEFAULT_FILL_MODEL, instrument, 1);
      const applied = applyFill(position, fill, { instrument, strategyId: intent.strategyId, rates: [], accountCurrency: ACCOUNT_CURRENCY, protection: {} });
      if (!applied.ok) throw new Error(`domain: fill not applicable: ${JSON.stringify(applied.error)}`);
      position = applied.value.position;
      pairNet = position.status === "OPEN" ? signedUnits(position.side, position.units) : 0;
      orders++;
    }
    if (position && position.status === "OPEN") position = onQuote(position, tick, instrument).position;
    const us = (performance.now() - t0) * 1000;
    if (measured(s)) (s.kind === "closing" ? out.closingUs : out.baselineUs).push(us);
    out.closedPerTick.push(closed.length);
    out.ordersPerTick.push(orders);
    out.orders += orders;
  }
  return out;
}

interface DomainFigures {
  passes: number;
  closingUs: LatencySummary;
  baselineUs: LatencySummary;
  decisionUs: { p50: number | null; p99: number | null };
}

function domainRun(sequences: { instrument: Instrument; seq: SeqTick[] }[], passes: number): DomainFigures {
  for (let i = 0; i < 3; i++) for (const { instrument, seq } of sequences) domainPass(instrument, seq); // JIT warm-up
  const closing: number[] = [];
  const baseline: number[] = [];
  for (let p = 0; p < passes; p++) {
    for (const { instrument, seq } of sequences) {
      const r = domainPass(instrument, seq);
      closing.push(...r.closingUs);
      baseline.push(...r.baselineUs);
    }
  }
  const c = summarize(closing);
  const b = summarize(baseline);
  return { passes, closingUs: c, baselineUs: b, decisionUs: { p50: diff(c.p50, b.p50), p99: diff(c.p99, b.p99) } };
}

// ---- (a) the runtime -------------------------------------------------------------

interface PairFigures {
  pair: string;
  measuredCloses: number;
  closingMs: LatencySummary;
  baselineMs: LatencySummary;
  /** Closing tick's first "order" frame, from the POST. */
  orderFrameMs: LatencySummary;
  /** Baseline tick's "tick" frame, from the POST. */
  tickFrameMs: LatencySummary;
  /** Tick in -> order intent decided: order frame - tick frame. */
  decisionMs: { p50: number | null; p99: number | null };
  /** Tick in -> fill and position stored: closing POST - baseline POST. */
  toPositionMs: { p50: number | null; p99: number | null };
  /** closing - the baseline tick right after it, per minute. */
  pairedDiffMs: LatencySummary;
  /** Closing ticks that closed 5m/15m/1h/4h/1D candles too. */
  multiTimeframeCloses: { n: number; closingP50Ms: number | null };
  /** p50 of the first and last 10% of the measured minutes: growth with the actor's stored orders. */
  drift: { closingP50FirstMs: number | null; closingP50LastMs: number | null; baselineP50FirstMs: number | null; baselineP50LastMs: number | null };
  orders: { expected: number; listed: number; filled: number; duringMeasurement: number; expectedDuringMeasurement: number; ok: boolean };
  positions: number;
}


async function orderList(baseUrl: string, pair: string): Promise<{ status: string }[]> {
  return (await json<{ orders: { status: string }[] }>(`${baseUrl}/api/pairs/${pair}/orders?limit=1000`)).orders;
}

interface PairRun {
  figures: PairFigures;
  seq: SeqTick[];
  samples: { closing: number[]; baseline: number[]; paired: number[]; orderFrame: number[]; tickFrame: number[] };
}

type Frame = { type: string; ts?: number };

/** A keyed room client that tells when the first frame matching a wait arrives (performance.now()). */
class FrameClock {
  private waiters: { match: (f: Frame) => boolean; resolve: (at: number) => void }[] = [];

  private constructor(private readonly ws: WebSocket) {
    ws.on("message", (data: WebSocket.RawData) => {
      const at = performance.now();
      const frame = JSON.parse(data.toString()) as Frame;
      const i = this.waiters.findIndex((w) => w.match(frame));
      if (i >= 0) this.waiters.splice(i, 1)[0]!.resolve(at);
    });
  }

  static open(baseUrl: string, pair: string): Promise<FrameClock> {
    const ws = new WebSocket(`${baseUrl.replace(/^http/, "ws")}/parties/pair/${pair}?tf=1m&limit=0&key=${BENCH_KEY}`, { perMessageDeflate: false });
    const clock = new FrameClock(ws);
    return new Promise((resolve, reject) => {
      clock.wait((f) => f.type === "snapshot").then(() => resolve(clock), reject);
      ws.once("error", reject);
    });
  }

  wait(match: (f: Frame) => boolean, timeoutMs = 10_000): Promise<number> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no matching frame within ${timeoutMs} ms`)), timeoutMs);
      this.waiters.push({ match, resolve: (at) => (clearTimeout(timer), resolve(at)) });
    });
  }

  close(): void {
    this.ws.close();
  }
}

export async function runPair(baseUrl: string, poster: Poster, pair: string, closes: number): Promise<PairRun> {
  const instrument = getInstrument(pair);
  const minutes = 1 + WARMUP_MINUTES + closes;
  // Whole minutes, the last one starting two minutes ago: every tick is in the past.
  const startTs = Math.floor(Date.now() / MINUTE_MS) * MINUTE_MS - (minutes + 1) * MINUTE_MS;
  const seq = zigzag(instrument, startTs, minutes);
  const expected = domainPass(instrument, seq);

  await put(`${baseUrl}/api/admin/pairs/${pair}/risk`, { limits: LIMITS_BODY });
  // The zig-zag loses a little on every reversal: lift the portfolio's loss and exposure limits so the
  // coordinator keeps approving (its round trip is part of what is measured).
  await put(`${baseUrl}/api/admin/limits`, {
    maxGrossExposure: 1e11, maxNetExposurePerCurrency: 1e11, maxOpenPositions: 10_000, maxExposurePerPair: 1e11, dailyLossLimit: 1e11, maxDrawdown: 1e11,
  });
  await put(`${baseUrl}/api/admin/pairs/${pair}/strategies`, { strategies: [STRATEGY] });

  const closing: number[] = [];
  const baseline: number[] = [];
  const paired: number[] = [];
  const orderFrame: number[] = [];
  const tickFrame: number[] = [];
  const frames = await FrameClock.open(baseUrl, pair);
  const multi: number[] = [];
  let ordersBefore = -1;
  let expectedBefore = 0;
  let lastClosing = 0;
  for (const [i, s] of seq.entries()) {
    if (s.minute === WARMUP_MINUTES + 1 && s.kind === "closing") {
      ordersBefore = (await orderList(baseUrl, pair)).length;
      expectedBefore = expected.ordersPerTick.slice(0, i).reduce((a, b) => a + b, 0);
    }
    const body = JSON.stringify({ ticks: [toWire(s.tick, instrument)] });
    // Frames of one socket arrive in order: by the time a baseline tick's frame is in, every frame
    // of the closing tick before it is too, so "the first order frame" is this tick's.
    const frame = !measured(s) ? null : s.kind === "closing" ? frames.wait((f) => f.type === "order") : frames.wait((f) => f.type === "tick" && f.ts === s.tick.ts);
    const t0 = performance.now();
    const res = await poster.post(`/api/pairs/${pair}/ticks`, body);
    const ms = performance.now() - t0;
    if (frame) (s.kind === "closing" ? orderFrame : tickFrame).push((await frame) - t0);
    if (res.status !== 200) throw new Error(`${pair} tick ${i}: ${res.status} ${res.body.slice(0, 300)}`);
    const result = JSON.parse(res.body) as { accepted: number; rejected: unknown[] };
    if (result.accepted !== 1) throw new Error(`${pair} tick ${i} not accepted: ${res.body.slice(0, 300)}`);
    if (measured(s)) {
      if (s.kind === "closing") {
        closing.push(ms);
        lastClosing = ms;
        if ((expected.closedPerTick[i] ?? 0) > 1) multi.push(ms);
      } else {
        baseline.push(ms);
        paired.push(lastClosing - ms);
      }
    }
    await sleep(PAUSE_MS);
  }

  frames.close();
  const listed = await orderList(baseUrl, pair);
  const positions = (await json<{ positions: unknown[] }>(`${baseUrl}/api/pairs/${pair}/positions?limit=1000`)).positions.length;
  // Stop the strategy so the alarm closing the last minute later adds no order (nor work in the next pair's run).
  await put(`${baseUrl}/api/admin/pairs/${pair}/strategies`, { strategies: [] });

  const filled = listed.filter((o) => o.status === "filled").length;
  const duringMeasurement = listed.length - ordersBefore;
  const expectedDuring = expected.orders - expectedBefore;
  const tenth = Math.max(1, Math.floor(closes / 10));
  const p50 = (xs: number[]) => round(percentile([...xs].sort((a, b) => a - b), 50));
  const c = summarize(closing);
  const b = summarize(baseline);
  const o = summarize(orderFrame);
  const t = summarize(tickFrame);
  return {
    seq,
    samples: { closing, baseline, paired, orderFrame, tickFrame },
    figures: {
      pair,
      measuredCloses: closing.length,
      closingMs: c,
      baselineMs: b,
      orderFrameMs: o,
      tickFrameMs: t,
      decisionMs: { p50: diff(o.p50, t.p50), p99: diff(o.p99, t.p99) },
      toPositionMs: { p50: diff(c.p50, b.p50), p99: diff(c.p99, b.p99) },
      pairedDiffMs: summarize(paired),
      multiTimeframeCloses: { n: multi.length, closingP50Ms: p50(multi) },
      drift: {
        closingP50FirstMs: p50(closing.slice(0, tenth)),
        closingP50LastMs: p50(closing.slice(-tenth)),
        baselineP50FirstMs: p50(baseline.slice(0, tenth)),
        baselineP50LastMs: p50(baseline.slice(-tenth)),
      },
      orders: {
        expected: expected.orders,
        listed: listed.length,
        filled,
        duringMeasurement,
        expectedDuringMeasurement: expectedDuring,
        ok: listed.length === expected.orders && filled === expected.orders && duringMeasurement === closes && expectedDuring === closes,
      },
      positions,
    },
  };
}

function diff(a: number | null, b: number | null): number | null {
  return a === null || b === null ? null : round(a - b);
}

export const tickToDecision: Scenario = {
  name: "tick-to-decision",
  description: "candle-closing tick -> indicators -> strategy -> risk -> paper fill -> position, in the actor and in Node",
  async run(options: BenchOptions): Promise<ScenarioResult> {
    const base = await resultBase("tick-to-decision", options);
    const pairs = options.quick ? ["EUR_USD"] : PAIRS_FULL;
    const closesPerPair = options.quick ? 300 : MAX_CLOSES_PER_PAIR;
    const domainPasses = options.quick ? 5 : 10;

    const state = await tempDir("fxrt-bench-t2d-");
    let stopRuntime: (() => Promise<void>) | null = null;
    let poster: Poster | null = null;
    try {
      console.log("starting runtime (bundling the Worker)...");
      // No coalescing: a baseline tick follows its closing tick by a few ms, inside the default 10 ms
      // window, and would wait for the window's end; its frame must leave as soon as it is ingested.
      const inspectorPort = options.profile ? await freePort() : undefined;
      const runtime = await startBenchRuntime(state.dir, { TICK_COALESCE_MS: "0" }, inspectorPort);
      stopRuntime = onCleanup(() => runtime.stop());
      poster = new Poster(runtime.url, 1);

      // Stages as the actors timed them (their clocks advance across I/O only, so these show the waits:
      // the coordinator's approval hop, the whole order round trip, the whole decision). Read right
      // after each pair's run: an idle actor is evicted, and its in-memory windows with it.
      type Window = { p50: number | null; p99: number | null; count: number };
      const runs: PairRun[] = [];
      const stages: { pair: string; tickToDecision: Window | undefined; orderRoundTrip: Window | undefined; coordinatorApproval: Window | undefined }[] = [];
      const stopProfiles = inspectorPort === undefined ? null : await startProfiles(inspectorPort, "tick-to-decision");
      for (const pair of pairs) {
        console.log(`  ${pair}: ${WARMUP_MINUTES} warm-up + ${closesPerPair} measured minutes (2 ticks each)...`);
        runs.push(await runPair(runtime.url, poster, pair, closesPerPair));
        const metrics = await json<{ pairs: { pair: string; latencyMs: Record<string, Window> }[] }>(`${runtime.url}/api/metrics`);
        const p = metrics.pairs.find((x) => x.pair === pair);
        if (p) stages.push({ pair, tickToDecision: p.latencyMs.tickToDecision, orderRoundTrip: p.latencyMs.orderRoundTrip, coordinatorApproval: p.latencyMs.coordinatorApproval });
      }
      const profiles: IsolateProfile[] | null = stopProfiles ? await stopProfiles() : null;
      const perPair = runs.map((r) => r.figures);
      const sequences = runs.map((r, i) => ({ instrument: getInstrument(pairs[i]!), seq: r.seq }));

      console.log(`  domain pipeline in Node: ${domainPasses} passes over the same ticks...`);
      const domain = domainRun(sequences, domainPasses);

      const pooled = pooledFigures(runs);
      const ordersOk = perPair.every((p) => p.orders.ok);
      if (!ordersOk) {
        throw new Error(`order count mismatch: ${JSON.stringify(perPair.map((p) => ({ pair: p.pair, ...p.orders })))}`);
      }

      const ratios: Record<string, number | null> = {
        decisionP50_actorOverDomain: ratio(pooled.decisionMs.p50 === null ? null : pooled.decisionMs.p50 * 1000, domain.closingUs.p50),
        decisionP99_actorOverDomain: ratio(pooled.decisionMs.p99 === null ? null : pooled.decisionMs.p99 * 1000, domain.closingUs.p99),
        closingOverBaselineP50_actor: ratio(pooled.closingP50, pooled.baselineP50),
      };
      const targets = [
        {
          description: `domain path alone p50 < ${TARGET_DOMAIN_P50_US} us per closing tick`,
          value: domain.closingUs.p50,
          met: domain.closingUs.p50 === null ? null : domain.closingUs.p50 < TARGET_DOMAIN_P50_US,
        },
        {
          description: `tick to decision inside the actor p99 < ${TARGET_DECISION_P99_MS} ms (order frame - tick frame p99)`,
          value: pooled.decisionMs.p99,
          met: pooled.decisionMs.p99 === null ? null : pooled.decisionMs.p99 < TARGET_DECISION_P99_MS,
        },
      ];

      console.log(
        `\ntick-to-decision (${options.quick ? "quick" : "full"}): sma-cross 2/3 on 1m, zig-zag closes, every closing tick = 1 signal + 1 order + fill`,
      );
      const rows: (string | number)[][] = [];
      for (const p of perPair) {
        rows.push([`actor ${p.pair} closing POST`, "ms", p.closingMs.n, fmt(p.closingMs.p50), fmt(p.closingMs.p99), fmt(p.closingMs.max), fmt(p.closingMs.mean)]);
        rows.push([`actor ${p.pair} baseline POST`, "ms", p.baselineMs.n, fmt(p.baselineMs.p50), fmt(p.baselineMs.p99), fmt(p.baselineMs.max), fmt(p.baselineMs.mean)]);
        rows.push([`actor ${p.pair} closing: order frame`, "ms", p.orderFrameMs.n, fmt(p.orderFrameMs.p50), fmt(p.orderFrameMs.p99), fmt(p.orderFrameMs.max), fmt(p.orderFrameMs.mean)]);
        rows.push([`actor ${p.pair} baseline: tick frame`, "ms", p.tickFrameMs.n, fmt(p.tickFrameMs.p50), fmt(p.tickFrameMs.p99), fmt(p.tickFrameMs.max), fmt(p.tickFrameMs.mean)]);
        rows.push([`actor ${p.pair} decision (frame diff)`, "ms", "", fmt(p.decisionMs.p50), fmt(p.decisionMs.p99), "", ""]);
        rows.push([`actor ${p.pair} to position (POST diff)`, "ms", "", fmt(p.toPositionMs.p50), fmt(p.toPositionMs.p99), "", ""]);
      }
      if (perPair.length > 1) {
        rows.push(["actor all pairs decision (frame diff)", "ms", pooled.n, fmt(pooled.decisionMs.p50), fmt(pooled.decisionMs.p99), "", ""]);
        rows.push(["actor all pairs to position (POST diff)", "ms", pooled.n, fmt(pooled.toPositionMs.p50), fmt(pooled.toPositionMs.p99), "", ""]);
      }
      rows.push(["actor paired diff (closing - next baseline)", "ms", pooled.paired.n, fmt(pooled.paired.p50), fmt(pooled.paired.p99), fmt(pooled.paired.max), fmt(pooled.paired.mean)]);
      rows.push(["node domain closing tick", "us", domain.closingUs.n, fmt(domain.closingUs.p50), fmt(domain.closingUs.p99), fmt(domain.closingUs.max), fmt(domain.closingUs.mean)]);
      rows.push(["node domain non-closing tick", "us", domain.baselineUs.n, fmt(domain.baselineUs.p50), fmt(domain.baselineUs.p99), fmt(domain.baselineUs.max), fmt(domain.baselineUs.mean)]);
      printTable(["series", "unit", "samples", "p50", "p99", "max", "mean"], rows);
      console.log("\nstages inside each actor (latest samples, I/O-clocked):");
      printTable(
        ["pair", "decision p50/p99 ms", "order round trip p50/p99 ms", "coordinator approval p50/p99 ms"],
        stages.map((st) => [st.pair, `${fmt(st.tickToDecision?.p50)} / ${fmt(st.tickToDecision?.p99)}`, `${fmt(st.orderRoundTrip?.p50)} / ${fmt(st.orderRoundTrip?.p99)}`, `${fmt(st.coordinatorApproval?.p50)} / ${fmt(st.coordinatorApproval?.p99)}`]),
      );
      for (const p of perPair) {
        console.log(
          `${p.pair}: orders ${p.orders.listed} listed (${p.orders.filled} filled, expected ${p.orders.expected}; ${p.orders.duringMeasurement} during the ${p.measuredCloses} measured closes), ` +
            `${p.positions} positions; closes with higher timeframes ${p.multiTimeframeCloses.n} (p50 ${fmt(p.multiTimeframeCloses.closingP50Ms)} ms); ` +
            `p50 first/last 10%: closing ${fmt(p.drift.closingP50FirstMs)}/${fmt(p.drift.closingP50LastMs)} ms, baseline ${fmt(p.drift.baselineP50FirstMs)}/${fmt(p.drift.baselineP50LastMs)} ms`,
        );
      }
      if (profiles) printProfiles(profiles);
      for (const t of targets) console.log(targetLine(t.description, t.value, t.met));

      return {
        ...base,
        parameters: {
          pairs,
          measuredClosesPerPair: closesPerPair,
          warmupMinutes: WARMUP_MINUTES,
          ticksPerMinute: 2,
          closingTickOffsetMs: CLOSING_OFFSET_MS,
          baselineTickOffsetMs: BASELINE_OFFSET_MS,
          pauseBetweenRequestsMs: PAUSE_MS,
          tickCoalesceMs: 0,
          strategy: STRATEGY,
          riskLimits: LIMITS_BODY,
          fillModel: "default (no slippage, no commission)",
          zigzagPips: 20,
          spreadPips: 1,
          domainPasses,
          client: "one keep-alive node:http socket, requests strictly sequential",
        },
        figures: {
          actor: {
            perPair,
            pooled: { closingP50Ms: pooled.closingP50, closingP99Ms: pooled.closingP99, baselineP50Ms: pooled.baselineP50, baselineP99Ms: pooled.baselineP99, decisionMs: pooled.decisionMs, toPositionMs: pooled.toPositionMs, pairedDiffMs: pooled.paired },
            stagesInActor: stages,
          },
          ...(profiles ? { cpuProfile: profiles } : {}),
        },
        baseline: { description: "the same domain pipeline in-process in Node over the same ticks (no HTTP, RPC, SQLite, broadcast)", ...domain },
        ratios,
        targets,
        notes: [
          "Decision = p(closing tick's first order frame) - p(baseline tick's tick frame), per percentile, both timed from the POST by one keyed room client: tick in, candle close, indicator and candle writes, strategy, signal insert, per-pair risk, the coordinator's approval (one RPC), order + outbox write. The same ingress and delivery are in both and cancel out.",
          "To position = p(closing POST) - p(baseline POST), per percentile: the decision plus the paper fill, fill and position writes and their broadcasts.",
          "Paired diff = closing POST minus the baseline POST right after it, per minute: noisier (two samples' noise) but per event.",
          "Domain = CandleAggregator.onTick, IndicatorSet.update + roundIndicatorValues per closed candle, runStrategies, intent, checkOrder, fillMarket, applyFill, position onQuote; timed per tick.",
          "Closing ticks sometimes close 5m/15m/1h/4h/1D candles too (counted per pair).",
          `At most ${MAX_CLOSES_PER_PAIR} measured closes per pair: orders count against maxOrdersPerMinute (<= 1000 by schema) on the actor's wall clock, and GET orders lists at most 1000.`,
          "Tick timestamps are whole past minutes within the last day: stalePriceMs is capped at 86,400,000 by the schema, so ticks days old would be refused by risk.",
          "Targets are reported, not asserted.",
        ],
      };
    } finally {
      poster?.close();
      if (stopRuntime) await stopRuntime();
      await state.remove();
    }
  },
};

function pooledFigures(runs: readonly PairRun[]) {
  const c = summarize(runs.flatMap((r) => r.samples.closing));
  const b = summarize(runs.flatMap((r) => r.samples.baseline));
  const o = summarize(runs.flatMap((r) => r.samples.orderFrame));
  const t = summarize(runs.flatMap((r) => r.samples.tickFrame));
  return {
    n: c.n,
    closingP50: c.p50,
    closingP99: c.p99,
    baselineP50: b.p50,
    baselineP99: b.p99,
    decisionMs: { p50: diff(o.p50, t.p50), p99: diff(o.p99, t.p99) },
    toPositionMs: { p50: diff(c.p50, b.p50), p99: diff(c.p99, b.p99) },
    paired: summarize(runs.flatMap((r) => r.samples.paired)),
  };
}
