import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { intentForSignal } from "../../src/domain/trading/signal-intent.ts";
import type { Signal } from "../../src/domain/trading/types.ts";

const signal = (type: Signal["type"]): Signal => ({
  id: `sig-${type}`, pair: "EUR_USD", strategyId: "s", type, confidence: 1, reason: "", timeframe: "1h",
  candleT: 0, ts: 3_600_000, stopLoss: 109_000, metadata: {},
});

describe("intentForSignal", () => {
  it("opens, reverses, closes, or does nothing", () => {
    expect(intentForSignal(signal("buy"), 0, 10_000)).toMatchObject({ side: "buy", units: 10_000, reduceOnly: false, stopLoss: 109_000 });
    expect(intentForSignal(signal("sell"), 10_000, 10_000)).toMatchObject({ side: "sell", units: 20_000, reduceOnly: false });
    expect(intentForSignal(signal("close"), -10_000, 10_000)).toMatchObject({ side: "buy", units: 10_000, reduceOnly: true });
    expect(intentForSignal(signal("close"), -10_000, 10_000)?.stopLoss).toBeUndefined();
    expect(intentForSignal(signal("buy"), 10_000, 10_000)).toBeNull();
    expect(intentForSignal(signal("close"), 0, 10_000)).toBeNull();
    expect(intentForSignal(signal("buy"), 30_000, 10_000)).toMatchObject({ side: "sell", units: 20_000, reduceOnly: true });
  });

  it("always lands the strategy exactly on its target, with a stable client order id", () => {
    fc.assert(
      fc.property(fc.constantFrom("buy", "sell", "close" as const), fc.integer({ min: -1e6, max: 1e6 }), fc.integer({ min: 1, max: 1e6 }), (type, current, units) => {
        const intent = intentForSignal(signal(type), current, units);
        const target = type === "buy" ? units : type === "sell" ? -units : 0;
        const after = current + (intent ? (intent.side === "buy" ? intent.units : -intent.units) : 0);
        expect(after).toBe(target);
        if (intent) {
          expect(intent.reduceOnly).toBe(Math.abs(target) < Math.abs(current) && (target === 0 || Math.sign(target) === Math.sign(current)));
          expect(intentForSignal(signal(type), current, units)?.clientOrderId).toBe(intent.clientOrderId);
        }
      }),
    );
  });
});
