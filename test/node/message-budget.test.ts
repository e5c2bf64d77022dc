import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { MessageBudget } from "../../src/room/message-budget.ts";

describe("MessageBudget", () => {
  it("lets each connection send its limit in a second, refuses the rest, and starts again the next second", () => {
    const budget = new MessageBudget<object>(3);
    const a = {};
    const b = {};
    const t = 1_700_000_000_000;
    expect([1, 2, 3, 4].map(() => budget.take(a, t + 10))).toEqual([true, true, true, false]);
    expect(budget.take(b, t + 999)).toBe(true); // per connection
    expect(budget.take(a, t + 999)).toBe(false);
    expect(budget.take(a, t + 1_000)).toBe(true);
  });

  it("never allows more than the limit within one second, whatever the arrival times", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 20 }), fc.array(fc.integer({ min: 0, max: 5_000 }), { maxLength: 300 }), (limit, offsets) => {
        const budget = new MessageBudget<object>(limit);
        const key = {};
        const allowed = new Map<number, number>();
        for (const ms of [...offsets].sort((x, y) => x - y)) {
          if (budget.take(key, ms)) allowed.set(Math.floor(ms / 1000), (allowed.get(Math.floor(ms / 1000)) ?? 0) + 1);
        }
        for (const n of allowed.values()) expect(n).toBeLessThanOrEqual(limit);
        // And it refuses nothing needlessly: every second got min(limit, arrivals).
        const arrivals = new Map<number, number>();
        for (const ms of offsets) arrivals.set(Math.floor(ms / 1000), (arrivals.get(Math.floor(ms / 1000)) ?? 0) + 1);
        for (const [second, n] of arrivals) expect(allowed.get(second) ?? 0).toBe(Math.min(limit, n));
      }),
    );
  });
});
