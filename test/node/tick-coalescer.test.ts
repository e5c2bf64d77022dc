import { describe, expect, it } from "vitest";
import { coalesceWindowMs, TickCoalescer } from "../../src/room/tick-coalescer.ts";

function harness(intervalMs: number | (() => number)) {
  let now = 0;
  const sent: [number, number, number][] = [];
  const timers: { at: number; fn: () => void }[] = [];
  const c = new TickCoalescer<number>(
    typeof intervalMs === "number" ? () => intervalMs : intervalMs,
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

describe("coalesceWindowMs", () => {
  it("is the configured window until the room's sends would not fit in it, then 75 us a client", () => {
    expect(coalesceWindowMs(10, 0)).toBe(10);
    expect(coalesceWindowMs(10, 133)).toBe(10);
    expect(coalesceWindowMs(10, 200)).toBe(15);
    expect(coalesceWindowMs(10, 500)).toBe(37.5);
    expect(coalesceWindowMs(0, 1)).toBeCloseTo(0.075);
    expect(coalesceWindowMs(50, 500)).toBe(50);
  });

  it("a coalescer asks for its window at every event: a room that grew merges over the wider window", () => {
    let clients = 10;
    const h = harness(() => coalesceWindowMs(10, clients));
    h.at(1000);
    h.c.push(1);
    h.at(1012);
    h.c.push(2); // 12 ms later: a 10-client room sends at once
    expect(h.sent).toEqual([[1000, 1, 1], [1012, 2, 1]]);
    clients = 500;
    h.at(1030);
    h.c.push(3); // 18 ms later: a 500-client room waits until 37.5 ms after its last frame
    expect(h.sent).toHaveLength(2);
    h.advance(1049.5);
    expect(h.sent.at(-1)).toEqual([1049.5, 3, 1]);
  });
});
