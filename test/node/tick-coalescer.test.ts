import { describe, expect, it } from "vitest";
import { TickCoalescer } from "../../src/room/tick-coalescer.ts";

function harness(intervalMs: number) {
  let now = 0;
  const sent: [number, number, number][] = [];
  const timers: { at: number; fn: () => void }[] = [];
  const c = new TickCoalescer<number>(
    intervalMs,
    (item, merged) => sent.push([now, item, merged]),
    (fn, delay) => timers.push({ at: now + delay, fn }),
    () => now,
  );
  const advance = (to: number) => {
    now = to;
    for (const t of timers.splice(0).sort((a, b) => a.at - b.at)) {
      if (t.at <= to) t.fn();
      else timers.push(t);
    }
  };
  return { c, sent, advance, at: (t: number) => (now = t) };
}

describe("TickCoalescer", () => {
  it("sends the first event at once and merges the rest of the interval into one frame", () => {
    const h = harness(50);
    h.at(1000);
    h.c.push(1);
    h.at(1010);
    h.c.push(2);
    h.at(1020);
    h.c.push(3);
    expect(h.sent).toEqual([[1000, 1, 1]]);
    h.advance(1050);
    expect(h.sent).toEqual([[1000, 1, 1], [1050, 3, 2]]);
    // Quiet for longer than the interval: the next one goes out at once again.
    h.at(1200);
    h.c.push(4);
    expect(h.sent.at(-1)).toEqual([1200, 4, 1]);
  });

  it("never loses a count and never sends two frames within an interval", () => {
    const h = harness(50);
    let pushed = 0;
    for (let t = 0; t < 5_000; t += 7) {
      h.advance(t);
      h.c.push(t, 2);
      pushed += 2;
    }
    h.advance(10_000);
    expect(h.sent.reduce((s, f) => s + f[2], 0)).toBe(pushed);
    for (let i = 1; i < h.sent.length; i++) expect(h.sent[i]![0] - h.sent[i - 1]![0]).toBeGreaterThanOrEqual(50);
  });
});
