import { existsSync } from "node:fs";
import path from "node:path";
import fc from "fast-check";
import * as v from "valibot";
import { describe, expect, it } from "vitest";
import { CandleAggregator } from "../../src/domain/candle-aggregator.ts";
import type { Candle, Timeframe } from "../../src/domain/candle.ts";
import { getInstrument } from "../../src/domain/instruments.ts";
import { toPoints } from "../../src/domain/price.ts";
import { checkParams, paramInfo, STRATEGY_NAMES } from "../../src/domain/strategy/catalog.ts";
import { lastOpsUsed, STEP_BUDGET_OPS_DEFAULT } from "../../src/domain/strategy/meter.ts";
import { feedRun, startRun, warmUp, type StrategyRun } from "../../src/domain/strategy/run.ts";
import type { SignalDraft } from "../../src/domain/trading/strategy.ts";
import { parseHistdataM1 } from "../../src/ingest/history-formats.ts";
import { readLines } from "../../src/ingest/read-lines.ts";
import { parseZone } from "../../src/ingest/time-zone.ts";
import { StrategyConfig, StrategyConfigList } from "../../schemas/strategy.ts";

const eur = getInstrument("EUR_USD");
const DATA = path.resolve(import.meta.dirname, "../../../shared/data");
const M1_2018 = path.join(DATA, "m1_histdata/DAT_ASCII_EURUSD_M1_2018.csv.gz");
const hasData = existsSync(M1_2018);
if (!hasData) console.warn(`strategies: real-data tests skipped, no ${M1_2018}`);

describe("strategy parameters", () => {
  it("fills defaults and refuses bad parameters with readable issues", () => {
    const ok = v.parse(StrategyConfig, { id: "trend-1", kind: "ema-cross" });
    expect(ok).toMatchObject({ enabled: true, units: 10_000, params: { timeframe: "15m", fast: 12, slow: 26, atrStopMultiple: 2 } });
    expect(v.parse(StrategyConfig, { id: "ref", kind: "sma-cross" }).params).toEqual({ timeframe: "1h", fast: 20, slow: 50, price: "bid" });
    const bad = v.safeParse(StrategyConfig, { id: "x", kind: "ema-cross", params: { fast: 30, slow: 20 } });
    expect(bad.success).toBe(false);
    expect(bad.issues?.[0]?.message).toMatch(/fast must be shorter/);
    expect(v.safeParse(StrategyConfig, { id: "Bad Id", kind: "ema-cross" }).success).toBe(false);
    const unknownKind = v.safeParse(StrategyConfig, { id: "x", kind: "martingale" });
    expect(unknownKind.issues?.[0]?.message).toMatch(/unknown strategy "martingale"; there are: .*ema-cross.*sma-cross/);
    expect(v.safeParse(StrategyConfigList, [{ id: "a", kind: "sma-cross" }, { id: "a", kind: "ema-cross" }]).success).toBe(false);
  });

  it("refuses an unknown or misspelt parameter, naming the valid ones", () => {
    const typo = v.safeParse(StrategyConfig, { id: "x", kind: "sma-cross", params: { fsat: 3 } });
    expect(typo.success).toBe(false);
    expect(typo.issues?.[0]?.message).toBe('unknown parameter "fsat" for sma-cross; its parameters are: timeframe, fast, slow, price');
    const two = checkParams("rsi-reversion", { lenght: 14, perod: 3 });
    expect(two).toEqual({ ok: false, path: "params.lenght", message: 'unknown parameters "lenght", "perod" for rsi-reversion; its parameters are: timeframe, period, oversold, overbought, exitLevel, atrPeriod, atrStopMultiple, price' });
    expect(checkParams("sma-cross", { fast: 2.5 })).toMatchObject({ ok: false, path: "params.fast" });
    expect(checkParams("sma-cross", { fast: 5 })).toEqual({ ok: true, params: { timeframe: "1h", fast: 5, slow: 50, price: "bid" } });
  });

  it("lists each strategy's parameters with their types, defaults and bounds", () => {
    expect(STRATEGY_NAMES).toEqual(expect.arrayContaining(["ema-cross", "rsi-reversion", "sma-cross"]));
    expect(paramInfo("sma-cross")).toEqual([
      { name: "timeframe", type: "picklist", default: "1h", options: ["1m", "5m", "15m", "1h", "4h", "1D"] },
      { name: "fast", type: "integer", default: 20, min: 2, max: 500 },
      { name: "slow", type: "integer", default: 50, min: 2, max: 500 },
      { name: "price", type: "picklist", default: "bid", options: ["bid", "mid"] },
    ]);
    expect(paramInfo("ema-cross").find((p) => p.name === "atrTakeProfitMultiple")).toEqual({ name: "atrTakeProfitMultiple", type: "number | null", default: 3, min: 0.1, max: 20 });
  });
});

