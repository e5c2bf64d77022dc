/**
 * The backtest engine's parts: the one-timeframe rollup equals the live
 * aggregator, financing at the 17:00 New York roll, metrics on a hand-made
 * curve, the thinned equity curve, and the engine's fills, exits, risk,
 * costs, warm-up and cross-currency conversion.
 */
import fc from "fast-check";
import * as v from "valibot";
import { describe, expect, it } from "vitest";
import { StrategyConfig } from "../../schemas/strategy.ts";
import { RiskLimits } from "../../schemas/trading.ts";
import { TIMEFRAMES, type Candle } from "../../src/domain/candle.ts";
import { CandleAggregator } from "../../src/domain/candle-aggregator.ts";
import { barPath } from "../../src/domain/bar-path.ts";
import { getInstrument } from "../../src/domain/instruments.ts";
import { financingQuoteMicros, rolloverNights } from "../../src/domain/trading/financing.ts";
import { runBacktest } from "../../src/replay/backtest.ts";
import type { BacktestOptions } from "../../src/replay/backtester.ts";
import { EquitySampler } from "../../src/replay/equity-sampler.ts";
import { MetricsTracker } from "../../src/replay/metrics.ts";
import { expandGrid } from "../../src/replay/sweep.ts";

const EUR_USD = getInstrument("EUR_USD");
const MIN = 60_000;
/** Monday 2030-01-07 00:00 UTC. */
const MONDAY = Date.UTC(2030, 0, 7);

function bar(t: number, o: number, h: number, l: number, c: number, spread = 0): Candle {
  return { t, bo: o, bh: h, bl: l, bc: c, ao: o + spread, ah: h + spread, al: l + spread, ac: c + spread, n: 1 };
}

/** One bar per minute on weekday hours, closes from `closeAt(i)`. */
function bars(count: number, closeAt: (i: number) => number, start = MONDAY): Candle[] {
  const out: Candle[] = [];
  let prev = closeAt(0);
  for (let i = 0; i < count; i++) {
    const c = closeAt(i);
    out.push(bar(start + i * MIN, prev, Math.max(prev, c), Math.min(prev, c), c));
    prev = c;
  }
  return out;
}

const smaConfig = (params: Record<string, unknown> = {}, extra: Record<string, unknown> = {}) =>
  v.parse(StrategyConfig, { id: "t", kind: "sma-cross", units: 100_000, params: { timeframe: "1m", fast: 2, slow: 4, price: "bid", ...params }, ...extra });

const options = (strategy: StrategyConfig, more: Partial<BacktestOptions> = {}): BacktestOptions => ({
  instrument: EUR_USD, strategy, fromMs: MONDAY, toMs: MONDAY + 30 * 86_400_000, spreadPips: 0, ...more,
});

describe("CandleAggregator of one timeframe (the backtester's)", () => {
  it("closes the same candles as the live aggregator of every timeframe, for every timeframe", () => {
    const gaps = fc.array(fc.integer({ min: 1, max: 400 }), { minLength: 1, maxLength: 300 });
    fc.assert(
      fc.property(gaps, fc.integer({ min: 0, max: 10_000 }), (steps, startMin) => {
        let t = Date.UTC(2030, 2, 5) + startMin * MIN;
        const input: Candle[] = steps.map((s, i) => bar((t += s * MIN), 1000 + i, 1010 + i, 990 + i, 1001 + i));
        const agg = new CandleAggregator();
        const want = new Map(TIMEFRAMES.map((tf) => [tf, [] as Candle[]]));
        for (const b of input) for (const c of agg.onBar(b)) want.get(c.tf)?.push(c.candle);
        for (const c of agg.closeDue(Number.POSITIVE_INFINITY)) want.get(c.tf)?.push(c.candle);
        for (const tf of TIMEFRAMES) {
          const one = new CandleAggregator(undefined, [tf]);
          const got: Candle[] = [];
          for (const b of input) {
            for (const ended of one.closeDue(b.t)) got.push(ended.candle);
            one.addBar(b);
            for (const done of one.closeDue(b.t + MIN)) got.push(done.candle);
          }
          for (const last of one.closeDue(Number.POSITIVE_INFINITY)) got.push(last.candle);
          expect(got).toEqual(want.get(tf));
        }
      }),
      { numRuns: 60 },
    );
  });
});

