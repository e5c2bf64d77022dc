/**
 * Deterministic ids for signals and orders. A retried or replayed intent must
 * map to the same client order id, so the broker (OANDA's clientExtensions id,
 * or the paper broker's unique index) refuses the second copy. Ids are a short
 * readable prefix plus a 64-bit hash of the whole tuple: the prefix is for
 * people reading logs; only the hash (and the exact parts, like the candle
 * time) carries uniqueness.
 *
 * The hash is FNV-1a 64, pure and synchronous (Web Crypto digests are async and
 * an actor needs the id inside the same synchronous transaction). FNV is not a
 * cryptographic hash: ids come from our own configuration, not from an
 * adversary, and 64 bits make an accidental collision among the few million
 * orders of a pair's life ~1e-7 likely at worst.
 */
import type { Timeframe } from "../candle.ts";
import type { SignalType } from "./types.ts";

/** Upper bound on any id made here; OANDA allows 128 characters. */
export const ID_LENGTH_MAX = 64;

// Readable parts are truncated so the total stays under ID_LENGTH_MAX whatever
// the inputs: 8 + 1 + 16 + 1 + 3 + 1 + 9 + 1 + 5 + 1 + 16 = 62.
const PAIR_CHARS_MAX = 8;
const STRATEGY_CHARS_MAX = 16;
const TIMEFRAME_CHARS_MAX = 3;
const TIME_CHARS_MAX = 9;
const TYPE_CHARS_MAX = 5;

/**
 * FNV-1a 64 over the UTF-8 bytes of `text`, as 16 lowercase hex digits. The
 * 64-bit state is kept in four 16-bit limbs so every product stays exact in a
 * float64 without BigInt, which allocates on every step of the
 * tick-to-decision path.
 */
export function fnv1a64Hex(text: string): string {
  // Offset basis 0xcbf29ce484222325, least significant limb first.
  let h0 = 0x2325;
  let h1 = 0x8422;
  let h2 = 0x9ce4;
  let h3 = 0xcbf2;
  const step = (byte: number): void => {
    h0 ^= byte;
    // Multiply by the prime 2^40 + 0x1b3, mod 2^64: limb 2 of the prime is 0x100.
    const t0 = h0 * 0x1b3;
    const t1 = h1 * 0x1b3 + (t0 >>> 16);
    const t2 = h2 * 0x1b3 + h0 * 0x100 + (t1 >>> 16);
    const t3 = h3 * 0x1b3 + h1 * 0x100 + (t2 >>> 16);
    h0 = t0 & 0xffff;
    h1 = t1 & 0xffff;
    h2 = t2 & 0xffff;
    h3 = t3 & 0xffff;
  };
  for (let i = 0; i < text.length; i++) {
    let c = text.charCodeAt(i);
    if (c < 0x80) {
      step(c);
      continue;
    }
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
      const low = text.charCodeAt(i + 1);
      if (low >= 0xdc00 && low <= 0xdfff) {
        c = 0x10000 + ((c - 0xd800) << 10) + (low - 0xdc00);
        i++;
      }
    }
    // Lone surrogates are encoded as their own 3-byte sequence (WTF-8) rather
    // than U+FFFD, so that distinct strings always give distinct byte streams.
    if (c < 0x800) {
      step(0xc0 | (c >> 6));
    } else if (c < 0x10000) {
      step(0xe0 | (c >> 12));
      step(0x80 | ((c >> 6) & 0x3f));
    } else {
      step(0xf0 | (c >> 18));
      step(0x80 | ((c >> 12) & 0x3f));
      step(0x80 | ((c >> 6) & 0x3f));
    }
    step(0x80 | (c & 0x3f));
  }
  return hex16(h3) + hex16(h2) + hex16(h1) + hex16(h0);
}

function hex16(limb: number): string {
  return limb.toString(16).padStart(4, "0");
}

/**
 * Hash of a tuple: each field is length-prefixed, so ("ab", "c") and
 * ("a", "bc") never produce the same byte stream whatever characters they hold.
 */
function tupleHash(fields: readonly string[]): string {
  let text = "";
  for (const f of fields) text += `${f.length}:${f}`;
  return fnv1a64Hex(text);
}

/** Keeps only characters that are URL-safe and not our separator ("-"). */
function readable(text: string, charsMax: number): string {
  const kept = text.replace(/[^A-Za-z0-9_]/g, "").slice(0, charsMax);
  return kept === "" ? "x" : kept;
}

function candleTimePart(candleT: number): string {
  // Base 36 keeps an epoch-ms readable-ish in 8 characters ("lq2x8k00").
  return Number.isSafeInteger(candleT) && candleT >= 0 ? candleT.toString(36).slice(0, TIME_CHARS_MAX) : "t";
}

/**
 * Id of the signal a strategy emits on a closed candle, e.g.
 * `EUR_USD-ema_fast-15m-lq2x8k00-buy-1c9f0e2b7a64d3e5`. The same
 * (pair, strategy, timeframe, candle, type) always gives the same id, so a
 * candle replayed after a restart cannot produce a second signal. A tick's
 * decision (onTick) is named by "tick" and the tick's time instead.
 */
export function signalId(pair: string, strategyId: string, timeframe: Timeframe | "tick", candleT: number, type: SignalType): string {
  const hash = tupleHash(["signal", pair, strategyId, timeframe, String(candleT), type]);
  return [
    readable(pair, PAIR_CHARS_MAX),
    readable(strategyId, STRATEGY_CHARS_MAX),
    readable(timeframe, TIMEFRAME_CHARS_MAX),
    candleTimePart(candleT),
    readable(type, TYPE_CHARS_MAX),
    hash,
  ].join("-");
}

/**
 * Client order id of the intent made from a signal, e.g.
 * `EUR_USD-ema_fast-0b5e6f7d1a2c3e4f`. It hashes the full tuple (the signal id
 * alone already names pair and strategy, but a manual or foreign signal id
 * need not), under a different tag than signal ids so the two never coincide.
 */
export function clientOrderId(pair: string, strategyId: string, signalId: string): string {
  const hash = tupleHash(["order", pair, strategyId, signalId]);
  return [readable(pair, PAIR_CHARS_MAX), readable(strategyId, STRATEGY_CHARS_MAX), hash].join("-");
}

/**
 * Every id made here ends in "-" and the 16 hex digits of its hash; an id a
 * client chooses (POST /api/trade/execute) may not. So no client id can ever
 * be the id of an exit, a flatten, a strategy order or a generated manual id:
 * an order squatting such an id once kept a breached stop from closing its
 * position.
 */
export const RUNTIME_ID_PATTERN = /-[0-9a-f]{16}$/;

export function isRuntimeId(id: string): boolean {
  return RUNTIME_ID_PATTERN.test(id);
}
