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

/**
 * A record batch of a pair: rows [start, end) to replay. 1-minute candles
 * give their columns (read inline, the hot path); ticks give `read`, which
 * fills `bar` with row i and answers false for a row to skip (a bad tick).
 */
export type MergeBatch = { start: number; end: number } & ({ cols: CandleColumns; read?: undefined } | { cols?: undefined; read(i: number, bar: Candle): boolean });

/** A pair's bars: record batches in time order. */
export interface PairBars {
  pair: string;
  batches: AsyncIterator<MergeBatch>;
}

/** 1-minute candle batches (lake-reader's lakeBatches) as merge batches. */
export async function* candleBatches(batches: AsyncIterable<{ cols: CandleColumns; start: number; end: number }>): AsyncGenerator<MergeBatch> {
  for await (const { cols, start, end } of batches) yield { start, end, cols };
}

interface Head {
  pair: string;
  batches: PairBars["batches"];
  batch: MergeBatch | null;
  i: number;
  /** Reused for every bar of the pair: a consumer copies what it keeps. */
  bar: Candle;
}

/**
 * Call `onBar(pair, bar)` for every bar of every pair in time order (ties by
 * pair symbol). Each pair's own bars must be in time order (never going back). The bar object is
 * reused: copy what you keep.
 */
export async function mergeBars(pairs: readonly PairBars[], onBar: (pair: string, bar: Candle) => void): Promise<void> {
  const heads: Head[] = [...pairs]
    .sort((a, b) => (a.pair < b.pair ? -1 : a.pair > b.pair ? 1 : 0))
    .map((p) => ({ pair: p.pair, batches: p.batches, batch: null, i: 0, bar: emptyBar() }));
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
    if (!(await advance(next))) live.splice(live.indexOf(next), 1);
  }
}

/** Move the head to its next readable bar, loading batches as they run out; false when the pair has no more. */
async function advance(head: Head): Promise<boolean> {
  const lastT = head.batch === null ? Number.NEGATIVE_INFINITY : head.bar.t;
  for (;;) {
    const batch = head.batch;
    if (batch !== null) {
      while (++head.i < batch.end) {
        if (batch.cols !== undefined) readRow(batch.cols, head.i, head.bar);
        else if (!batch.read(head.i, head.bar)) continue;
        // Ticks may share a millisecond; nothing may go back.
        if (head.bar.t < lastT) throw outOfOrder(head);
        return true;
      }
    }
    const next = await head.batches.next();
    if (next.done) {
      head.batch = null;
      return false;
    }
    head.batch = next.value;
    head.i = next.value.start - 1;
  }
}

function outOfOrder(head: Head): RangeError {
  return new RangeError(`${head.pair}: bars out of order at ${new Date(head.bar.t).toISOString()}`);
}
