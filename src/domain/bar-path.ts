import type { Candle, Tick } from "./candle.ts";

/** When, inside a 1-minute bar, each of its four path quotes is stamped. */
export const BAR_PATH_OFFSETS_MS = [0, 15_000, 30_000, 59_999] as const;

/**
 * The quotes a bar is taken to have visited, in order: open, then low and
 * high (the low first in a bar that closed up, the high first in one that
 * closed down), then close. The standard bar-to-tick approximation, shared by
 * the backtester's stops and the replay into a pair, so both see one path.
 * Ask = bid + `spreadPoints`, or the bar's own ask side when null.
 */
export function barPath(bar: Candle, spreadPoints: number | null): Tick[] {
  const up = bar.bc >= bar.bo;
  const bids = up ? [bar.bo, bar.bl, bar.bh, bar.bc] : [bar.bo, bar.bh, bar.bl, bar.bc];
  const asks = up ? [bar.ao, bar.al, bar.ah, bar.ac] : [bar.ao, bar.ah, bar.al, bar.ac];
  return bids.map((bid, i) => ({
    ts: bar.t + (BAR_PATH_OFFSETS_MS[i] as number),
    bid,
    ask: spreadPoints === null ? (asks[i] as number) : bid + spreadPoints,
  }));
}
