/**
 * Line parsers for FX history files (see ../shared/data/SOURCES.md for the
 * real files). Each parser turns one text line into a record or a typed error,
 * never throws, so a replay reports bad rows and carries on. Pure: works on
 * strings only, so it can run in a Worker as well as in the Node CLI.
 * Prices stay decimal numbers here (as written in the file); convert with
 * toPoints at the boundary (quoteToTick, barToTicks).
 */
import type { Candle, Tick } from "../domain/candle.ts";
import type { Instrument } from "../domain/instruments.ts";
import { toPoints } from "../domain/price.ts";
import { localToUtcMs, type Zone } from "./time-zone.ts";

export type HistoryFormat =
  /** histdata.com ASCII M1 bid bars: `YYYYMMDD HHMMSS;open;high;low;close;volume`, local clock. */
  | "histdata_m1"
  /** histdata.com ASCII ticks: `YYYYMMDD HHMMSSmmm,bid,ask,volume`, local clock. */
  | "histdata_tick"
  /** LEAN export: `timestamp,bid,ask`, ISO 8601 with `T`, ms and an offset or Z. */
  | "lean_tick"
  /** TrueFX style: `timestamp,bid,ask`, `YYYY-MM-DD HH:MM:SS.ffffff+00:00`. */
  | "truefx_tick"
  /** LEAN bid/ask bars: `timestamp,bid_open,bid_high,bid_low,bid_close,bid_size,ask_open,...,ask_size`. */
  | "lean_bidask_m1";

export type QuoteFormat = "histdata_tick" | "lean_tick" | "truefx_tick";

/** Formats of 1-minute bar files. */
export type BarFormat = "histdata_m1" | "lean_bidask_m1";

export type RowErrorKind = "field_count" | "bad_timestamp" | "bad_number" | "bad_ohlc";

/** A rejected row: `line` is 1-based as in an editor. */
export interface RowError {
  line: number;
  kind: RowErrorKind;
  reason: string;
}

export type ParseResult<T> = { ok: true; value: T } | { ok: false; error: RowError };

/** One bid-side M1 bar; `ts` is the bar start, epoch ms UTC. */
export interface M1Bar {
  ts: number;
  open: number;
  high: number;
  low: number;
  close: number;
}

/** One quote as written in a file (decimal prices), `ts` epoch ms UTC. */
export interface Quote {
  ts: number;
  bid: number;
  ask: number;
}

/** A bar with both sides (decimal prices), `ts` is the bar start, epoch ms UTC. */
export interface BidAskBar {
  ts: number;
  bidOpen: number;
  bidHigh: number;
  bidLow: number;
  bidClose: number;
  askOpen: number;
  askHigh: number;
  askLow: number;
  askClose: number;
}

const HISTDATA_M1 = /^\d{8} \d{6};/;
const HISTDATA_TICK = /^\d{8} \d{9},/;
const ISO_T = /^\d{4}-\d{2}-\d{2}T/;
const ISO_SPACE = /^\d{4}-\d{2}-\d{2} \d{2}:/;

/** True for a header (or comment) line: data lines in every format start with a digit. */
export function isHeaderLine(line: string): boolean {
  const c = line.trimStart().charCodeAt(0);
  return !(c >= 48 && c <= 57);
}

/** Guess the format from one data line (not a header); undefined when none fits. */
export function detectFormat(line: string): HistoryFormat | undefined {
  const text = line.trim();
  if (HISTDATA_M1.test(text)) return "histdata_m1";
  if (HISTDATA_TICK.test(text)) return "histdata_tick";
  const fields = text.split(",").length;
  if (ISO_T.test(text)) {
    if (fields === 3) return "lean_tick";
    if (fields === 11) return "lean_bidask_m1";
    return undefined;
  }
  if (ISO_SPACE.test(text) && fields === 3) return "truefx_tick";
  return undefined;
}

