import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { getInstrument } from "../../src/domain/instruments.ts";
import { checkTick, defaultTickRules, type TickContext } from "../../src/domain/tick-validation.ts";

const eur = getInstrument("EUR_USD");
const NOW = Date.UTC(2026, 10, 25, 12);
const ctx: TickContext = { instrument: eur, rules: defaultTickRules(eur), nowMs: NOW, lastTs: NOW - 10_000, closedUntil: NOW - 60_000 };

describe("checkTick", () => {
  it("accepts a normal tick and converts it to points", () => {
    expect(checkTick({ ts: NOW, bid: 1.08501, ask: 1.08511 }, ctx)).toEqual({ ok: true, tick: { ts: NOW, bid: 108_501, ask: 108_511 } });
  });

  it("gives each rejection its typed reason", () => {
    const reason = (t: { ts: number; bid: number; ask: number }, c: TickContext = ctx) => {
      const r = checkTick(t, c);
      return r.ok ? "ok" : r.reason.type;
    };
    expect(reason({ ts: NOW, bid: Number.NaN, ask: 1.1 })).toBe("invalid_price");
    expect(reason({ ts: NOW, bid: 1.1, ask: Number.POSITIVE_INFINITY })).toBe("invalid_price");
    expect(reason({ ts: NOW, bid: -1.1, ask: 1.1 })).toBe("invalid_price");
    expect(reason({ ts: NOW, bid: 0, ask: 1.1 })).toBe("invalid_price");
    expect(reason({ ts: NOW, bid: 1.1002, ask: 1.1001 })).toBe("crossed");
    expect(reason({ ts: NOW, bid: 1.1, ask: 1.1051 })).toBe("spread_too_wide");
    expect(reason({ ts: NOW + 5_001, bid: 1.1, ask: 1.1001 })).toBe("future_timestamp");
    expect(reason({ ts: NOW + 5_000, bid: 1.1, ask: 1.1001 })).toBe("ok");
    expect(reason({ ts: NOW - 10_001, bid: 1.1, ask: 1.1001 })).toBe("out_of_order");
    expect(reason({ ts: NOW - 10_000, bid: 1.1, ask: 1.1001 })).toBe("ok"); // equal timestamps are valid
    expect(reason({ ts: NOW - 70_000, bid: 1.1, ask: 1.1001 }, { ...ctx, lastTs: -Infinity })).toBe("candle_closed");
    expect(reason({ ts: NOW, bid: 1.1, ask: 1.1 })).toBe("ok"); // locked quotes pass
  });

  it("lets real off-hours spreads through by default (10 pips on EUR_USD)", () => {
    expect(checkTick({ ts: NOW, bid: 1.1, ask: 1.101 }, ctx).ok).toBe(true);
    const tight = { ...ctx, rules: { ...ctx.rules, maxSpreadPips: 5 } };
    expect(checkTick({ ts: NOW, bid: 1.1, ask: 1.101 }, tight).ok).toBe(false);
  });

  it("never accepts a crossed or non-positive quote (property)", () => {
    fc.assert(
      fc.property(fc.double({ noNaN: false }), fc.double({ noNaN: false }), (bid, ask) => {
        const r = checkTick({ ts: NOW, bid, ask }, ctx);
        if (r.ok) {
          expect(r.tick.bid).toBeGreaterThan(0);
          expect(r.tick.ask).toBeGreaterThanOrEqual(r.tick.bid);
          expect(Number.isInteger(r.tick.bid) && Number.isInteger(r.tick.ask)).toBe(true);
        }
      }),
      { numRuns: 5_000 },
    );
  });
});