describe("financing", () => {
  it("charges one night Monday, Tuesday, Thursday, Friday, three on Wednesday, none at weekends", () => {
    // 17:00 New York in January = 22:00 UTC; 2030-01-07 is a Monday.
    const nights = [0, 1, 2, 3, 4, 5, 6].map((d) => rolloverNights(Date.UTC(2030, 0, 7 + d, 22)));
    expect(nights).toEqual([1, 1, 3, 1, 1, 0, 0]);
  });

  it("is notional x annual rate / 365 per night, exact and signed", () => {
    // 100,000 EUR at 1.10000 = 110,000 USD; 3.65% a year = 11 USD a night, paid.
    expect(financingQuoteMicros("buy", 100_000, 110_000, 1, { longPct: 3.65, shortPct: 0 }, EUR_USD)).toBe(-11_000_000);
    expect(financingQuoteMicros("sell", 100_000, 110_000, 3, { longPct: 3.65, shortPct: -3.65 }, EUR_USD)).toBe(33_000_000);
    expect(financingQuoteMicros("buy", 100_000, 110_000, 0, { longPct: 3.65, shortPct: 0 }, EUR_USD)).toBe(0);
  });
});

describe("MetricsTracker", () => {
  it("computes drawdown, its duration, returns and trade figures from a hand-made curve", () => {
    const m = new MetricsTracker(100_000_00);
    const day = 86_400_000;
    // FX days end at 22:00 UTC in January: one point per day at 12:00 UTC.
    const t0 = Date.UTC(2030, 0, 7, 12);
    const balances = [100_000_00, 110_000_00, 99_000_00, 104_500_00, 111_000_00];
    balances.forEach((b, i) => m.onEquity(t0 + i * day, b));
    m.onTrade({ pnlAccountCents: 10_000_00, financingAccountCents: 0 });
    m.onTrade({ pnlAccountCents: -11_000_00, financingAccountCents: 0 });
    m.onTrade({ pnlAccountCents: 12_000_00, financingAccountCents: -100 });
    const r = m.finish(111_000_00, 4 * day, 2 * day);
    expect(r.maxDrawdownAccountCents).toBe(11_000_00);
    expect(r.maxDrawdownPct).toBeCloseTo(10, 10);
    // Peak on day 1, recovered on day 4.
    expect(r.maxDrawdownDurationMs).toBe(3 * day);
    expect(r.totalReturnPct).toBeCloseTo(11, 10);
    const returns = [0, 0.1, -0.1, 0.055555555555555, 0.062200956937799];
    const mean = returns.reduce((a, b) => a + b) / returns.length;
    const sd = Math.sqrt(returns.reduce((a, b) => a + (b - mean) ** 2, 0) / (returns.length - 1));
    expect(r.sharpe).toBeCloseTo((mean / sd) * Math.sqrt(252), 6);
    expect(r.wins).toBe(2);
    expect(r.losses).toBe(1);
    expect(r.grossProfitAccountCents).toBe(2_199_900);
    expect(r.profitFactor).toBeCloseTo(2_199_900 / 11_000_00, 10);
    expect(r.avgLossAccountCents).toBe(-11_000_00);
    expect(r.exposurePct).toBe(50);
  });
});

describe("EquitySampler", () => {
  it("keeps at most max points, evenly spaced, always with the last", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 5_000 }), fc.integer({ min: 2, max: 64 }), (n, max) => {
        const s = new EquitySampler(max);
        for (let i = 0; i < n; i++) s.push({ t: i, accountCents: i });
        const pts = s.points();
        expect(pts.length).toBeLessThanOrEqual(max + 1);
        expect(pts[pts.length - 1]?.t).toBe(n - 1);
        expect(pts[0]?.t).toBe(0);
        const steps = new Set(pts.slice(0, -1).map((p, i) => (pts[i + 1] as { t: number }).t - p.t).slice(0, -1));
        expect(steps.size).toBeLessThanOrEqual(1);
      }),
    );
  });
});

