/**
 * Record batches of a lake object read by byte ranges (src/replay/ranged-arrow.ts):
 * the same columns as reading the whole object, in few GETs, none larger than
 * a read-ahead chunk or a batch; an object that is not what its size said is
 * an error, not a short read.
 */
import { describe, expect, it } from "vitest";
import type { Candle } from "../../src/domain/candle.ts";
import { CANDLE_INT_COLUMNS, candleBatches, candleColumnsOf, candlesToArrowIPC, type CandleColumns } from "../../src/ingest/candle-arrow.ts";
import { RangedReadError, rangedRecordBatches } from "../../src/replay/ranged-arrow.ts";
import { MemoryBucket } from "../support/memory-bucket.ts";

const ROWS = 200_000;
const BATCH = 65_536;

function candles(n: number): Candle[] {
  return Array.from({ length: n }, (_, i) => {
    const b = 110_000 + ((i * 7919) % 500);
    return { t: Date.UTC(2020, 0, 1) + i * 60_000, bo: b, bh: b + 9, bl: b - 9, bc: b + 3, ao: b + 10, ah: b + 19, al: b + 1, ac: b + 13, n: i % 50 };
  });
}

/** A bucket that records the ranges asked for. */
class CountingBucket extends MemoryBucket {
  readonly ranges: { offset: number; length: number }[] = [];
  override async get(key: string, options?: { range: { offset: number; length: number } }) {
    if (options?.range) this.ranges.push(options.range);
    return super.get(key, options);
  }
}

/** The columns' bytes, batch by batch: typed arrays compared as bytes (a deep equal of 2 M numbers takes seconds). */
function fingerprint(batches: CandleColumns[] | null): string[] | null {
  return batches && batches.map((b) => `${b.length}:` + (["t", ...CANDLE_INT_COLUMNS] as const).map((k) => Buffer.from(b[k].buffer, b[k].byteOffset, b[k].byteLength).toString("base64")).join("|"));
}

async function readAll(bucket: MemoryBucket, key: string, chunkBytes?: number) {
  const batches = await rangedRecordBatches(bucket, key, chunkBytes);
  if (batches === null) return null;
  const out = [];
  for await (const batch of batches) out.push(candleColumnsOf(batch));
  return out;
}

describe("ranged reads of an Arrow file", () => {
  const bytes = candlesToArrowIPC(candles(ROWS), BATCH);
  const whole = [...candleBatches(bytes)];

  it("give the batches a whole read gives, in about two GETs a batch, none larger than a batch", async () => {
    const bucket = new CountingBucket();
    await bucket.put("candles/EUR_USD/1m/2020.arrow", bytes);
    const read = await readAll(bucket, "candles/EUR_USD/1m/2020.arrow");
    expect(whole).toHaveLength(Math.ceil(ROWS / BATCH));
    expect(fingerprint(read)).toEqual(fingerprint(whole));
    expect(bucket.ranges.length).toBeLessThanOrEqual(2 * whole.length + 4);
    // A batch's body is read alone: nothing much bigger than one batch is ever held.
    const fullBatchBytes = BATCH * (8 + 9 * 4); // t as Float64, nine Int32 columns
    expect(Math.max(...bucket.ranges.map((r) => r.length))).toBeLessThanOrEqual(1.05 * fullBatchBytes);
  });

  it("give the same batches with a tiny read-ahead (many small GETs)", async () => {
    const bucket = new CountingBucket();
    await bucket.put("k", bytes);
    expect(fingerprint(await readAll(bucket, "k", 64))).toEqual(fingerprint(whole));
    expect(bucket.ranges.length).toBeGreaterThan(whole.length * 2);
  });

  it("answer null for a missing object, and fail on one shorter than its size", async () => {
    const bucket = new MemoryBucket();
    expect(await readAll(bucket, "nothing")).toBeNull();
    // Its head says 100 bytes more than there are; its GETs clip a range at the end, as HTTP ranges do.
    class Clipping extends MemoryBucket {
      override async head() {
        return { size: bytes.byteLength + 100 };
      }
      override async get(key: string, options?: { range: { offset: number; length: number } }) {
        const r = options?.range;
        const offset = Math.min(r?.offset ?? 0, bytes.byteLength);
        return super.get(key, r ? { range: { offset, length: Math.min(r.length, bytes.byteLength - offset) } } : undefined);
      }
    }
    const clipping = new Clipping();
    await clipping.put("k", bytes);
    await expect(readAll(clipping, "k")).rejects.toThrow(RangedReadError);
  });
});
