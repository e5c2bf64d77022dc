/**
 * Time arithmetic for FX candles. The FX day rolls at 17:00 America/New_York,
 * so daily and 4-hour candles follow New York daylight saving time. The US
 * rules are computed here (no Intl, no tz database) so that live and replay get
 * identical, fast answers: since 2007 DST runs from the second Sunday of March
 * to the first Sunday of November, 02:00 local; 1987-2006 from the first Sunday
 * of April to the last Sunday of October.
 */
import type { Timeframe } from "./candle.ts";

export const MINUTE_MS = 60_000;
export const HOUR_MS = 3_600_000;
export const DAY_MS = 86_400_000;
const EST_OFFSET_MS = -5 * HOUR_MS;
const FX_ROLL_HOUR = 17;

/** Day of month (1-31) of the nth (1-based) Sunday, or the last Sunday when n = -1. */
function sundayOfMonth(year: number, month0: number, n: number): number {
  if (n === -1) {
    const lastDay = new Date(Date.UTC(year, month0 + 1, 0));
    return lastDay.getUTCDate() - lastDay.getUTCDay();
  }
  const firstWeekday = new Date(Date.UTC(year, month0, 1)).getUTCDay();
  const firstSunday = 1 + ((7 - firstWeekday) % 7);
  return firstSunday + 7 * (n - 1);
}

/** Computed windows by year: every tick asks several times (4h and daily buckets), always for a year or two. */
const dstWindows = new Map<number, readonly [number, number]>();

/** [start, end) of New York DST for a year, both as *local standard-time* epoch-like ms. */
function dstWindowLocal(year: number): readonly [number, number] {
  let window = dstWindows.get(year);
  if (window === undefined) {
    const [startMonth, startN, endMonth, endN] = year >= 2007 ? [2, 2, 10, 1] : [3, 1, 9, -1];
    const start = Date.UTC(year, startMonth, sundayOfMonth(year, startMonth, startN), 2);
    // DST ends at 02:00 daylight time = 01:00 standard time.
    const end = Date.UTC(year, endMonth, sundayOfMonth(year, endMonth, endN), 1);
    window = [start, end];
    if (year >= 1970 && year <= 2200) dstWindows.set(year, window); // bounded: at most 231 entries
  }
  return window;
}

/** New York's UTC offset (ms, negative) at a UTC instant. */
export function newYorkOffsetMs(utcMs: number): number {
  const standardLocal = utcMs + EST_OFFSET_MS;
  const year = new Date(standardLocal).getUTCFullYear();
  const [start, end] = dstWindowLocal(year);
  return standardLocal >= start && standardLocal < end ? EST_OFFSET_MS + HOUR_MS : EST_OFFSET_MS;
}

/** Start (UTC ms) of the FX trading day containing `utcMs`: the latest 17:00 New York at or before it. */
export function fxDayStart(utcMs: number): number {
  const local = utcMs + newYorkOffsetMs(utcMs);
  const rollLocal = Math.floor((local - FX_ROLL_HOUR * HOUR_MS) / DAY_MS) * DAY_MS + FX_ROLL_HOUR * HOUR_MS;
  // 17:00 local is never inside a DST jump (those happen at 02:00), so one
  // offset lookup near the roll is exact: try the offset an hour either side.
  const guess = rollLocal - newYorkOffsetMs(utcMs);
  const start = rollLocal - newYorkOffsetMs(guess);
  return start > utcMs ? start - DAY_MS : start;
}

const FIXED_MS: Partial<Record<Timeframe, number>> = {
  "1m": MINUTE_MS,
  "5m": 5 * MINUTE_MS,
  "15m": 15 * MINUTE_MS,
  "1h": HOUR_MS,
};

/** Start (UTC ms) of the `tf` candle containing `utcMs`. */
export function bucketStart(tf: Timeframe, utcMs: number): number {
  const fixed = FIXED_MS[tf];
  if (fixed !== undefined) return Math.floor(utcMs / fixed) * fixed;
  const day = fxDayStart(utcMs);
  if (tf === "1D") return day;
  // 4h candles are counted from the FX day roll: 17:00, 21:00, 01:00 ... New York.
  return day + Math.floor((utcMs - day) / (4 * HOUR_MS)) * 4 * HOUR_MS;
}

/** End (exclusive, UTC ms) of the `tf` candle that starts at `start`. */
export function bucketEnd(tf: Timeframe, start: number): number {
  const fixed = FIXED_MS[tf];
  if (fixed !== undefined) return start + fixed;
  // The next roll: a day after the roll that opened this candle's day, give or take the DST hour.
  // (Counted from the candle's own start, a day's last 4h candle on a DST change would skip a roll.)
  const nextDay = fxDayStart(fxDayStart(start) + DAY_MS + 2 * HOUR_MS);
  if (tf === "1D") return nextDay;
  return Math.min(start + 4 * HOUR_MS, nextDay);
}

/** True when the FX market is closed: Friday 17:00 to Sunday 17:00 New York. */
export function isWeekendClosed(utcMs: number): boolean {
  const local = utcMs + newYorkOffsetMs(utcMs);
  const d = new Date(local);
  const weekday = d.getUTCDay();
  const hour = d.getUTCHours();
  if (weekday === 6) return true;
  if (weekday === 5) return hour >= FX_ROLL_HOUR;
  if (weekday === 0) return hour < FX_ROLL_HOUR;
  return false;
}