/** EUR_USD 2018 bid M1 bars (file clock New York) aggregated to closed candles of `tf`. */
async function realCandles(tf: "1h" | "15m"): Promise<Candle[]> {
  const out: Candle[] = [];
  await eachRealCandle((t, candle) => {
    if (t === tf) out.push(candle);
  });
  return out;
}

/** Every closed candle of every timeframe of EUR_USD 2018, in the order they close. */
async function eachRealCandle(each: (tf: Timeframe, candle: Candle) => void): Promise<void> {
  const zone = parseZone("America/New_York");
  const agg = new CandleAggregator();
  let n = 0;
  for await (const line of readLines(M1_2018)) {
    const r = parseHistdataM1(line, ++n, zone);
    if (!r.ok) continue;
    const b = r.value;
    const bar: Candle = {
      t: b.ts,
      bo: toPoints(b.open, eur), bh: toPoints(b.high, eur), bl: toPoints(b.low, eur), bc: toPoints(b.close, eur),
      ao: toPoints(b.open, eur), ah: toPoints(b.high, eur), al: toPoints(b.low, eur), ac: toPoints(b.close, eur),
      n: 1,
    };
    for (const c of agg.onBar(bar)) each(c.tf, c.candle);
  }
}

function runAll(run: StrategyRun, candles: Candle[], tf: "1h" | "15m"): { run: StrategyRun; signals: (SignalDraft & { t: number })[] } {
  const signals: (SignalDraft & { t: number })[] = [];
  for (const candle of candles) {
    const out = feedRun(run, tf, candle, null, eur);
    if ("fault" in out) throw new Error(out.fault.message);
    run = out.run;
    if (out.draft) signals.push({ ...out.draft, t: candle.t });
  }
  return { run, signals };
}

