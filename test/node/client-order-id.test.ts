import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { TIMEFRAMES } from "../../src/domain/candle.ts";
import { clientOrderId, fnv1a64Hex, ID_LENGTH_MAX, signalId } from "../../src/domain/trading/client-order-id.ts";
import type { SignalType } from "../../src/domain/trading/types.ts";

/** Reference FNV-1a 64 with BigInt over TextEncoder bytes (well-formed strings only). */
function referenceFnv(text: string): string {
  let h = 0xcbf29ce484222325n;
  for (const b of new TextEncoder().encode(text)) {
    h ^= BigInt(b);
    h = (h * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  return h.toString(16).padStart(16, "0");
}

const URL_SAFE = /^[A-Za-z0-9_-]+$/;
const SIGNAL_TYPES: readonly SignalType[] = ["buy", "sell", "close"];

const pairArb = fc.oneof(fc.constantFrom("EUR_USD", "USD_JPY", "GBP_JPY"), fc.string({ maxLength: 12 }));
// Small alphabets on purpose: near-identical strategy ids and separator-like characters.
const strategyArb = fc.oneof(
  fc.string({ unit: fc.constantFrom("a", "b", "-", ":", "_", "1"), maxLength: 24 }),
  fc.string({ unit: "binary", maxLength: 40 }),
);
const signalTupleArb = fc.tuple(
  pairArb,
  strategyArb,
  fc.constantFrom(...TIMEFRAMES),
  fc.oneof(fc.integer({ min: 0, max: 4_102_444_800_000 }), fc.constantFrom(0, 60_000, 1_700_000_000_000)),
  fc.constantFrom(...SIGNAL_TYPES),
);

describe("fnv1a64Hex", () => {
  it("matches the published FNV-1a 64 test vectors", () => {
    expect(fnv1a64Hex("")).toBe("cbf29ce484222325");
    expect(fnv1a64Hex("a")).toBe("af63dc4c8601ec8c");
    expect(fnv1a64Hex("foobar")).toBe("85944171f73967e8");
  });

  it("equals a BigInt reference over UTF-8 for any well-formed string", () => {
    fc.assert(
      fc.property(fc.string({ unit: "binary", maxLength: 64 }), (s) => {
        expect(fnv1a64Hex(s)).toBe(referenceFnv(s));
      }),
      { numRuns: 2_000 },
    );
  });

  it("keeps lone surrogates apart from U+FFFD and from each other", () => {
    const ids = new Set(["\ud800", "\udc00", "\ufffd", "\ud800\udc00", "\udc00\ud800"].map(fnv1a64Hex));
    expect(ids.size).toBe(5);
  });
});

describe("signalId and clientOrderId", () => {
  it("have a readable prefix and a hash", () => {
    const sid = signalId("EUR_USD", "ema_fast", "15m", 1_700_000_100_000, "buy");
    expect(sid).toMatch(/^EUR_USD-ema_fast-15m-[0-9a-z]{8}-buy-[0-9a-f]{16}$/);
    expect(sid.split("-")[3]).toBe((1_700_000_100_000).toString(36));
    expect(clientOrderId("EUR_USD", "ema_fast", sid)).toMatch(/^EUR_USD-ema_fast-[0-9a-f]{16}$/);
  });

  it("are deterministic, short and URL-safe for any input", () => {
    fc.assert(
      fc.property(signalTupleArb, fc.string({ unit: "binary", maxLength: 200 }), ([pair, strategy, tf, t, type], foreignSignal) => {
        const sid = signalId(pair, strategy, tf, t, type);
        expect(signalId(pair, strategy, tf, t, type)).toBe(sid);
        for (const id of [sid, clientOrderId(pair, strategy, sid), clientOrderId(pair, strategy, foreignSignal)]) {
          expect(id.length).toBeLessThanOrEqual(ID_LENGTH_MAX);
          expect(id).toMatch(URL_SAFE);
          expect(encodeURIComponent(id)).toBe(id);
        }
        expect(clientOrderId(pair, strategy, sid)).toBe(clientOrderId(pair, strategy, sid));
      }),
      { numRuns: 2_000 },
    );
  });

  it("give distinct signal ids to distinct tuples", () => {
    fc.assert(
      fc.property(fc.uniqueArray(signalTupleArb, { minLength: 2, maxLength: 300, selector: (t) => JSON.stringify(t) }), (tuples) => {
        const ids = new Set(tuples.map((t) => signalId(...t)));
        expect(ids.size).toBe(tuples.length);
      }),
      { numRuns: 300 },
    );
  });

  it("give distinct client order ids to distinct tuples, never equal to a signal id", () => {
    const orderTupleArb = fc.tuple(pairArb, strategyArb, fc.oneof(strategyArb, signalTupleArb.map((t) => signalId(...t))));
    fc.assert(
      fc.property(fc.uniqueArray(orderTupleArb, { minLength: 2, maxLength: 300, selector: (t) => JSON.stringify(t) }), (tuples) => {
        const ids = tuples.map(([pair, strategy, sid]) => clientOrderId(pair, strategy, sid));
        expect(new Set(ids).size).toBe(tuples.length);
        for (const [i, [, , sid]] of tuples.entries()) expect(ids[i]).not.toBe(sid);
      }),
      { numRuns: 300 },
    );
  });

  it("do not confuse fields that shift characters across a boundary", () => {
    expect(signalId("EUR_USD", "ab", "1m", 0, "buy")).not.toBe(signalId("EUR_USDa", "b", "1m", 0, "buy"));
    expect(clientOrderId("EUR_USD", "a-b", "c")).not.toBe(clientOrderId("EUR_USD", "a", "b-c"));
    expect(clientOrderId("EUR_USD", "1:a", "b")).not.toBe(clientOrderId("EUR_USD", "1", "a1:b"));
  });

  it("stay unique over 100,000 ids whose readable parts are identical", () => {
    // Strategy ids sharing their first 16 characters: the prefix is the same, only the hash differs.
    const ids = new Set<string>();
    for (let i = 0; i < 100_000; i++) ids.add(signalId("EUR_USD", `long_shared_prefix_${i}`, "1h", 1_700_000_000_000, "buy"));
    expect(ids.size).toBe(100_000);
    const orders = new Set<string>();
    for (let i = 0; i < 100_000; i++) orders.add(clientOrderId("EUR_USD", "ema", `signal-${i}`));
    expect(orders.size).toBe(100_000);
  });
});
