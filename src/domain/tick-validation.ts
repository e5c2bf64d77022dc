import type { Tick } from "./candle.ts";
import type { Instrument } from "./instruments.ts";
import { plausibleRange, tickMoveFractionMax } from "./price-band.ts";
import { isPricePoints, pipsToPoints, pointsToPips, toDecimal, toPoints } from "./price.ts";

/** Why a tick was refused: data, not strings, so clients can act on it. */
export type TickRejection =
  | { type: "invalid_price"; field: "bid" | "ask" }
  | { type: "crossed"; bid: number; ask: number }
  | { type: "spread_too_wide"; spreadPips: number; maxSpreadPips: number }
  /** The mid is no plausible price of the pair, or too far from the last accepted tick's (price-band.ts); decimals. */
  | { type: "out_of_band"; mid: number; low: number; high: number }
  | { type: "future_timestamp"; ts: number; maxTs: number }
  | { type: "out_of_order"; ts: number; lastTs: number }
  | { type: "candle_closed"; ts: number; closedUntil: number };

export type TickCheck = { ok: true; tick: Tick } | { ok: false; reason: TickRejection };

export interface TickRules {
  maxSpreadPips: number;
  /** How far ahead of the receiver's clock a tick may be stamped. */
  maxFutureMs: number;
}

export const MAX_FUTURE_MS_DEFAULT = 5_000;

export function defaultTickRules(instrument: Instrument): TickRules {
  return { maxSpreadPips: instrument.maxSpreadPipsDefault, maxFutureMs: MAX_FUTURE_MS_DEFAULT };
}

export interface TickContext {
  instrument: Instrument;
  rules: TickRules;
  /** Receiver's clock (ms since epoch). */
  nowMs: number;
  /** Timestamp of the pair's last accepted tick, or -Infinity. */
  lastTs: number;
  /** Ticks before this instant belong to candles already closed. */
  closedUntil: number;
  /** The pair's last accepted tick (points), the anchor of the move band; absent before the first. */
  last?: Tick | null;
}

/**
 * Check one wire tick (decimal prices) and convert it to integer points.
 * Equal timestamps pass (real feeds repeat them); older-but-ordered ticks pass
 * so history can be back-filled.
 */
export function checkTick(raw: { ts: number; bid: number; ask: number }, ctx: TickContext): TickCheck {
  const bid = toPoints(raw.bid, ctx.instrument);
  const ask = toPoints(raw.ask, ctx.instrument);
  if (!isPricePoints(bid)) return { ok: false, reason: { type: "invalid_price", field: "bid" } };
  if (!isPricePoints(ask)) return { ok: false, reason: { type: "invalid_price", field: "ask" } };
  if (bid > ask) return { ok: false, reason: { type: "crossed", bid: raw.bid, ask: raw.ask } };
  if (ask - bid > pipsToPoints(ctx.rules.maxSpreadPips, ctx.instrument)) {
    return {
      ok: false,
      reason: { type: "spread_too_wide", spreadPips: pointsToPips(ask - bid, ctx.instrument), maxSpreadPips: ctx.rules.maxSpreadPips },
    };
  }
  const band = bandOf(raw.ts, ctx);
  const mid = (bid + ask) / 2;
  if (!(mid >= band.low && mid <= band.high)) {
    const i = ctx.instrument;
    return { ok: false, reason: { type: "out_of_band", mid: toDecimal(mid, i), low: toDecimal(band.low, i), high: toDecimal(band.high, i) } };
  }
  const maxTs = ctx.nowMs + ctx.rules.maxFutureMs;
  if (raw.ts > maxTs) return { ok: false, reason: { type: "future_timestamp", ts: raw.ts, maxTs } };
  if (raw.ts < ctx.lastTs) return { ok: false, reason: { type: "out_of_order", ts: raw.ts, lastTs: ctx.lastTs } };
  if (raw.ts < ctx.closedUntil) return { ok: false, reason: { type: "candle_closed", ts: raw.ts, closedUntil: ctx.closedUntil } };
  return { ok: true, tick: { ts: raw.ts, bid, ask } };
}

/** Where a tick's mid (points) may be: plausible for the pair, and near the last accepted tick. */
function bandOf(ts: number, ctx: TickContext): { low: number; high: number } {
  const plausible = plausibleRange(ctx.instrument);
  const last = ctx.last;
  if (!last) return plausible;
  const lastMid = (last.bid + last.ask) / 2;
  const move = tickMoveFractionMax(ts - last.ts);
  return { low: Math.max(plausible.low, Math.ceil(lastMid * (1 - move))), high: Math.min(plausible.high, Math.floor(lastMid * (1 + move))) };
}
