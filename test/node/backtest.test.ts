/**
 * The issue-5 reference run (sma-cross 20/50 on 1h candles, 100,000 units,
 * 1.0 pip spread, fills at the next open) on a full year of real histdata M1
 * bars, checked against an independent plain re-computation in BigInt.
 */
import { existsSync } from "node:fs";
import path from "node:path";
import * as v from "valibot";
import { describe, expect, it } from "vitest";
import { StrategyConfig } from "../../schemas/strategy.ts";
import type { Candle } from "../../src/domain/candle.ts";
import { CandleAggregator } from "../../src/domain/candle-aggregator.ts";
import { getInstrument, type Instrument } from "../../src/domain/instruments.ts";
import { toPoints } from "../../src/domain/price.ts";
import { runBacktest } from "../../src/replay/backtest.ts";
import { isHeaderLine, parseHistdataM1 } from "../../src/ingest/history-formats.ts";
import { readLines } from "../../src/ingest/read-lines.ts";
import { parseZone } from "../../src/ingest/time-zone.ts";

const DATA = path.resolve(import.meta.dirname, "../../../shared/data");
const M1 = path.join(DATA, "m1_histdata");
const FILES = { EUR_USD: "DAT_ASCII_EURUSD_M1_2018.csv.gz", USD_JPY: "DAT_ASCII_USDJPY_M1_2018.csv.gz" } as const;
const present = Object.values(FILES).every((f) => existsSync(path.join(M1, f)));
if (!present) console.warn(`backtest: skipped, no histdata M1 files at ${M1}`);

const EST = parseZone("EST");
const UNITS = 100_000;
const SPREAD_PIPS = 1.0;
/** The published reference figures (docs/data-and-backtests.md): any change to the trading code must keep them exact. */
const GOLDEN = { EUR_USD: { trades: 136, accountCents: 197_700 }, USD_JPY: { trades: 144, accountCents: 221_968 } } as const;
const config = v.parse(StrategyConfig, { id: "sma-ref", kind: "sma-cross", units: UNITS, params: { timeframe: "1h", fast: 20, slow: 50, price: "bid" } });

/** M1 bid bars (EST, ask = bid), and the 1h candles the live aggregator makes of them (hour buckets in UTC). */
async function readBars(file: string, instrument: Instrument): Promise<{ bars: Candle[]; hours: Candle[] }> {
  const agg = new CandleAggregator();
  const out: Candle[] = [];
  const bars: Candle[] = [];
  let lineNo = 0;
  for await (const line of readLines(file)) {
    lineNo++;
    if (line.trim() === "" || isHeaderLine(line)) continue;
    const r = parseHistdataM1(line, lineNo, EST);
    if (!r.ok) throw new Error(`${file}:${r.error.line}: ${r.error.reason}`);
    const p = (x: number): number => toPoints(x, instrument);
    const [o, h, l, c] = [p(r.value.open), p(r.value.high), p(r.value.low), p(r.value.close)];
    const bar: Candle = { t: r.value.ts, bo: o, bh: h, bl: l, bc: c, ao: o, ah: h, al: l, ac: c, n: 1 };
    bars.push(bar);
    for (const closed of agg.onBar(bar)) if (closed.tf === "1h") out.push(closed.candle);
  }
  for (const closed of agg.closeDue(Number.POSITIVE_INFINITY)) if (closed.tf === "1h") out.push(closed.candle);
  return { bars, hours: out };
}

function roundHalfAway(n: bigint, d: bigint): bigint {
  const q = n / d;
  const r = n % d;
  const neg = n < 0n !== d < 0n;
  return 2n * (r < 0n ? -r : r) >= (d < 0n ? -d : d) ? q + (neg ? -1n : 1n) : q;
}

