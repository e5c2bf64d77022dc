/**
 * Incremental indicators with plain-JSON state, for strategies: a strategy's
 * state must survive an actor restart bit for bit (live and replay must take
 * the same decisions), and the library's indicator objects keep private
 * fields that cannot be saved. The formulas are the same as trading-signals'
 * (EMA seeded with the first price; RSI and ATR with Wilder smoothing, seeded
 * with a simple average); test/node/series-state.test.ts checks them against
 * the library on real data.
 */

export interface EmaState {
  period: number;
  count: number;
  value: number | null;
}

export function emaInit(period: number): EmaState {
  return { period, count: 0, value: null };
}

export function emaUpdate(s: EmaState, price: number): EmaState {
  const k = 2 / (s.period + 1);
  const value = s.value === null ? price : price * k + s.value * (1 - k);
  return { period: s.period, count: s.count + 1, value };
}

/** The EMA once it has seen `period` prices, else null. */
export function emaValue(s: EmaState): number | null {
  return s.count >= s.period ? s.value : null;
}

export interface SmaState {
  period: number;
  window: number[];
}

export function smaInit(period: number): SmaState {
  return { period, window: [] };
}

export function smaUpdate(s: SmaState, price: number): SmaState {
  const window = s.window.length >= s.period ? s.window.slice(1) : s.window.slice();
  window.push(price);
  return { period: s.period, window };
}

export function smaValue(s: SmaState): number | null {
  if (s.window.length < s.period) return null;
  let sum = 0;
  for (const x of s.window) sum += x;
  return sum / s.period;
}

/** Wilder smoothing: simple average of the first `period` inputs, then avg += (x - avg) * (1 / period). */
interface WilderState {
  period: number;
  count: number;
  sum: number;
  avg: number | null;
}

function wilderInit(period: number): WilderState {
  return { period, count: 0, sum: 0, avg: null };
}

function wilderUpdate(s: WilderState, x: number): WilderState {
  const count = s.count + 1;
  if (s.avg !== null) return { period: s.period, count, sum: 0, avg: (x - s.avg) * (1 / s.period) + s.avg };
  const sum = s.sum + x;
  return { period: s.period, count, sum, avg: count === s.period ? sum / s.period : null };
}

export interface RsiState {
  prev: number | null;
  gain: WilderState;
  loss: WilderState;
}

export function rsiInit(period: number): RsiState {
  return { prev: null, gain: wilderInit(period), loss: wilderInit(period) };
}

export function rsiUpdate(s: RsiState, price: number): RsiState {
  if (s.prev === null) return { ...s, prev: price };
  const change = price - s.prev;
  return { prev: price, gain: wilderUpdate(s.gain, Math.max(change, 0)), loss: wilderUpdate(s.loss, Math.max(-change, 0)) };
}

export function rsiValue(s: RsiState): number | null {
  const gain = s.gain.avg;
  const loss = s.loss.avg;
  if (gain === null || loss === null) return null;
  if (loss === 0) return 100;
  return 100 - 100 / (gain / loss + 1);
}

export interface AtrState {
  prevClose: number | null;
  tr: WilderState;
}

export function atrInit(period: number): AtrState {
  return { prevClose: null, tr: wilderInit(period) };
}

export function atrUpdate(s: AtrState, high: number, low: number, close: number): AtrState {
  const range = s.prevClose === null
    ? high - low
    : Math.max(high - low, Math.abs(high - s.prevClose), Math.abs(low - s.prevClose));
  return { prevClose: close, tr: wilderUpdate(s.tr, range) };
}

export function atrValue(s: AtrState): number | null {
  return s.tr.avg;
}
