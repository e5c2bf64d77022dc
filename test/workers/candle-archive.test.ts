/**
 * The pair's 1m candles go to the data lake before the count cap may delete
 * them (actors/candle-archive.ts): monthly live partitions the lake reader
 * returns bar for bar, idempotent, never deleting a candle whose archive
 * failed or is absent, and merged with an imported year by the stated
 * precedence (the imported bar wins at an equal minute).
 */
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { ArchiveBucket } from "../../actors/candle-archive.ts";
import type { Pair } from "../../actors/pair.ts";
import { RETENTION_INTERVAL_MS } from "../../actors/retention.ts";
import { CANDLE_RETENTION_DEFAULT } from "../../src/config.ts";
import type { Candle } from "../../src/domain/candle.ts";
import { candlesToArrowIPC } from "../../src/ingest/candle-arrow.ts";
import { candleKey, candleManifestKey, liveCandleKey } from "../../src/ingest/lake-manifest.ts";
import { emptyBar, lakeBatches, loadCandleManifest, readRow } from "../../src/replay/lake-reader.ts";
import { setClock, stub } from "./pair-kit.ts";

const MINUTE = 60_000;
/** Bars from 2030-01-31 00:00 UTC: the first 1,440 in January, the rest in February. */
const START = Date.UTC(2030, 0, 31);
/** The clock of the runs: the data is weeks old, well inside every time-based limit. */
const NOW = Date.UTC(2030, 3, 3, 10);
const CAP = CANDLE_RETENTION_DEFAULT["1m"]; // wrangler.jsonc's 1m count cap (20,160)

/** `count` 1m candles from `fromT`, one a minute, with exact integer prices that differ bar to bar. */
async function seedCandles(pair: string, fromT: number, count: number): Promise<void> {
  await runInDurableObject(stub(pair), (_i: Pair, state) => {
    state.storage.sql.exec(
      `WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ? - 1)
       INSERT INTO candles (tf, t, bo, bh, bl, bc, ao, ah, al, ac, n)
       SELECT '1m', ? + i * 60000, 110000 + (i * 7) % 101, 110010 + (i * 7) % 101, 109990 + (i * 7) % 101, 110000 + (i * 13) % 97,
              110012 + (i * 7) % 101, 110022 + (i * 7) % 101, 110002 + (i * 7) % 101, 110012 + (i * 13) % 97, 1 + i % 50
       FROM n`,
      count, fromT,
    );
  });
}

async function heldCandles(pair: string): Promise<Candle[]> {
  return runInDurableObject(stub(pair), (_i: Pair, state) =>
    state.storage.sql.exec<Candle>("SELECT t, bo, bh, bl, bc, ao, ah, al, ac, n FROM candles WHERE tf = '1m' ORDER BY t").toArray().map((c) => ({ ...c })),
  );
}

/** Every bar the lake reader returns for the pair in [fromMs, toMs). */
async function lakeCandles(pair: string, fromMs = 0, toMs = Date.UTC(2100, 0)): Promise<Candle[]> {
  const manifest = await loadCandleManifest(env.DATA, pair);
  const out: Candle[] = [];
  for await (const { cols, start, end } of lakeBatches(env.DATA, manifest, fromMs, toMs)) {
    for (let i = start; i < end; i++) out.push({ ...readRow(cols, i, emptyBar()) });
  }
  return out;
}

async function useLake(pair: string, lake: "data" | "none" | "manifest_put_fails"): Promise<void> {
  await runInDurableObject(stub(pair), (instance: Pair) => {
    const failing: ArchiveBucket = {
      get: (key: string) => env.DATA.get(key),
      put: ((key: string, value: ArrayBuffer | string, options?: R2PutOptions) =>
        key.endsWith("manifest.json") ? Promise.reject(new Error("R2 unavailable (test)")) : env.DATA.put(key, value, options)) as ArchiveBucket["put"],
    };
    instance.hooks.lake = lake === "data" ? env.DATA : lake === "none" ? undefined : failing;
  });
}

