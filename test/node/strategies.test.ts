import { existsSync } from "node:fs";
import path from "node:path";
import fc from "fast-check";
import { ATR, EMA, RSI, SMA } from "trading-signals";
import * as v from "valibot";
import { describe, expect, it } from "vitest";
import { CandleAggregator } from "../../src/domain/candle-aggregator.ts";
import type { Candle } from "../../src/domain/candle.ts";
import { getInstrument } from "../../src/domain/instruments.ts";
import { toPoints } from "../../src/domain/price.ts";
import * as S from "../../src/domain/trading/series-state.ts";
import { startRun, stepRun, type StrategyRun } from "../../src/domain/trading/strategy-registry.ts";
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

const priceSeries = fc.array(fc.double({ min: 0.5, max: 2, noNaN: true }), { minLength: 1, maxLength: 300 });

function close(a: number | null, b: number | null | undefined) {
  if (a === null || b === null || b === undefined) return expect(a ?? null).toBe(b ?? null);
  expect(Math.abs(a - b)).toBeLessThanOrEqual(1e-9 * Math.max(1, Math.abs(b)));
}

describe("series state matches trading-signals", () => {
  it("EMA, SMA, RSI and ATR give the library's values on random series", () => {
    fc.assert(
      fc.property(priceSeries, fc.integer({ min: 2, max: 30 }), (prices, period) => {
        const ema = new EMA(period), sma = new SMA(period), rsi = new RSI(period), atr = new ATR(period);
        let es = S.emaInit(period), ss = S.smaInit(period), rs = S.rsiInit(period), as = S.atrInit(period);
        for (const p of prices) {
          const high = p * 1.001, low = p * 0.999;
          ema.update(p, false); sma.update(p, false); rsi.update(p, false); atr.update({ high, low, close: p }, false);
          es = S.emaUpdate(es, p); ss = S.smaUpdate(ss, p); rs = S.rsiUpdate(rs, p); as = S.atrUpdate(as, high, low, p);
          close(S.emaValue(es), ema.isStable ? ema.getResultOrThrow() : null);
          close(S.smaValue(ss), sma.isStable ? sma.getResultOrThrow() : null);
          close(S.rsiValue(rs), rsi.isStable ? rsi.getResultOrThrow() : null);
          close(S.atrValue(as), atr.isStable ? atr.getResultOrThrow() : null);
        }
      }),
      { numRuns: 300 },
    );
  });
});

describe("strategy parameters", () => {
  it("fills defaults and refuses bad parameters with readable issues", () => {
    const ok = v.parse(StrategyConfig, { id: "trend-1", kind: "ema-cross" });
    expect(ok).toMatchObject({ enabled: true, units: 10_000, params: { timeframe: "15m", fast: 12, slow: 26, atrStopMultiple: 2 } });
    expect(v.parse(StrategyConfig, { id: "ref", kind: "sma-cross" }).params).toEqual({ timeframe: "1h", fast: 20, slow: 50, price: "bid" });
    const bad = v.safeParse(StrategyConfig, { id: "x", kind: "ema-cross", params: { fast: 30, slow: 20 } });
    expect(bad.success).toBe(false);
    expect(bad.issues?.[0]?.message).toMatch(/fast must be shorter/);
    expect(v.safeParse(StrategyConfig, { id: "Bad Id", kind: "ema-cross" }).success).toBe(false);
    expect(v.safeParse(StrategyConfig, { id: "x", kind: "martingale" }).success).toBe(false);
    expect(v.safeParse(StrategyConfigList, [{ id: "a", kind: "sma-cross" }, { id: "a", kind: "ema-cross" }]).success).toBe(false);
  });
});

/** EUR_USD 2018 bid M1 bars (file clock New York) aggregated to closed candles of `tf`. */
async function realCandles(tf: "1h" | "15m"): Promise<Candle[]> {
  const zone = parseZone("America/New_York");
  const agg = new CandleAggregator();
  const out: Candle[] = [];
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
    for (const c of agg.onBar(bar)) if (c.tf === tf) out.push(c.candle);
  }
  return out;
}

function runAll(run: StrategyRun, candles: Candle[], tf: "1h" | "15m"): { run: StrategyRun; signals: (SignalDraft & { t: number })[] } {
  const signals: (SignalDraft & { t: number })[] = [];
  for (const candle of candles) {
    const out = stepRun(run, { tf, candle, indicators: null, closeTs: candle.t + 3_600_000 }, eur);
    run = out.run;
    if (out.signal) signals.push({ ...out.signal, t: candle.t });
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
    const { signals } = runAll(startRun(v.parse(StrategyConfig, { id: "ref", kind: "sma-cross" })), hours, "1h");
    expect(hours.length).toBeGreaterThan(6000);
    expect(expected.length).toBeGreaterThan(50);
    expect(signals.map((s) => [s.t, s.type])).toEqual(expected);
  });

  it("ema-cross and rsi-reversion signal with stops on the right side, deterministically", () => {
    for (const kind of ["ema-cross", "rsi-reversion"] as const) {
      const config = v.parse(StrategyConfig, { id: "s", kind, params: { timeframe: "1h" } });
      const a = runAll(startRun(config), hours, "1h");
      const b = runAll(startRun(config), hours, "1h");
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

  it("state saved as JSON at any point and restored gives the same signals", () => {
    fc.assert(
      fc.property(fc.constantFrom("ema-cross", "rsi-reversion", "sma-cross" as const), fc.integer({ min: 0, max: 6000 }), (kind, cut) => {
        const config = v.parse(StrategyConfig, { id: "s", kind, params: { timeframe: "1h" } });
        const whole = runAll(startRun(config), hours, "1h");
        const first = runAll(startRun(config), hours.slice(0, cut), "1h");
        const restored: StrategyRun = JSON.parse(JSON.stringify(first.run));
        const second = runAll(restored, hours.slice(cut), "1h");
        expect([...first.signals, ...second.signals]).toEqual(whole.signals);
        expect(JSON.stringify(second.run)).toBe(JSON.stringify(whole.run));
      }),
      { numRuns: 15 },
    );
  });
});
