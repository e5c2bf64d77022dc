/**
 * Backtests on ticks: the OANDA EUR/USD quotes of 2014-05 imported into the
 * lake, replayed tick by tick, give the same trades and P&L as the 1-minute
 * bid/ask candles the importer built from those ticks (decisions at a candle
 * close fill at the next quote either way: the next tick is the next bar's
 * open). Run through the CLI's own code path.
 */
import { existsSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { parseArgs, runCli } from "../../scripts/backtest.ts";
import { importFile } from "../../scripts/import.ts";
import { MemoryBucket } from "../support/memory-bucket.ts";

const FILE = path.resolve(import.meta.dirname, "../../../shared/data/ticks/lean_oanda_EURUSD_ticks_20140501-20140515.csv.gz");
const present = existsSync(FILE);
if (!present) console.warn(`backtest-ticks: skipped, no tick file at ${FILE}`);

describe.skipIf(!present)("tick backtests", () => {
  it("give the same trades as the candles built from the same ticks", async () => {
    const bucket = new MemoryBucket();
    await importFile({ file: FILE, pair: "EUR_USD", bucket, log: () => {} });
    const args = ["--pair", "EUR_USD", "--from", "2014-05-01", "--to", "2014-05-16", "--param", "timeframe=15m", "--param", "fast=8", "--param", "slow=21", "--no-report"];
    const ticks = (await runCli(parseArgs([...args, "--ticks"]), bucket, () => {})).result;
    const candles = (await runCli(parseArgs([...args, "--spread-pips", "data"]), bucket, () => {})).result;
    expect(ticks.settings.spreadPips).toBeNull();
    expect(ticks.bars).toBeGreaterThan(500_000);
    expect(candles.bars).toBe(15_366);
    expect(ticks.tradeCount).toBeGreaterThan(20);
    const view = (r: typeof ticks) => r.trades.map((t) => [t.side, t.entryPrice, t.exitPrice, t.pnlAccountCents]);
    expect(view(ticks)).toEqual(view(candles));
    expect(ticks.pnlAccountCents).toBe(candles.pnlAccountCents);
    // Tick fills are stamped at the tick, bar fills at the minute it opens.
    for (const [i, t] of ticks.trades.entries()) {
      const c = candles.trades[i]!;
      expect(t.entryT - c.entryT).toBeGreaterThanOrEqual(0);
      expect(t.entryT - c.entryT).toBeLessThan(60_000);
    }
    console.log(`tick backtest 2014-05-01..16: ${ticks.bars} ticks = ${candles.bars} candles, ${ticks.tradeCount} trades, ${ticks.pnlAccount} USD either way`);
  }, 60_000);
});
