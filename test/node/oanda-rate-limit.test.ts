/**
 * The client-side limiter for OANDA's published limits (rate-limit.ts), on a
 * fake clock: at most the limit in any 1.25 s (so in any second at OANDA,
 * up to 0.25 s of delay included), an idle runtime's order granted at once,
 * a call that would wait too long refused without taking a slot, and the
 * pause after a 429 (Retry-After, else 1 s doubling to 30 s).
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { NEW_CONNECTIONS_PER_SECOND, RateLimiter, REST_REQUESTS_PER_SECOND, retryAfterMs } from "../../src/broker/oanda/rate-limit.ts";

describe("rate limiter", () => {
  it("never grants more than the limit in any second, however the calls come", () => {
    fc.assert(
      fc.property(fc.constantFrom(REST_REQUESTS_PER_SECOND, NEW_CONNECTIONS_PER_SECOND), fc.array(fc.integer({ min: 0, max: 50 }), { minLength: 1, maxLength: 400 }), (limit, gaps) => {
        let now = 0;
        const limiter = new RateLimiter(limit, () => now);
        const granted: number[] = [];
        for (const gap of gaps) {
          now += gap;
          const wait = limiter.reserve(Number.POSITIVE_INFINITY)!;
          expect(wait).toBeGreaterThanOrEqual(0);
          granted.push(now + wait);
        }
        for (let i = 0; i < granted.length; i++) {
          // Any 1.25 s here, so any second at OANDA with up to 0.25 s of delay on the way.
          const inWindow = granted.filter((t) => t >= granted[i]! && t < granted[i]! + 1_250).length;
          expect(inWindow).toBeLessThanOrEqual(limit);
          if (i > 0) expect(granted[i]!).toBeGreaterThanOrEqual(granted[i - 1]!);
        }
      }),
    );
  });

  it("refuses a call that would wait past its bound, and the refusal takes no slot", () => {
    let now = 0;
    const limiter = new RateLimiter(2, () => now);
    expect(limiter.reserve(0)).toBe(0);
    expect(limiter.reserve(0)).toBeNull();
    expect(limiter.reserve(1_000)).toBe(625);
    now = 1_250;
    expect(limiter.reserve(0)).toBe(0);
  });

  it("grants an order's two calls (the lookup, then the order) at once at a trader's pace, and spaces a flood", () => {
    let now = 0;
    const limiter = new RateLimiter(REST_REQUESTS_PER_SECOND, () => now);
    for (let order = 0; order < 50; order++) {
      now += 40;
      expect([limiter.reserve(0), limiter.reserve(0)]).toEqual([0, 0]);
    }
    // 30 calls at one instant: the burst allowance (a tenth of the limit) and the first even slot at once, then spaced.
    const waits = Array.from({ length: 30 }, () => limiter.reserve(Number.POSITIVE_INFINITY)!);
    expect(waits.filter((w) => w === 0).length).toBeLessThanOrEqual(11);
    expect(waits.at(-1)).toBeGreaterThan(200);
  });

  it("pauses every call after a 429: 1 s doubling to 30 s, a longer Retry-After honoured up to 60 s, reset once a call passes", () => {
    let now = 0;
    const limiter = new RateLimiter(100, () => now);
    expect([1, 2, 3, 4, 5, 6, 7].map(() => limiter.throttled(null))).toEqual([1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000]);
    limiter.passed();
    expect(limiter.throttled(5_000)).toBe(5_000);
    expect(limiter.throttled(3_600_000)).toBe(60_000);
    now = 10_000;
    expect(limiter.reserve(Number.POSITIVE_INFINITY)).toBe(50_000);
  });

  it("reads Retry-After as seconds or an HTTP date, and nothing else", () => {
    expect(retryAfterMs("2")).toBe(2_000);
    expect(retryAfterMs("Wed, 21 Oct 2026 07:28:05 GMT", Date.parse("2026-10-21T07:28:00Z"))).toBe(5_000);
    expect(retryAfterMs(null)).toBeNull();
    expect(retryAfterMs("soon")).toBeNull();
    expect(retryAfterMs("")).toBeNull();
  });

  it("wants a positive whole limit", () => {
    for (const bad of [0, -1, 1.5, Number.NaN]) expect(() => new RateLimiter(bad)).toThrow();
  });
});
