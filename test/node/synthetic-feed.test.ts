import { describe, expect, it } from "vitest";
import { isWeekendClosed } from "../../src/domain/fx-time.ts";
import { getInstrument } from "../../src/domain/instruments.ts";
import { SyntheticFeed } from "../../src/domain/synthetic-feed.ts";
import { checkTick, defaultTickRules } from "../../src/domain/tick-validation.ts";
import { toDecimal } from "../../src/domain/price.ts";

const eur = getInstrument("EUR_USD");
const WED = Date.UTC(2026, 10, 25, 13, 0, 0); // Wednesday, London/New York overlap

function run(feed: SyntheticFeed, from: number, to: number, stepMs: number) {
  const out = [];
  for (let t = from + stepMs; t <= to; t += stepMs) out.push(...feed.generate(t));
  return out;
}

describe("synthetic feed", () => {
  it("is deterministic for a seed and resumable from its state", () => {
    const a = run(new SyntheticFeed(eur, 7, "fx", WED), WED, WED + 60_000, 250);
    const b = run(new SyntheticFeed(eur, 7, "fx", WED), WED, WED + 60_000, 250);
    expect(a).toEqual(b);
    expect(a.length).toBeGreaterThan(100);
    const first = new SyntheticFeed(eur, 7, "fx", WED);
    const part1 = run(first, WED, WED + 30_000, 250);
    const resumed = new SyntheticFeed(eur, 7, "fx", WED, JSON.parse(JSON.stringify(first.state())));
    const part2 = run(resumed, WED + 30_000, WED + 60_000, 250);
    expect([...part1, ...part2]).toEqual(a);
    const other = run(new SyntheticFeed(eur, 8, "fx", WED), WED, WED + 60_000, 250);
    expect(other).not.toEqual(a);
  });

  it("produces ticks the runtime accepts, in order", () => {
    const ticks = run(new SyntheticFeed(eur, 1, "fx", WED), WED, WED + 10 * 60_000, 250);
    let lastTs = -Infinity;
    for (const t of ticks) {
      const r = checkTick(
        { ts: t.ts, bid: toDecimal(t.bid, eur), ask: toDecimal(t.ask, eur) },
        { instrument: eur, rules: defaultTickRules(eur), nowMs: WED + 10 * 60_000, lastTs, closedUntil: -Infinity },
      );
      expect(r.ok).toBe(true);
      lastTs = t.ts;
    }
  });

  it("pauses over the weekend and widens spreads around the daily roll", () => {
    const fri = Date.UTC(2026, 10, 27, 21, 30); // Friday 16:30 New York
    const feed = new SyntheticFeed(eur, 3, "fx", fri);
    const ticks = run(feed, fri, fri + 60 * 60_000, 1_000);
    expect(ticks.length).toBeGreaterThan(0);
    expect(ticks.every((t) => !isWeekendClosed(t.ts))).toBe(true);
    expect(ticks.at(-1)!.ts).toBeLessThan(Date.UTC(2026, 10, 27, 22, 0)); // closes at 17:00 New York
    const always = run(new SyntheticFeed(eur, 3, "always", fri), fri, fri + 60 * 60_000, 1_000);
    expect(always.at(-1)!.ts).toBeGreaterThan(Date.UTC(2026, 10, 27, 22, 20));

    const spread = (ts: number[]) => ts.reduce((s, x) => s + x, 0) / ts.length;
    const busy = run(new SyntheticFeed(eur, 4, "fx", WED), WED, WED + 20 * 60_000, 1_000).map((t) => t.ask - t.bid);
    const roll = Date.UTC(2026, 10, 24, 21, 55); // Tuesday 16:55 New York
    const quiet = run(new SyntheticFeed(eur, 4, "fx", roll), roll, roll + 20 * 60_000, 1_000).map((t) => t.ask - t.bid);
    expect(spread(quiet)).toBeGreaterThan(2 * spread(busy));
  });

  it("does not flood after a long sleep", () => {
    const feed = new SyntheticFeed(eur, 5, "always", WED);
    const ticks = feed.generate(WED + 24 * 3_600_000);
    expect(ticks.length).toBeLessThan(1_000);
  });
});