export function isQuoteFormat(format: HistoryFormat): format is QuoteFormat {
  return format === "histdata_tick" || format === "lean_tick" || format === "truefx_tick";
}

export function isBarFormat(format: HistoryFormat): format is BarFormat {
  return format === "histdata_m1" || format === "lean_bidask_m1";
}

function fail(line: number, kind: RowErrorKind, reason: string): { ok: false; error: RowError } {
  return { ok: false, error: { line, kind, reason } };
}

/** Plain decimal (no exponent, hex, spaces or Infinity, which Number() would accept). */
const DECIMAL = /^\d+(?:\.\d*)?$|^\.\d+$/;

/** A positive decimal price, or NaN. */
function price(text: string): number {
  if (!DECIMAL.test(text)) return Number.NaN;
  const value = Number(text);
  return value > 0 && Number.isFinite(value) ? value : Number.NaN;
}

/** Fixed-width unsigned integer at s[start, start+len), or -1 if any char is not a digit. */
function digits(s: string, start: number, len: number): number {
  let n = 0;
  for (let i = start; i < start + len; i++) {
    const d = s.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return -1;
    n = n * 10 + d;
  }
  return n;
}

function daysInMonth(year: number, month1: number): number {
  if (month1 === 2) return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28;
  return month1 === 4 || month1 === 6 || month1 === 9 || month1 === 11 ? 30 : 31;
}

/** Civil date-time fields are in range (no leap seconds: no feed here has them). */
function validCivil(year: number, month1: number, day: number, hour: number, minute: number, second: number): boolean {
  return (
    year >= 1970 && month1 >= 1 && month1 <= 12 && day >= 1 && day <= daysInMonth(year, month1) &&
    hour >= 0 && hour <= 23 && minute >= 0 && minute <= 59 && second >= 0 && second <= 59
  );
}

/** `YYYYMMDD HHMMSS` (msDigits 0) or `YYYYMMDD HHMMSSmmm` (msDigits 3), local time in `zone`; NaN if invalid. */
function compactTimestamp(text: string, msDigits: 0 | 3, zone: Zone): number {
  if (text.length !== 15 + msDigits || text.charCodeAt(8) !== 32) return Number.NaN;
  const year = digits(text, 0, 4);
  const month1 = digits(text, 4, 2);
  const day = digits(text, 6, 2);
  const hour = digits(text, 9, 2);
  const minute = digits(text, 11, 2);
  const second = digits(text, 13, 2);
  const ms = msDigits === 3 ? digits(text, 15, 3) : 0;
  if (ms < 0 || !validCivil(year, month1, day, hour, minute, second)) return Number.NaN;
  return localToUtcMs(zone, year, month1, day, hour, minute, second, ms);
}

const ISO_TIMESTAMP = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:?\d{2})?$/;

/**
 * ISO 8601 timestamp -> epoch ms. An explicit offset or Z wins; without one
 * the reading is local time in `zone`. Fractions beyond ms are truncated
 * (TrueFX writes microseconds, always 000 in the files seen).
 */
export function parseIsoTimestamp(text: string, zone: Zone): number {
  const m = ISO_TIMESTAMP.exec(text);
  if (!m) return Number.NaN;
  const year = Number(m[1]);
  const month1 = Number(m[2]);
  const day = Number(m[3]);
  const hour = Number(m[4]);
  const minute = Number(m[5]);
  const second = Number(m[6]);
  if (!validCivil(year, month1, day, hour, minute, second)) return Number.NaN;
  const ms = m[7] === undefined ? 0 : Number(m[7].padEnd(3, "0").slice(0, 3));
  const offset = m[8];
  if (offset === undefined) return localToUtcMs(zone, year, month1, day, hour, minute, second, ms);
  const local = Date.UTC(year, month1 - 1, day, hour, minute, second, ms);
  if (offset === "Z") return local;
  const offsetHours = digits(offset, 1, 2);
  const offsetMinutes = digits(offset, offset.length - 2, 2);
  if (offsetHours > 23 || offsetMinutes > 59) return Number.NaN;
  const offsetMs = (offsetHours * 60 + offsetMinutes) * 60_000 * (offset.charCodeAt(0) === 45 ? -1 : 1);
  return local - offsetMs;
}

