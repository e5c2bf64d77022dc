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
 * Round trip is exact; values that would not survive (non-integer points or t,
 * out of Int32 range) throw a RangeError rather than being silently changed.
 */
import { tableFromArrays, tableFromIPC, tableToIPC, type Table } from "apache-arrow";
import type { Candle } from "../domain/candle.ts";

export const CANDLE_INT_COLUMNS = ["bo", "bh", "bl", "bc", "ao", "ah", "al", "ac", "n"] as const;
type IntColumn = (typeof CANDLE_INT_COLUMNS)[number];

const INT32_MIN = -2_147_483_648;
const INT32_MAX = 2_147_483_647;

export function candlesToArrowIPC(candles: Candle[]): Uint8Array {
  const rows = candles.length;
  const t = new Float64Array(rows);
  const ints = Object.fromEntries(CANDLE_INT_COLUMNS.map((k) => [k, new Int32Array(rows)])) as Record<IntColumn, Int32Array>;
  for (let i = 0; i < rows; i++) {
    const c = candles[i] as Candle;
    if (!Number.isSafeInteger(c.t)) throw new RangeError(`candle ${i}: t must be an integer epoch ms, got ${c.t}`);
    t[i] = c.t;
    for (const k of CANDLE_INT_COLUMNS) {
      const v = c[k];
      if (!Number.isInteger(v) || v < INT32_MIN || v > INT32_MAX) throw new RangeError(`candle ${i}: ${k} must be an Int32 integer, got ${v}`);
      ints[k][i] = v;
    }
  }
  const table = tableFromArrays({ t, ...ints });
  return tableToIPC(table, "file");
}

function column(table: Table, name: string): ArrayLike<number> {
  const vector = table.getChild(name);
  if (!vector) throw new Error(`Arrow candles: missing column ${name}`);
  return vector.toArray() as ArrayLike<number>;
}

export function candlesFromArrowIPC(bytes: Uint8Array): Candle[] {
  const table = tableFromIPC(bytes);
  const t = column(table, "t");
  const bo = column(table, "bo"), bh = column(table, "bh"), bl = column(table, "bl"), bc = column(table, "bc");
  const ao = column(table, "ao"), ah = column(table, "ah"), al = column(table, "al"), ac = column(table, "ac");
  const n = column(table, "n");
  const out: Candle[] = new Array(table.numRows);
  for (let i = 0; i < table.numRows; i++) {
    out[i] = {
      t: Number(t[i]),
      bo: bo[i] as number, bh: bh[i] as number, bl: bl[i] as number, bc: bc[i] as number,
      ao: ao[i] as number, ah: ah[i] as number, al: al[i] as number, ac: ac[i] as number,
      n: n[i] as number,
    };
  }
  return out;
}
