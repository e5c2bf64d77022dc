import { describe, expect, it } from "vitest";
import { readConfig } from "../../src/config.ts";

describe("readConfig", () => {
  it("reads defaults and overrides", () => {
    const c = readConfig({ PAIRS: "EUR_USD, USD_JPY", FEED: "synthetic", CANDLE_RETENTION: "1m=5000,1D=100", MAX_SPREAD_PIPS: "EUR_USD=12" });
    expect(c.pairs).toEqual(["EUR_USD", "USD_JPY"]);
    expect(c.feed).toBe("synthetic");
    expect(c.tickCoalesceMs).toBe(10);
    expect(c.candleRetention["1m"]).toBe(5000);
    expect(c.candleRetention["1D"]).toBe(100);
    expect(c.maxSpreadPips).toEqual({ EUR_USD: 12 });
  });

  it("fails loudly on bad configuration", () => {
    expect(() => readConfig({ PAIRS: "EUR_USD,FOO_BAR" })).toThrow(/unknown pair FOO_BAR/);
    expect(() => readConfig({ FEED: "live" })).toThrow(/FEED/);
    expect(() => readConfig({ TICK_COALESCE_MS: "-1" })).toThrow(/TICK_COALESCE_MS/);
    expect(() => readConfig({ CANDLE_RETENTION: "2m=10" })).toThrow(/timeframe 2m/);
    expect(() => readConfig({ MAX_SPREAD_PIPS: "EUR_USD=abc" })).toThrow(/MAX_SPREAD_PIPS/);
  });

  it("keeps at least a day of 1m candles, since higher timeframes derive from them", () => {
    expect(readConfig({ CANDLE_RETENTION: "1m=10" }).candleRetention["1m"]).toBe(1440);
    // Bounded by the backup snapshot, which reads a pair's whole database into its isolate.
    expect(readConfig({ TICK_RETENTION_COUNT: "500000", CANDLE_RETENTION: "1m=50000" })).toMatchObject({ tickRetentionCount: 500_000, candleRetention: { "1m": 50_000 } });
    expect(() => readConfig({ TICK_RETENTION_COUNT: "500001" })).toThrow(/TICK_RETENTION_COUNT=500001 must be an integer in \[1000, 500000\]/);
    expect(() => readConfig({ CANDLE_RETENTION: "1h=50001" })).toThrow(/1h=50001 is over 50000 \(a backup reads a pair's whole database/);
  });

  it("reads time-based retention in days, 90/90/365 by default, each within 1..3650", () => {
    expect(readConfig({}).retention).toEqual({ tickDays: 90, logDays: 90, closedPositionDays: 365 });
    expect(readConfig({ TICK_RETENTION_DAYS: "7", LOG_RETENTION_DAYS: "400", CLOSED_POSITION_RETENTION_DAYS: "3650" }).retention).toEqual({
      tickDays: 7,
      logDays: 400,
      closedPositionDays: 3650,
    });
    expect(() => readConfig({ TICK_RETENTION_DAYS: "0" })).toThrow(/TICK_RETENTION_DAYS=0 must be an integer in \[1, 3650\]/);
    expect(() => readConfig({ LOG_RETENTION_DAYS: "1.5" })).toThrow(/LOG_RETENTION_DAYS/);
    expect(() => readConfig({ CLOSED_POSITION_RETENTION_DAYS: "3651" })).toThrow(/CLOSED_POSITION_RETENTION_DAYS/);
  });
});

describe("BACKUP_INTERVAL_SECONDS", () => {
  it("is 240 s by default and takes 0 (off) or 60..240", () => {
    expect(readConfig({}).backupIntervalMs).toBe(240_000);
    expect(readConfig({ BACKUP_INTERVAL_SECONDS: "0" }).backupIntervalMs).toBe(0);
    expect(readConfig({ BACKUP_INTERVAL_SECONDS: "60" }).backupIntervalMs).toBe(60_000);
    expect(readConfig({ BACKUP_INTERVAL_SECONDS: "240" }).backupIntervalMs).toBe(240_000);
  });

  it("refuses an interval that, with the 1-minute cron, could leave state older than the 5-minute recovery point", () => {
    // 241 s can put 301 s between two backups: the cron may find the interval passed only a minute later.
    for (const seconds of ["241", "300", "3600"]) {
      expect(() => readConfig({ BACKUP_INTERVAL_SECONDS: seconds })).toThrow(
        new RegExp(`BACKUP_INTERVAL_SECONDS=${seconds} must be 0 \\(off\\) or an integer in \\[60, 240\\].*recovery point objective is 300 s`),
      );
    }
    expect(() => readConfig({ BACKUP_INTERVAL_SECONDS: "59" })).toThrow(/BACKUP_INTERVAL_SECONDS=59 must be 0 \(off\) or an integer in \[60, 240\]/);
    for (const bad of ["90.5", "-60", "4m"]) expect(() => readConfig({ BACKUP_INTERVAL_SECONDS: bad })).toThrow(`BACKUP_INTERVAL_SECONDS=${bad} must be 0 (off) or an integer in [60, 240]`);
  });
});