/** histdata ASCII M1: `20180101 170000;1.200370;1.201000;1.200370;1.201000;0`. */
export function parseHistdataM1(line: string, lineNo: number, zone: Zone): ParseResult<M1Bar> {
  const f = line.trim().split(";");
  if (f.length !== 6) return fail(lineNo, "field_count", `expected 6 fields separated by ';', got ${f.length}`);
  const ts = compactTimestamp(f[0] ?? "", 0, zone);
  if (Number.isNaN(ts)) return fail(lineNo, "bad_timestamp", `bad timestamp '${f[0]}', expected YYYYMMDD HHMMSS`);
  const open = price(f[1] ?? "");
  const high = price(f[2] ?? "");
  const low = price(f[3] ?? "");
  const close = price(f[4] ?? "");
  if (Number.isNaN(open + high + low + close)) return fail(lineNo, "bad_number", "open/high/low/close must be positive decimals");
  if (!DECIMAL.test(f[5] ?? "")) return fail(lineNo, "bad_number", `bad volume '${f[5]}'`);
  if (high < Math.max(open, close, low) || low > Math.min(open, close)) {
    return fail(lineNo, "bad_ohlc", `high/low do not bound open/close: ${open} ${high} ${low} ${close}`);
  }
  return { ok: true, value: { ts, open, high, low, close } };
}

function quote(lineNo: number, ts: number, bidText: string, askText: string, tsText: string): ParseResult<Quote> {
  if (Number.isNaN(ts)) return fail(lineNo, "bad_timestamp", `bad timestamp '${tsText}'`);
  const bid = price(bidText);
  if (Number.isNaN(bid)) return fail(lineNo, "bad_number", `bad bid '${bidText}'`);
  const ask = price(askText);
  if (Number.isNaN(ask)) return fail(lineNo, "bad_number", `bad ask '${askText}'`);
  // Crossed quotes (bid > ask) are real in FXCM data: kept here, judged by the runtime.
  return { ok: true, value: { ts, bid, ask } };
}

/** histdata ticks: `20200101 170000065,1.121200,1.121720,0`. */
export function parseHistdataTick(line: string, lineNo: number, zone: Zone): ParseResult<Quote> {
  const f = line.trim().split(",");
  if (f.length !== 4) return fail(lineNo, "field_count", `expected 4 fields separated by ',', got ${f.length}`);
  if (!DECIMAL.test(f[3] ?? "")) return fail(lineNo, "bad_number", `bad volume '${f[3]}'`);
  const tsText = f[0] ?? "";
  return quote(lineNo, compactTimestamp(tsText, 3, zone), f[1] ?? "", f[2] ?? "", tsText);
}

/** LEAN / TrueFX ticks: `2014-05-01T00:00:01.787-05:00,1.38727,1.38729`; `zone` only for offset-less stamps. */
export function parseIsoTick(line: string, lineNo: number, zone: Zone): ParseResult<Quote> {
  const f = line.trim().split(",");
  if (f.length !== 3) return fail(lineNo, "field_count", `expected 3 fields separated by ',', got ${f.length}`);
  const tsText = f[0] ?? "";
  return quote(lineNo, parseIsoTimestamp(tsText, zone), f[1] ?? "", f[2] ?? "", tsText);
}

/** Any quote format. */
export function parseQuote(format: QuoteFormat, line: string, lineNo: number, zone: Zone): ParseResult<Quote> {
  return format === "histdata_tick" ? parseHistdataTick(line, lineNo, zone) : parseIsoTick(line, lineNo, zone);
}

