/**
 * Live months in the candle manifest (written by the pair actors' archive,
 * actors/candle-archive.ts) meet the importer and the lake reader: the schema
 * accepts them compatibly, an import keeps them (and lists back one it lost
 * in a race), and reading gives every minute once, the imported bar where
 * both hold it.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { importFile } from "../../scripts/import.ts";
import { MemoryBucket } from "../support/memory-bucket.ts";
import type { Candle } from "../../src/domain/candle.ts";
import { candlesToArrowIPC } from "../../src/ingest/candle-arrow.ts";
import { candleManifestKey, liveCandleKey, ManifestError, readCandleManifest } from "../../src/ingest/lake-manifest.ts";
import { emptyBar, lakeBatches, loadCandleManifest, readRow } from "../../src/replay/lake-reader.ts";

const MINUTE = 60_000;
const PAIR = "EUR_USD";
/** 2030-01-31 00:00 UTC. */
const START = Date.UTC(2030, 0, 31);

/** The R2 calls of the importer and the reader, kept in a Map. */
/** Live bars of minutes [from, to) as the actor archives them (real bid/ask). */
function liveBars(from: number, to: number): Candle[] {
  return Array.from({ length: to - from }, (_, k) => {
    const i = from + k;
    const b = 110_000 + (i % 37);
    return { t: START + i * MINUTE, bo: b, bh: b + 9, bl: b - 9, bc: b + 2, ao: b + 11, ah: b + 20, al: b + 2, ac: b + 13, n: 5 + (i % 9) };
  });
}

/** What the actor's archive leaves: the month object and a manifest listing it. */
async function archiveAsTheActorDoes(bucket: MemoryBucket, bars: Candle[], listInManifest = true): Promise<void> {
  const key = liveCandleKey(PAIR, "2030-01");
  await bucket.put(key, candlesToArrowIPC(bars));
  const live = [{ key, month: "2030-01", rows: bars.length, fromMs: bars[0]!.t, toMs: bars[bars.length - 1]!.t }];
  await bucket.put(
    candleManifestKey(PAIR),
    JSON.stringify({ pair: PAIR, timeframe: "1m", partitions: [], sources: [], source: "", tz: "UTC", importedAt: new Date(START).toISOString(), ...(listInManifest ? { live } : {}) }),
  );
}

/** histdata M1 rows (bid only) of minutes [from, to), UTC clock: bid = 1.20000 + k pips/10. */
function histdataLines(from: number, to: number): string {
  const lines: string[] = [];
  for (let i = from; i < to; i++) {
    const d = new Date(START + i * MINUTE);
    const stamp = `${d.getUTCFullYear()}${String(d.getUTCMonth() + 1).padStart(2, "0")}${String(d.getUTCDate()).padStart(2, "0")} ${String(d.getUTCHours()).padStart(2, "0")}${String(d.getUTCMinutes()).padStart(2, "0")}00`;
    const p = (120_000 + i) / 100_000;
    lines.push(`${stamp};${p.toFixed(5)};${(p + 0.0001).toFixed(5)};${(p - 0.0001).toFixed(5)};${p.toFixed(5)};0`);
  }
  return lines.join("\n") + "\n";
}

/** The bar import makes of histdata minute i (ask = bid). */
function importedBar(i: number): Candle {
  const p = 120_000 + i;
  return { t: START + i * MINUTE, bo: p, bh: p + 10, bl: p - 10, bc: p, ao: p, ah: p + 10, al: p - 10, ac: p, n: 0 };
}

async function readAll(bucket: MemoryBucket): Promise<Candle[]> {
  const manifest = await loadCandleManifest(bucket, PAIR);
  const out: Candle[] = [];
  for await (const { cols, start, end } of lakeBatches(bucket, manifest, 0, Date.UTC(2100, 0))) for (let i = start; i < end; i++) out.push({ ...readRow(cols, i, emptyBar()) });
  return out;
}

let dir = "";
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "lake-live-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("live partitions in the candle manifest", () => {
  const base = { pair: PAIR, timeframe: "1m", partitions: [], source: "", tz: "UTC", importedAt: "2030-01-31T00:00:00.000Z" };
  const month = (m: string, fromMs: number, toMs: number) => ({ key: liveCandleKey(PAIR, m), month: m, rows: 2, fromMs, toMs });

  it("reads manifests without them as having none, and validates them when present", () => {
    expect(readCandleManifest(base).live).toBeUndefined();
    const jan = month("2030-01", START, START + MINUTE);
    const feb = month("2030-02", Date.UTC(2030, 1, 1), Date.UTC(2030, 1, 1) + MINUTE);
    expect(readCandleManifest({ ...base, live: [jan, feb] }).live).toEqual([jan, feb]);
    expect(() => readCandleManifest({ ...base, live: [feb, jan] })).toThrow(/sorted by month/);
    expect(() => readCandleManifest({ ...base, live: [{ ...jan, key: "candles/EUR_USD/1m/2030.arrow" }] })).toThrow(/live partition keys/);
    expect(() => readCandleManifest({ ...base, live: [{ ...jan, toMs: Date.UTC(2030, 1, 1) }] })).toThrow(ManifestError);
  });
});

describe("importing history over archived live months", () => {
  it("keeps the live months; reading gives each minute once, the imported bar where both have it", async () => {
    const bucket = new MemoryBucket();
    const live = liveBars(0, 100); // minutes 0..99
    await archiveAsTheActorDoes(bucket, live);
    const file = path.join(dir, "overlap.csv");
    await writeFile(file, histdataLines(50, 150)); // minutes 50..149
    await importFile({ file, pair: PAIR, tz: "UTC", bucket, log: () => {} });

    const manifest = readCandleManifest(new TextDecoder().decode(bucket.objects.get(candleManifestKey(PAIR))));
    expect(manifest.live).toEqual([{ key: liveCandleKey(PAIR, "2030-01"), month: "2030-01", rows: 100, fromMs: START, toMs: START + 99 * MINUTE }]);
    expect(manifest.partitions).toMatchObject([{ year: 2030, rows: 100, fromMs: START + 50 * MINUTE, toMs: START + 149 * MINUTE }]);
    const expected = [...live.slice(0, 50), ...Array.from({ length: 100 }, (_, k) => importedBar(50 + k))];
    expect(await readAll(bucket)).toEqual(expected);

    // Importing the same file again changes nothing.
    await importFile({ file, pair: PAIR, tz: "UTC", bucket, log: () => {} });
    expect(await readAll(bucket)).toEqual(expected);
  });

  it("lists back a live month whose manifest entry an import overwrote in a race", async () => {
    const bucket = new MemoryBucket();
    const live = liveBars(0, 30);
    await archiveAsTheActorDoes(bucket, live, false); // the object is there, the manifest does not list it
    const file = path.join(dir, "later.csv");
    await writeFile(file, histdataLines(1_000, 1_010));
    await importFile({ file, pair: PAIR, tz: "UTC", bucket, log: () => {} });
    const read = await readAll(bucket);
    expect(read).toEqual([...live, ...Array.from({ length: 10 }, (_, k) => importedBar(1_000 + k))]);
  });
});