describe("Backtester", () => {
  // Falls, rises, falls: SMA(2) crosses SMA(4) up then down.
  const closes = [1100, 1090, 1080, 1070, 1060, 1080, 1100, 1120, 1140, 1120, 1100, 1080, 1060, 1040];
  const series = bars(closes.length, (i) => 110_000 + ((closes[i] as number) - 1100) * 10);

  it("fills a decision at the next bar's open: buys at the ask, sells at the bid, and closes at the end", () => {
    const r = runBacktest(series, options(smaConfig(), { spreadPips: 1 }));
    expect(r.trades.map((t) => [t.side, t.entryT, t.exitReason])).toEqual([
      ["buy", MONDAY + 7 * MIN, "signal"],
      ["sell", MONDAY + 11 * MIN, "end"],
    ]);
    const first = r.trades[0]!;
    // SMA(2) crosses above SMA(4) at the close of bar 6 and below at bar 10's:
    // bought at bar 7's open bid + 1 pip (10 points), sold at bar 11's open bid.
    expect(first.entryPrice).toBe((series[7]!.bo + 10) / 1e5);
    expect(first.exitPrice).toBe(series[11]!.bo / 1e5);
    expect(first.pnlQuoteMicros).toBe(100_000 * (series[11]!.bo - series[7]!.bo - 10) * 10);
    expect(r.pnlAccountCents).toBe(r.trades.reduce((s, t) => s + t.pnlAccountCents, 0));
  });

  it("uses the data's ask when spreadPips is null, and charges slippage and commission", () => {
    const wide = series.map((b) => ({ ...b, ao: b.bo + 25, ah: b.bh + 25, al: b.bl + 25, ac: b.bc + 25 }));
    const base = runBacktest(wide, options(smaConfig(), { spreadPips: null }));
    expect(base.trades[0]!.entryPrice).toBe((wide[7]!.bo + 25) / 1e5);
    const costly = runBacktest(wide, options(smaConfig(), { spreadPips: null, fillModel: { slippagePips: 0.5, commissionPerMillion: 50 } }));
    expect(costly.trades[0]!.entryPrice).toBe((wide[7]!.bo + 25 + 5) / 1e5);
    expect(costly.pnlAccountCents).toBeLessThan(base.pnlAccountCents);
  });

  it("takes a trailing stop on the bar path and says so", () => {
    const withStop = smaConfig({}, { protection: { trailingStopPips: 5 } });
    const r = runBacktest(series, options(withStop));
    const exit = r.trades.find((t) => t.exitReason === "trailing_stop");
    expect(exit).toBeDefined();
    // The stop fills on one of the bar's path quotes at or after its open.
    expect(exit!.exitT % MIN).toBeLessThan(MIN);
  });

  it("refuses orders through the per-pair risk limits and counts them", () => {
    const limits = v.parse(RiskLimits, { maxPositionUnits: 50_000, stopLossRequired: "never", weekendGuard: false });
    const r = runBacktest(series, options(smaConfig(), { risk: limits }));
    expect(r.tradeCount).toBe(0);
    expect(r.rejections).toEqual({ max_position_size: 2 });
  });

  it("charges financing per night held and converts a cross's P&L with the conversion rate", () => {
    // Hold a long over three weekday nights: an hourly series across Monday..Thursday.
    const slow = bars(4 * 24 * 60, (i) => 110_000 + (i < 600 ? -i : i - 1200) * 2);
    const r = runBacktest(slow, options(smaConfig({ timeframe: "1h", fast: 2, slow: 4 }), { financing: { longPct: 3.65, shortPct: 3.65 } }));
    expect(r.financingAccountCents).toBeLessThan(0);
    expect(r.trades.reduce((s, t) => s + t.financingAccountCents, 0)).toBe(r.financingAccountCents);

    const EUR_GBP = getInstrument("EUR_GBP");
    const cross = runBacktest(series, { ...options(smaConfig()), instrument: EUR_GBP, conversionRates: () => [{ instrument: getInstrument("GBP_USD"), points: 125_000 }] });
    const first = cross.trades[0]!;
    // GBP P&L x 1.25 USD per GBP, in cents.
    expect(first.pnlAccountCents).toBe(Math.round((first.pnlQuoteMicros * 1.25) / 10_000));
    expect(() => runBacktest(series, { ...options(smaConfig()), instrument: EUR_GBP })).toThrow(/conversion rate|no USD rate|refused/);
  });

  it("only warms up before tradeFromMs, and refuses bars out of order", () => {
    const warm = runBacktest(series, options(smaConfig(), { tradeFromMs: MONDAY + 8 * MIN }));
    expect(warm.trades.every((t) => t.entryT >= MONDAY + 8 * MIN)).toBe(true);
    expect(() => runBacktest([series[1]!, series[0]!], options(smaConfig()))).toThrow(RangeError);
  });

  it("is deterministic: the same bars give byte-identical results", () => {
    const a = JSON.stringify(runBacktest(series, options(smaConfig(), { financing: { longPct: 1, shortPct: 1 } })));
    const b = JSON.stringify(runBacktest(series, options(smaConfig(), { financing: { longPct: 1, shortPct: 1 } })));
    expect(b).toBe(a);
  });
});

describe("barPath and sweeps", () => {
  it("walks open, low, high, close for an up bar and open, high, low, close for a down bar", () => {
    expect(barPath(bar(0, 10, 15, 5, 12), 1).map((q) => q.bid)).toEqual([10, 5, 15, 12]);
    expect(barPath(bar(0, 10, 15, 5, 8), null).map((q) => [q.bid, q.ask])).toEqual([[10, 10], [15, 15], [5, 5], [8, 8]]);
  });

  it("expands a grid in the order given and bounds its size", () => {
    expect(expandGrid({ fast: [1, 2], slow: [5, 6, 7] })).toEqual([
      { fast: 1, slow: 5 }, { fast: 1, slow: 6 }, { fast: 1, slow: 7 }, { fast: 2, slow: 5 }, { fast: 2, slow: 6 }, { fast: 2, slow: 7 },
    ]);
    expect(() => expandGrid({ a: Array.from({ length: 30 }, (_, i) => i), b: Array.from({ length: 30 }, (_, i) => i) })).toThrow(RangeError);
  });
});