/** LEAN bid/ask M1 bars (sizes are checked as numbers and dropped: always 0 in these files). */
export function parseBidAskBar(line: string, lineNo: number, zone: Zone): ParseResult<BidAskBar> {
  const f = line.trim().split(",");
  if (f.length !== 11) return fail(lineNo, "field_count", `expected 11 fields separated by ',', got ${f.length}`);
  const ts = parseIsoTimestamp(f[0] ?? "", zone);
  if (Number.isNaN(ts)) return fail(lineNo, "bad_timestamp", `bad timestamp '${f[0]}'`);
  const p = [1, 2, 3, 4, 6, 7, 8, 9].map((i) => price(f[i] ?? ""));
  const [bidOpen = NaN, bidHigh = NaN, bidLow = NaN, bidClose = NaN, askOpen = NaN, askHigh = NaN, askLow = NaN, askClose = NaN] = p;
  if (p.some(Number.isNaN)) return fail(lineNo, "bad_number", "prices must be positive decimals");
  if (!DECIMAL.test(f[5] ?? "") || !DECIMAL.test(f[10] ?? "")) return fail(lineNo, "bad_number", "bad size");
  if (
    bidHigh < Math.max(bidOpen, bidClose, bidLow) || bidLow > Math.min(bidOpen, bidClose) ||
    askHigh < Math.max(askOpen, askClose, askLow) || askLow > Math.min(askOpen, askClose)
  ) {
    return fail(lineNo, "bad_ohlc", "high/low do not bound open/close");
  }
  return { ok: true, value: { ts, bidOpen, bidHigh, bidLow, bidClose, askOpen, askHigh, askLow, askClose } };
}

/** Decimal quote -> integer-point tick (see price.ts). */
export function quoteToTick(q: Quote, instrument: Instrument): Tick {
  return { ts: q.ts, bid: toPoints(q.bid, instrument), ask: toPoints(q.ask, instrument) };
}

/** Decimal bid/ask bar -> integer-point candle; `n` (tick count) is unknown in bar files. */
export function bidAskBarToCandle(bar: BidAskBar, instrument: Instrument, n = 0): Candle {
  const p = (x: number): number => toPoints(x, instrument);
  return {
    t: bar.ts,
    bo: p(bar.bidOpen), bh: p(bar.bidHigh), bl: p(bar.bidLow), bc: p(bar.bidClose),
    ao: p(bar.askOpen), ah: p(bar.askHigh), al: p(bar.askLow), ac: p(bar.askClose),
    n,
  };
}

/** Offsets of the four synthetic ticks inside the minute. */
const BAR_TICK_OFFSETS_MS = [0, 15_000, 30_000, 59_999] as const;

/**
 * One bid M1 bar -> four ordered ticks, the standard bar-to-tick approximation
 * used to replay bar history through the tick path (as MetaTrader's "open
 * prices / 1-minute OHLC" modes and most backtesters do): open at t, then low
 * and high at t+15 s and t+30 s for an up bar (close >= open), high then low
 * for a down bar, close at t+59.999 s. Aggregating them gives the bar back
 * exactly on the bid side; ask = bid + spreadPoints (a constant spread, since
 * the bar has no ask side). `bar.ts` must be the minute start.
 */
export function barToTicks(bar: M1Bar, spreadPoints: number, instrument: Instrument): Tick[] {
  if (!Number.isInteger(spreadPoints) || spreadPoints < 0) throw new RangeError(`spreadPoints must be a non-negative integer, got ${spreadPoints}`);
  const open = toPoints(bar.open, instrument);
  const high = toPoints(bar.high, instrument);
  const low = toPoints(bar.low, instrument);
  const close = toPoints(bar.close, instrument);
  const path = close >= open ? [open, low, high, close] : [open, high, low, close];
  return path.map((bid, i) => ({ ts: bar.ts + (BAR_TICK_OFFSETS_MS[i] ?? 0), bid, ask: bid + spreadPoints }));
}