describe("1m candle archive to the data lake", () => {
  it("writes monthly live partitions the lake reader returns bar for bar; a second run writes nothing", async () => {
    const pair = "EUR_GBP";
    await seedCandles(pair, START, 3_000);
    await setClock(pair, NOW);
    const report = await stub(pair).wake();
    expect(report?.archive).toEqual({ rows: 3_000, months: ["2030-01", "2030-02"], throughT: START + 2_999 * MINUTE, complete: true });

    const manifest = await loadCandleManifest(env.DATA, pair);
    expect(manifest.partitions).toEqual([]);
    expect(manifest.live).toEqual([
      { key: liveCandleKey(pair, "2030-01"), month: "2030-01", rows: 1_440, fromMs: START, toMs: START + 1_439 * MINUTE },
      { key: liveCandleKey(pair, "2030-02"), month: "2030-02", rows: 1_560, fromMs: Date.UTC(2030, 1, 1), toMs: START + 2_999 * MINUTE },
    ]);
    const held = await heldCandles(pair);
    expect(held).toHaveLength(3_000); // under the count cap: all still in SQLite too
    expect(await lakeCandles(pair)).toEqual(held);
    expect(await lakeCandles(pair, START + 1_430 * MINUTE, START + 1_450 * MINUTE)).toEqual(held.slice(1_430, 1_450));

    const etag = (await env.DATA.head(candleManifestKey(pair)))?.etag;
    await setClock(pair, NOW + RETENTION_INTERVAL_MS);
    expect((await stub(pair).wake())?.archive).toEqual({ rows: 0, months: [], throughT: START + 2_999 * MINUTE, complete: true });
    expect((await env.DATA.head(candleManifestKey(pair)))?.etag).toBe(etag);
  });

  it("the 1m count cap deletes only archived candles: a failed or absent archive deletes none, a retry duplicates none", async () => {
    const pair = "EUR_CHF";
    const total = CAP + 500;
    await seedCandles(pair, START, total);
    const seeded = await heldCandles(pair);

    // The month objects are written, the manifest write fails: as a crash between the two.
    await useLake(pair, "manifest_put_fails");
    await setClock(pair, NOW);
    const failed = await stub(pair).wake();
    expect(failed?.archive).toMatchObject({ error: expect.stringContaining("R2 unavailable") });
    expect(await heldCandles(pair)).toHaveLength(total);
    expect(await env.DATA.head(candleManifestKey(pair))).toBeNull();

    // No archive configured at all: the cap still deletes nothing.
    await useLake(pair, "none");
    await setClock(pair, NOW + RETENTION_INTERVAL_MS);
    expect((await stub(pair).wake())?.archive).toEqual({ skipped: "no_bucket" });
    expect(await heldCandles(pair)).toHaveLength(total);

    // R2 back: everything is archived once (the month objects written before are merged, not appended), then the cap applies.
    await useLake(pair, "data");
    await setClock(pair, NOW + 2 * RETENTION_INTERVAL_MS);
    expect((await stub(pair).wake())?.archive).toMatchObject({ rows: total, complete: true });
    const held = await heldCandles(pair);
    expect(held).toEqual(seeded.slice(500));
    const manifest = await loadCandleManifest(env.DATA, pair);
    expect(manifest.live?.reduce((n, p) => n + p.rows, 0)).toBe(total);
    expect(await lakeCandles(pair)).toEqual(seeded);
  });

  it("an imported year wins at equal minutes, live bars fill the rest, and archiving again duplicates nothing", async () => {
    const pair = "EUR_AUD";
    // The live pair's first 100 minutes...
    await seedCandles(pair, START, 100);
    await setClock(pair, NOW);
    await stub(pair).wake();
    const live = await heldCandles(pair);

    // ...then an import covering minutes 50..149 of the same span with other prices (bid-only bars, as histdata).
    const imported: Candle[] = Array.from({ length: 100 }, (_, k) => {
      const t = START + (50 + k) * MINUTE;
      const p = 120_000 + k;
      return { t, bo: p, bh: p + 3, bl: p - 3, bc: p + 1, ao: p, ah: p + 3, al: p - 3, ac: p + 1, n: 0 };
    });
    await env.DATA.put(candleKey(pair, 2030), candlesToArrowIPC(imported));
    const manifest = await loadCandleManifest(env.DATA, pair);
    const withYear = {
      ...manifest,
      partitions: [{ key: candleKey(pair, 2030), year: 2030, rows: 100, fromMs: imported[0]!.t, toMs: imported[99]!.t, sides: "bid" as const }],
    };
    await env.DATA.put(candleManifestKey(pair), JSON.stringify(withYear));

    // Live minutes 0..49, imported 50..149: each minute once, in order.
    const expected = [...live.slice(0, 50), ...imported];
    expect(await lakeCandles(pair)).toEqual(expected);

    // The actor goes on: 100 more minutes (100..199) archived after the import.
    await seedCandles(pair, START + 100 * MINUTE, 100);
    const more = (await heldCandles(pair)).slice(100);
    await setClock(pair, NOW + RETENTION_INTERVAL_MS);
    expect((await stub(pair).wake())?.archive).toMatchObject({ rows: 100, months: ["2030-01"] });
    const after = await lakeCandles(pair);
    expect(after).toEqual([...expected, ...more.slice(50)]); // minutes 100..149 stay imported, 150..199 are live
    expect(new Set(after.map((c) => c.t)).size).toBe(after.length);
    expect((await loadCandleManifest(env.DATA, pair)).partitions).toEqual(withYear.partitions);
  });
});
