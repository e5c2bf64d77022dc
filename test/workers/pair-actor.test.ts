import { abortAllDurableObjects, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { migrate } from "../../actors/migrate.ts";
import type { Pair } from "../../actors/pair.ts";
import { PAIR_MIGRATIONS } from "../../migrations/pair/index.ts";

const MINUTE = 60_000;
/**
 * A Wednesday 10:00 UTC, market open, in the future: alarms the actor sets on
 * the test clock never fire by themselves, only through runDurableObjectAlarm.
 */
const T0 = Date.UTC(2030, 0, 2, 10, 0, 0);

function stub(pair: string): DurableObjectStub<Pair> {
  return env.Pair.getByName(pair);
}

async function setClock(s: DurableObjectStub<Pair>, nowMs: number): Promise<void> {
  await runInDurableObject(s, (instance: Pair) => {
    instance.hooks.clock = () => nowMs;
  });
}

describe("pair actor storage", () => {
  it("applies numbered migrations and records the schema version", async () => {
    const s = stub("EUR_USD");
    const version = await runInDurableObject(s, (_i: Pair, state) =>
      state.storage.sql.exec<{ v: number }>("SELECT MAX(version) AS v FROM schema_version").one().v,
    );
    expect(version).toBe(PAIR_MIGRATIONS.length);
  });

  it("upgrades an old schema with rows in it without losing them", async () => {
    const s = stub("GBP_USD");
    const result = await runInDurableObject(s, (_i: Pair, state) => {
      const sql = state.storage.sql;
      // Rebuild the database as version 1 left it, with data.
      const tables = sql
        .exec<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_cf_%'")
        .toArray();
      for (const { name } of tables) sql.exec(`DROP TABLE IF EXISTS "${name}"`);
      expect(migrate(state.storage, PAIR_MIGRATIONS.slice(0, 1))).toBe(1);
      sql.exec("INSERT INTO ticks (ts, bid, ask) VALUES (?, ?, ?)", T0, 126_000, 126_010);
      sql.exec("INSERT INTO candles (tf, t, bo, bh, bl, bc, ao, ah, al, ac, n) VALUES ('1m', ?, 1, 2, 1, 2, 3, 4, 3, 4, 7)", T0);
      const tablesBefore = sql.exec("SELECT name FROM sqlite_master WHERE name = 'indicator_values'").toArray().length;
      const version = migrate(state.storage, PAIR_MIGRATIONS);
      return {
        tablesBefore,
        version,
        ticks: sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM ticks").one().n,
        candle: sql.exec<{ n: number }>("SELECT n FROM candles WHERE tf = '1m' AND t = ?", T0).one().n,
        indicatorTable: sql.exec("SELECT name FROM sqlite_master WHERE name = 'indicator_values'").toArray().length,
      };
    });
    expect(result).toEqual({ tablesBefore: 0, version: PAIR_MIGRATIONS.length, ticks: 1, candle: 7, indicatorTable: 1 });
  });

  it("rolls back a failing migration entirely", async () => {
    const s = stub("AUD_USD");
    const result = await runInDurableObject(s, (_i: Pair, state) => {
      const next = PAIR_MIGRATIONS.length + 1;
      const broken = [...PAIR_MIGRATIONS, { version: next, name: "broken", sql: "CREATE TABLE half_done (x INTEGER); INSERT INTO nope VALUES (1);" }];
      let error = "";
      try {
        migrate(state.storage, broken);
      } catch (e) {
        error = String(e);
      }
      const sql = state.storage.sql;
      return {
        error,
        version: sql.exec<{ v: number }>("SELECT MAX(version) AS v FROM schema_version").one().v,
        halfDone: sql.exec("SELECT name FROM sqlite_master WHERE name = 'half_done'").toArray().length,
      };
    });
    expect(result.error).toMatch(/nope/);
    expect(result.version).toBe(PAIR_MIGRATIONS.length);
    expect(result.halfDone).toBe(0);
  });

  it("keeps ticks, candles and the candle in progress across an actor restart", async () => {
    const s = stub("USD_CAD");
    await setClock(s, T0 + 3 * MINUTE);
    const res = await s.ingest([
      { ts: T0 + 1_000, bid: 1.37001, ask: 1.37011 },
      { ts: T0 + 30_000, bid: 1.37021, ask: 1.37031 },
      { ts: T0 + MINUTE + 5_000, bid: 1.36991, ask: 1.37003 },
    ]);
    expect(res).toEqual({ accepted: 3, rejected: [] });
    const before = await s.candles({ tf: "1m", limit: 10 });

    await abortAllDurableObjects();

    const after = stub("USD_CAD");
    expect(await after.candles({ tf: "1m", limit: 10 })).toEqual(before);
    expect(before.candles).toHaveLength(2);
    expect(before.candles[0]).toMatchObject({ t: T0, complete: true, n: 2, bid: { o: 1.37001, h: 1.37021, l: 1.37001, c: 1.37021 } });
    expect(before.candles[1]).toMatchObject({ t: T0 + MINUTE, complete: false, n: 1 });
    const status = await after.status();
    expect(status.ticksStored).toBe(3);
    expect(status.lastTick).toEqual({ ts: T0 + MINUTE + 5_000, bid: 1.36991, ask: 1.37003 });
    // Ordering rules survive the restart too.
    await setClock(after, T0 + 3 * MINUTE);
    const late = await after.ingest([{ ts: T0 + 2_000, bid: 1.37, ask: 1.3701 }]);
    expect(late.rejected[0]?.reason.type).toBe("out_of_order");
  });
});

describe("pair actor ticks", () => {
  it("rejects each bad tick with a typed reason and keeps the good ones", async () => {
    const s = stub("EUR_JPY");
    const now = T0 + 10 * MINUTE;
    await setClock(s, now);
    const res = await s.ingest([
      { ts: now - 5_000, bid: 164.101, ask: 164.112 }, // ok
      { ts: now - 4_000, bid: 0, ask: 164.11 }, // non-positive
      { ts: now - 4_000, bid: 164.2, ask: 164.1 }, // crossed
      { ts: now - 4_000, bid: 164.0, ask: 166.0 }, // 200 pips > cap
      { ts: now + 6_000, bid: 164.1, ask: 164.11 }, // future
      { ts: now - 6_000, bid: 164.1, ask: 164.11 }, // before last accepted
      { ts: now - 5_000, bid: 164.102, ask: 164.113 }, // equal timestamp: ok
      { ts: now + 4_000, bid: 164.103, ask: 164.114 }, // within 5 s future: ok
    ]);
    expect(res.accepted).toBe(3);
    expect(res.rejected.map((r) => [r.index, r.reason.type])).toEqual([
      [1, "invalid_price"],
      [2, "crossed"],
      [3, "spread_too_wide"],
      [4, "future_timestamp"],
      [5, "out_of_order"],
    ]);
    expect((await s.status()).ticksStored).toBe(3);
  });

  it("accepts old ticks in order (back-fill) and builds candles from them", async () => {
    const s = stub("USD_CHF");
    await setClock(s, T0);
    const old = Date.UTC(2019, 0, 2, 10, 0, 0);
    const res = await s.ingest([
      { ts: old, bid: 0.98, ask: 0.9801 },
      { ts: old + MINUTE, bid: 0.981, ask: 0.9811 },
      { ts: old + 5 * MINUTE, bid: 0.982, ask: 0.9821 },
    ]);
    expect(res.accepted).toBe(3);
    const c1 = await s.candles({ tf: "1m", limit: 10 });
    expect(c1.candles.map((c) => c.t)).toEqual([old, old + MINUTE, old + 5 * MINUTE]);
    const c5 = await s.candles({ tf: "5m", limit: 10 });
    expect(c5.candles.map((c) => [c.t, c.n, c.complete])).toEqual([
      [old, 2, true],
      [old + 5 * MINUTE, 1, false],
    ]);
  });
});

describe("pair actor alarm", () => {
  it("closes the candle on time when no further tick arrives", async () => {
    const s = stub("GBP_JPY");
    await setClock(s, T0 + 20_000);
    await s.ingest([{ ts: T0 + 20_000, bid: 192.001, ask: 192.015 }]);
    expect((await s.candles({ tf: "1m", limit: 5 })).candles.map((c) => c.complete)).toEqual([false]);

    // Before the minute ends (plus the grace): the alarm leaves it open.
    await setClock(s, T0 + 59_000);
    await runDurableObjectAlarm(s);
    expect((await s.candles({ tf: "1m", limit: 5 })).candles.map((c) => c.complete)).toEqual([false]);

    await setClock(s, T0 + MINUTE + 500);
    const scheduled = await runInDurableObject(s, (_i: Pair, state) => state.storage.getAlarm());
    expect(scheduled).not.toBeNull();
    expect(await runDurableObjectAlarm(s)).toBe(true);
    const after = await s.candles({ tf: "1m", limit: 5 });
    expect(after.candles).toHaveLength(1);
    expect(after.candles[0]).toMatchObject({ t: T0, complete: true, n: 1 });
    // A tick for the closed minute is now too late.
    const late = await s.ingest([{ ts: T0 + 59_999, bid: 192.0, ask: 192.01 }]);
    expect(late.rejected[0]?.reason.type).toBe("candle_closed");
  });
});