describe.skipIf(!hasData)("reference strategies on real EUR_USD 2018 hours", async () => {
  const hours = hasData ? await realCandles("1h") : [];

  it("sma-cross signals exactly at the crosses of an independent SMA computation", () => {
    const closes = hours.map((c) => c.bc);
    const sma = (i: number, n: number) => (i + 1 < n ? null : closes.slice(i + 1 - n, i + 1).reduce((a, b) => a + b, 0) / n);
    const expected: [number, string][] = [];
    for (let i = 1; i < closes.length; i++) {
      const f0 = sma(i - 1, 20), s0 = sma(i - 1, 50), f1 = sma(i, 20), s1 = sma(i, 50);
      if (f0 === null || s0 === null || f1 === null || s1 === null) continue;
      if (f1 > s1 && f0 <= s0) expected.push([hours[i]!.t, "buy"]);
      if (f1 < s1 && f0 >= s0) expected.push([hours[i]!.t, "sell"]);
    }
    const { signals } = runAll(startRun(v.parse(StrategyConfig, { id: "ref", kind: "sma-cross" }), eur), hours, "1h");
    expect(hours.length).toBeGreaterThan(6000);
    expect(expected.length).toBeGreaterThan(50);
    expect(signals.map((s) => [s.t, s.type])).toEqual(expected);
  });

  it("ema-cross and rsi-reversion signal with stops on the right side, deterministically", () => {
    for (const kind of ["ema-cross", "rsi-reversion"] as const) {
      const config = v.parse(StrategyConfig, { id: "s", kind, params: { timeframe: "1h" } });
      const a = runAll(startRun(config, eur), hours, "1h");
      const b = runAll(startRun(config, eur), hours, "1h");
      expect(a.signals).toEqual(b.signals);
      expect(a.signals.length).toBeGreaterThan(20);
      const byT = new Map(hours.map((c) => [c.t, c]));
      for (const s of a.signals) {
        expect(s.confidence).toBeGreaterThanOrEqual(0);
        expect(s.confidence).toBeLessThanOrEqual(1);
        const c = byT.get(s.t)!;
        const mid = (c.bc + c.ac) / 2;
        if (s.type === "buy") expect(s.stopLoss!).toBeLessThan(mid);
        if (s.type === "sell") expect(s.stopLoss!).toBeGreaterThan(mid);
        if (s.type !== "close") expect(Number.isInteger(s.stopLoss)).toBe(true);
      }
    }
  });

  it("a run restarted at any point (its JSON state saved, its indicators rebuilt from stored candles) gives the same signals", () => {
    fc.assert(
      fc.property(fc.constantFrom("ema-cross", "rsi-reversion", "sma-cross" as const), fc.integer({ min: 0, max: 6000 }), (kind, cut) => {
        const config = v.parse(StrategyConfig, { id: "s", kind, params: { timeframe: "1h" } });
        const whole = runAll(startRun(config, eur), hours, "1h");
        const first = runAll(startRun(config, eur), hours.slice(0, cut), "1h");
        const restored = startRun(config, eur, JSON.parse(JSON.stringify(first.run.state)));
        warmUp(restored, "1h", hours.slice(Math.max(0, cut - restored.memory.warmUpCandles("1h")), cut));
        const second = runAll(restored, hours.slice(cut), "1h");
        expect([...first.signals, ...second.signals]).toEqual(whole.signals);
        expect(JSON.stringify(second.run.state)).toBe(JSON.stringify(whole.run.state));
      }),
      { numRuns: 15 },
    );
  });
});

describe.skipIf(!hasData)("the step budget", () => {
  it("every strategy of strategies/ is metered, and its steps on a year of real candles use under 0.1% of the default budget", async () => {
    const builtIns = STRATEGY_NAMES.filter((kind) => kind !== "faulty");
    expect(builtIns.length).toBeGreaterThanOrEqual(5);
    const runs = new Map(builtIns.map((kind) => [kind, startRun(v.parse(StrategyConfig, { id: "s", kind }), eur)]));
    const opsMax = new Map(builtIns.map((kind) => [kind, 0]));
    const steps = new Map(builtIns.map((kind) => [kind, 0]));
    await eachRealCandle((tf, candle) => {
      for (const [kind, run] of runs) {
        const out = feedRun(run, tf, candle, null, eur);
        if ("fault" in out) throw new Error(`${kind}: ${out.fault.message}`);
        runs.set(kind, out.run);
        if (!out.changed) continue;
        steps.set(kind, steps.get(kind)! + 1);
        opsMax.set(kind, Math.max(opsMax.get(kind)!, lastOpsUsed()));
      }
    });
    console.info(`operations per step, most on EUR_USD 2018: ${[...opsMax].map(([k, n]) => `${k} ${n} (${steps.get(k)} steps)`).join(", ")}`);
    for (const kind of builtIns) {
      expect(steps.get(kind), kind).toBeGreaterThan(1_000);
      // At least the call of onCandle itself: the copy the runtime imports is metered.
      expect(opsMax.get(kind), kind).toBeGreaterThanOrEqual(1);
      expect(opsMax.get(kind), kind).toBeLessThanOrEqual(STEP_BUDGET_OPS_DEFAULT / 1_000);
    }
  });
});
