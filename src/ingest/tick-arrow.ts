/**
 * Ticks <-> Arrow IPC (file format): the tick partitions of the data lake
 * (`ticks/<PAIR>/<YYYY>-<MM>.arrow`). Pure: no Node imports, so a Worker can
 * decode what the Node importer writes. Same conventions as candle-arrow.ts:
 * - `t`: Float64, quote time in epoch ms UTC (exact: integers below 2^53);
 * - `bid`, `ask`: Int32 integer price points (see price.ts);
 * record batches of at most BATCH_ROWS rows, decoded to typed-array views on
 * the file bytes (no copy, no per-row objects). Values that would not survive
 * the round trip throw a RangeError.
 */
import { RecordBatch, Table, tableFromArrays, tableFromIPC, tableToIPC } from "apache-arrow";
import type { Tick } from "../domain/candle.ts";
import { BATCH_ROWS } from "./candle-arrow.ts";

export { BATCH_ROWS };

/** Ticks as columns; row i is one tick. Also the importer's in-memory form (1M ticks = 16 MB, not 1M objects). */
export type TickColumns = { length: number; t: Float64Array; bid: Int32Array; ask: Int32Array };

const INT32_MIN = -2_147_483_648;
const INT32_MAX = 2_147_483_647;

function checkInt32(v: number, what: string): number {
  if (!Number.isInteger(v) || v < INT32_MIN || v > INT32_MAX) throw new RangeError(`${what} must be an Int32 integer, got ${v}`);
  return v;
}

/** Tick objects -> columns (validates every value). */
export function tickColumns(ticks: readonly Tick[]): TickColumns {
  const n = ticks.length;
  const cols: TickColumns = { length: n, t: new Float64Array(n), bid: new Int32Array(n), ask: new Int32Array(n) };
  for (let i = 0; i < n; i++) {
    const k = ticks[i] as Tick;
    if (!Number.isSafeInteger(k.ts)) throw new RangeError(`tick ${i}: ts must be an integer epoch ms, got ${k.ts}`);
    cols.t[i] = k.ts;
    cols.bid[i] = checkInt32(k.bid, `tick ${i}: bid`);
    cols.ask[i] = checkInt32(k.ask, `tick ${i}: ask`);
  }
  return cols;
}

export function tickAt(cols: TickColumns, i: number): Tick {
  return { ts: cols.t[i] as number, bid: cols.bid[i] as number, ask: cols.ask[i] as number };
}

/** Columns [from, to) as a fresh (trimmed) TickColumns. */
export function sliceTicks(cols: TickColumns, from: number, to: number): TickColumns {
  return { length: to - from, t: cols.t.slice(from, to), bid: cols.bid.slice(from, to), ask: cols.ask.slice(from, to) };
}

/** Encode columns (only the first `cols.length` rows are written). */
export function tickColumnsToArrowIPC(cols: TickColumns, batchRows = BATCH_ROWS): Uint8Array {
  if (!Number.isInteger(batchRows) || batchRows < 1) throw new RangeError(`batchRows must be a positive integer, got ${batchRows}`);
  if (cols.t.length < cols.length || cols.bid.length < cols.length || cols.ask.length < cols.length) throw new RangeError("tick columns shorter than length");
  for (let i = 0; i < cols.length; i++) {
    const t = cols.t[i] as number;
    if (!Number.isSafeInteger(t)) throw new RangeError(`tick ${i}: t must be an integer epoch ms, got ${t}`);
  }
  const batches: RecordBatch[] = [];
  const slice = (from: number, to: number): RecordBatch => {
    const [batch] = tableFromArrays({ t: cols.t.subarray(from, to), bid: cols.bid.subarray(from, to), ask: cols.ask.subarray(from, to) }).batches;
    return batch as RecordBatch;
  };
  for (let from = 0; from < cols.length; from += batchRows) batches.push(slice(from, Math.min(cols.length, from + batchRows)));
  // An empty table still needs the schema: one empty batch carries it.
  if (batches.length === 0) batches.push(slice(0, 0));
  return tableToIPC(new Table(batches), "file");
}

export function ticksToArrowIPC(ticks: readonly Tick[], batchRows = BATCH_ROWS): Uint8Array {
  return tickColumnsToArrowIPC(tickColumns(ticks), batchRows);
}

function column<T>(batch: RecordBatch, name: string, type: new (...args: never[]) => T): T {
  const values = batch.getChild(name)?.toArray();
  if (!(values instanceof type)) throw new Error(`Arrow ticks: column ${name} missing or not ${type.name}`);
  return values;
}

/** The record batches of a tick file, in order, as typed-array columns. */
export function* tickBatches(bytes: Uint8Array): Generator<TickColumns> {
  for (const batch of tableFromIPC(bytes).batches) yield tickColumnsOf(batch);
}

/** One record batch of a tick file as typed-array columns (views on its bytes). */
export function tickColumnsOf(batch: RecordBatch): TickColumns {
  return { length: batch.numRows, t: column(batch, "t", Float64Array), bid: column(batch, "bid", Int32Array), ask: column(batch, "ask", Int32Array) };
}

/** The whole file as one set of columns (copied out of the batches). */
export function tickColumnsFromArrowIPC(bytes: Uint8Array): TickColumns {
  const batches = [...tickBatches(bytes)];
  const n = batches.reduce((s, b) => s + b.length, 0);
  const out: TickColumns = { length: n, t: new Float64Array(n), bid: new Int32Array(n), ask: new Int32Array(n) };
  let at = 0;
  for (const b of batches) {
    out.t.set(b.t.subarray(0, b.length), at);
    out.bid.set(b.bid.subarray(0, b.length), at);
    out.ask.set(b.ask.subarray(0, b.length), at);
    at += b.length;
  }
  return out;
}

export function ticksFromArrowIPC(bytes: Uint8Array): Tick[] {
  const out: Tick[] = [];
  for (const cols of tickBatches(bytes)) for (let i = 0; i < cols.length; i++) out.push(tickAt(cols, i));
  return out;
}
