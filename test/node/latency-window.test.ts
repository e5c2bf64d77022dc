import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { LatencyWindow } from "../../src/metrics/latency-window.ts";

describe("LatencyWindow", () => {
  it("reports percentiles of the latest samples only", () => {
    const w = new LatencyWindow(100);
    expect(w.summary()).toEqual({ count: 0, p50: null, p95: null, p99: null, max: null });
    for (let i = 1; i <= 100; i++) w.record(i);
    expect(w.summary()).toMatchObject({ count: 100, p50: 51, p99: 100, max: 100 });
    for (let i = 0; i < 100; i++) w.record(1000);
    expect(w.summary()).toMatchObject({ count: 200, p50: 1000, max: 1000 });
  });

  it("percentiles are ordered and within the recorded range (property)", () => {
    fc.assert(
      fc.property(fc.array(fc.double({ min: 0, max: 1e4, noNaN: true }), { minLength: 1, maxLength: 500 }), (xs) => {
        const w = new LatencyWindow(256);
        for (const x of xs) w.record(x);
        const s = w.summary();
        expect(s.p50!).toBeLessThanOrEqual(s.p95!);
        expect(s.p95!).toBeLessThanOrEqual(s.p99!);
        expect(s.p99!).toBeLessThanOrEqual(s.max!);
      }),
    );
  });
});