/** Plain re-computation of the reference rule, independent of the domain code. */
function reference(candles: Candle[], instrument: Instrument): { trades: number; micros: bigint; cents: bigint } {
  const spread = 10; // 1.0 pip = 10 points on both pairs
  const microsPerPoint = 10n ** BigInt(6 - instrument.displayPrecision);
  const closes = candles.map((c) => BigInt(c.bc));
  let prevDiff: bigint | null = null;
  let want = 0; // +1 long, -1 short, decided at a close
  let pos = 0; // +1 long, -1 short, held
  let entry = 0n;
  let trades = 0;
  let micros = 0n;
  let cents = 0n;
  const close = (exitPoints: bigint): void => {
    const m = BigInt(pos) * BigInt(UNITS) * (exitPoints - entry) * microsPerPoint;
    micros += m;
    cents += instrument.quote === "USD" ? roundHalfAway(m, 10_000n) : roundHalfAway(m * 10n ** BigInt(instrument.displayPrecision), exitPoints * 10_000n);
    trades++;
  };
  for (let i = 0; i < candles.length; i++) {
    const c = candles[i] as Candle;
    if (want !== 0 && want !== pos) {
      const price = BigInt(want > 0 ? c.bo + spread : c.bo);
      if (pos !== 0) close(price);
      pos = want;
      entry = price;
    }
    want = pos; // a decision lasts for one fill
    if (i + 1 >= 50) {
      let sf = 0n;
      let ss = 0n;
      for (let k = i - 19; k <= i; k++) sf += closes[k] as bigint;
      for (let k = i - 49; k <= i; k++) ss += closes[k] as bigint;
      const diff = sf * 50n - ss * 20n; // sign of SMA20 - SMA50
      if (prevDiff !== null) {
        if (diff > 0n && prevDiff <= 0n) want = 1;
        if (diff < 0n && prevDiff >= 0n) want = -1;
      }
      prevDiff = diff;
    }
  }
  const last = candles[candles.length - 1];
  if (pos !== 0 && last) close(BigInt(pos > 0 ? last.bc : last.bc + spread));
  return { trades, micros, cents };
}

describe.skipIf(!present)("backtest: sma-cross 20/50 reference run on histdata 2018", () => {
  for (const pair of ["EUR_USD", "USD_JPY"] as const) {
    it(`${pair}: deterministic, exact, matches an independent re-computation`, async () => {
      const instrument = getInstrument(pair);
      const { bars, hours: candles } = await readBars(path.join(M1, FILES[pair]), instrument);
      const options = { instrument, strategy: config, fromMs: Date.UTC(2018, 0, 1), toMs: Date.UTC(2019, 0, 1), spreadPips: SPREAD_PIPS };
      const a = runBacktest(bars, options);
      const b = runBacktest(bars, options);
      expect(b).toEqual(a);
      expect(JSON.stringify(b)).toBe(JSON.stringify(a));

      expect(a.tradeCount).toBe(a.trades.length);
      expect(a.tradeCount).toBeGreaterThan(50);
      expect(a.trades.every((t) => t.units === UNITS)).toBe(true);
      const sumMicros = a.trades.reduce((s, t) => s + BigInt(t.pnlQuoteMicros), 0n);
      const sumCents = a.trades.reduce((s, t) => s + BigInt(t.pnlAccountCents), 0n);
      expect(sumMicros).toBe(BigInt(a.pnlQuoteMicros));
      expect(sumCents).toBe(BigInt(a.pnlAccountCents));
      expect(a.pnlQuote).toBe(a.pnlQuoteMicros / 1e6);
      expect(a.bars).toBe(bars.length);
      expect(a.candles).toBe(candles.length);
      expect(a.equity.length).toBe(candles.length);
      expect(a.equity[a.equity.length - 1]?.accountCents).toBe(a.pnlAccountCents);

      const ref = reference(candles, instrument);
      expect(a.tradeCount).toBe(ref.trades);
      expect(BigInt(a.pnlQuoteMicros)).toBe(ref.micros);
      expect(BigInt(a.pnlAccountCents)).toBe(ref.cents);
      expect({ trades: a.tradeCount, accountCents: a.pnlAccountCents }).toEqual(GOLDEN[pair]);

      const m = a.metrics;
      console.log(
        `backtest ${pair} 2018 sma-cross 20/50 1h, ${UNITS} units, spread ${SPREAD_PIPS} pip: ${candles.length} candles, ` +
          `${a.tradeCount} trades, pnl ${a.pnlQuote} ${instrument.quote}, ${a.pnlAccount} USD; ` +
          `max drawdown ${m.maxDrawdownAccountCents / 100} USD, win rate ${m.winRate.toFixed(4)}, profit factor ${m.profitFactor?.toFixed(4)}`,
      );
    });
  }
});
