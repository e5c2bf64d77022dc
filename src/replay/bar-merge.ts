/**
 * One clock across pairs: the 1-minute bars of several pairs, each streamed
 * from the lake batch by batch, handed on in a single time order. Bars that
 * start at the same instant go in the order of their pair symbols (AUD_USD
 * before EUR_USD before USD_JPY), whatever order the pairs were listed in,
 * so the same inputs always replay the same way.
 *
 * Memory: one record batch per pair (the lake reads it by byte range), so a
 * portfolio's replay holds about pairs x 2.9 MB of bars whatever the range.
 * The walk is synchronous inside the loaded batches; it awaits only when a
 * pair's batch runs out.
 */
import type { Candle } from "../domain/candle.ts";
import type { CandleColumns } from "../ingest/candle-arrow.ts";
import { emptyBar, readRow } from "./lake-reader.ts";

/** A pair's bars: record batches in time order, the rows [start, end) of each to replay. */
export interface PairBars {
  pair: string;
  batches: AsyncIterator<{ cols: CandleColumns; start: number; end: number }>;
}

interface Head {
  pair: string;
  batches: PairBars["batches"];
  cols: CandleColumns | null;
  i: number;
  end: number;
  /** Reused for every bar of the pair: a consumer copies what it keeps. */
  bar: Candle;
}

/**
 * Call `onBar(pair, bar)` for every bar of every pair in time order (ties by
 * pair symbol). Each pair's own bars must be in time order. The bar object is
 * reused: copy what you keep.
 */
export async function mergeBars(pairs: readonly PairBars[], onBar: (pair: string, bar: Candle) => void): Promise<void> {
  const heads: Head[] = [...pairs]
    .sort((a, b) => (a.pair < b.pair ? -1 : a.pair > b.pair ? 1 : 0))
    .map((p) => ({ pair: p.pair, batches: p.batches, cols: null, i: 0, end: 0, bar: emptyBar() }));
  const names = heads.map((h) => h.pair);
  if (new Set(names).size !== names.length) throw new RangeError(`a pair is listed twice: ${names.join(", ")}`);
  const live: Head[] = [];
  for (const head of heads) if (await advance(head)) live.push(head);
  while (live.length > 0) {
    // The earliest bar; on a tie the first in symbol order (live keeps that order).
    let next = live[0] as Head;
    for (let k = 1; k < live.length; k++) {
      const h = live[k] as Head;
      if (h.bar.t < next.bar.t) next = h;
    }
    onBar(next.pair, next.bar);
    next.i++;
    if (next.i < next.end) {
      const before = next.bar.t;
      readRow(next.cols as CandleColumns, next.i, next.bar);
      if (next.bar.t <= before) throw outOfOrder(next);
      continue;
    }
    if (!(await advance(next))) live.splice(live.indexOf(next), 1);
  }
}

/** Load the head's next batch with rows to replay and read its first bar; false when the pair has no more. */
async function advance(head: Head): Promise<boolean> {
  const lastT = head.cols === null ? Number.NEGATIVE_INFINITY : head.bar.t;
  for (;;) {
    const next = await head.batches.next();
    if (next.done) {
      head.cols = null;
      return false;
    }
    const { cols, start, end } = next.value;
    if (start >= end) continue;
    head.cols = cols;
    head.i = start;
    head.end = end;
    readRow(cols, start, head.bar);
    if (head.bar.t <= lastT) throw outOfOrder(head);
    return true;
  }
}

function outOfOrder(head: Head): RangeError {
  return new RangeError(`${head.pair}: bars out of order at ${new Date(head.bar.t).toISOString()}`);
}
