/**
 * Candles <-> Arrow IPC (file format), the columnar layout of the R2 data lake
 * (`candles/<PAIR>/1m/<YEAR>.arrow`). Pure: no Node imports, so a Worker can
 * decode the same objects the Node importer writes.
 *
 * Columns:
 * - `t`: Float64, candle start in epoch ms UTC. Float64 rather than Int64:
 *   epoch ms are integers far below 2^53, so Float64 is exact, and it decodes
 *   straight to JS numbers (Int64 would come back as BigInt, costing a
 *   conversion per row in the replay loop). Same 8 bytes per row.
 * - `bo`,`bh`,`bl`,`bc`,`ao`,`ah`,`al`,`ac`: Int32, integer price points
 *   (see price.ts; EUR_USD 1.20037 = 120037).
 * - `n`: Int32, tick count.
 * Written as record batches of at most BATCH_ROWS rows, so a reader holds one
 * batch of decoded columns at a time (the columns are views on the file bytes:
 * decoding copies nothing). Round trip is exact; values that would not survive
 * (non-integer points or t, out of Int32 range) throw a RangeError rather than
 * being silently changed.
 */
import { RecordBatch, Table, tableFromArrays, tableFromIPC, tableToIPC } from "apache-arrow";
import type { Candle } from "../domain/candle.ts";

export const CANDLE_INT_COLUMNS = ["bo", "bh", "bl", "bc", "ao", "ah", "al", "ac", "n"] as const;
type IntColumn = (typeof CANDLE_INT_COLUMNS)[number];

/** 64 Ki rows = 2.9 MB of columns per batch: about 45 trading days of 1-minute bars. */
export const BATCH_ROWS = 65_536;

/** One record batch as plain typed arrays, row i across all columns is one candle. */
export type CandleColumns = { length: number; t: Float64Array } & Record<IntColumn, Int32Array>;

const INT32_MIN = -2_147_483_648;
const INT32_MAX = 2_147_483_647;

function toBatch(candles: readonly Candle[], from: number, to: number): RecordBatch {
  const rows = to - from;
  const t = new Float64Array(rows);
  const ints = Object.fromEntries(CANDLE_INT_COLUMNS.map((k) => [k, new Int32Array(rows)])) as Record<IntColumn, Int32Array>;
  for (let i = 0; i < rows; i++) {
    const c = candles[from + i] as Candle;
    if (!Number.isSafeInteger(c.t)) throw new RangeError(`candle ${from + i}: t must be an integer epoch ms, got ${c.t}`);
    t[i] = c.t;
    for (const k of CANDLE_INT_COLUMNS) {
      const v = c[k];
      if (!Number.isInteger(v) || v < INT32_MIN || v > INT32_MAX) throw new RangeError(`candle ${from + i}: ${k} must be an Int32 integer, got ${v}`);
      ints[k][i] = v;
    }
  }
  const [batch] = tableFromArrays({ t, ...ints }).batches;
  return batch as RecordBatch;
}

export function candlesToArrowIPC(candles: readonly Candle[], batchRows = BATCH_ROWS): Uint8Array {
  if (!Number.isInteger(batchRows) || batchRows < 1) throw new RangeError(`batchRows must be a positive integer, got ${batchRows}`);
  const batches: RecordBatch[] = [];
  for (let from = 0; from < candles.length; from += batchRows) batches.push(toBatch(candles, from, Math.min(candles.length, from + batchRows)));
  // An empty table still needs the schema: one empty batch carries it.
  if (batches.length === 0) batches.push(toBatch(candles, 0, 0));
  return tableToIPC(new Table(batches), "file");
}

function column<T>(batch: RecordBatch, name: string, type: new (...args: never[]) => T): T {
  const values = batch.getChild(name)?.toArray();
  if (!(values instanceof type)) throw new Error(`Arrow candles: column ${name} missing or not ${type.name}`);
  return values;
}

/** The record batches of a candle file, in order, as typed-array columns (no per-row objects). */
export function* candleBatches(bytes: Uint8Array): Generator<CandleColumns> {
  for (const batch of tableFromIPC(bytes).batches) yield candleColumnsOf(batch);
}

/** One record batch of a candle file as typed-array columns (views on its bytes). */
export function candleColumnsOf(batch: RecordBatch): CandleColumns {
  const ints = Object.fromEntries(CANDLE_INT_COLUMNS.map((k) => [k, column(batch, k, Int32Array)])) as Record<IntColumn, Int32Array>;
  return { length: batch.numRows, t: column(batch, "t", Float64Array), ...ints };
}

export function candleAt(cols: CandleColumns, i: number): Candle {
  return {
    t: cols.t[i] as number,
    bo: cols.bo[i] as number, bh: cols.bh[i] as number, bl: cols.bl[i] as number, bc: cols.bc[i] as number,
    ao: cols.ao[i] as number, ah: cols.ah[i] as number, al: cols.al[i] as number, ac: cols.ac[i] as number,
    n: cols.n[i] as number,
  };
}

export function candlesFromArrowIPC(bytes: Uint8Array): Candle[] {
  const out: Candle[] = [];
  for (const cols of candleBatches(bytes)) for (let i = 0; i < cols.length; i++) out.push(candleAt(cols, i));
  return out;
}
