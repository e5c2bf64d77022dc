import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { mergeCandle, TIMEFRAMES, type Candle, type Tick, type Timeframe } from "../../src/domain/candle.ts";
import { CandleAggregator, type ClosedCandle } from "../../src/domain/candle-aggregator.ts";
import { bucketStart } from "../../src/domain/fx-time.ts";
import { parseZone, zoneOffsetMs } from "../../src/ingest/time-zone.ts";

const MINUTE_MS = 60_000;
const HOUR_MS = 3_600_000;
const NEW_YORK = parseZone("America/New_York");
const iso = (ms: number): string => new Date(ms).toISOString();

/** New York wall clock (Intl-backed, independent of fx-time's own DST rules), as a UTC-read Date. */
function newYorkWall(utcMs: number): Date {
  return new Date(utcMs + zoneOffsetMs(NEW_YORK, utcMs));
}

function isNewYorkWeekend(utcMs: number): boolean {
  const d = newYorkWall(utcMs);
  const day = d.getUTCDay();
  return day === 6 || (day === 5 && d.getUTCHours() >= 17) || (day === 0 && d.getUTCHours() < 17);
}

/**
 * Reference bucket start, from the New York wall clock: the FX day opens at
 * 17:00 local; 4h buckets are 17, 21, 01, 05, 09, 13 local. (Valid on trading
 * days; DST switches happen on weekends.)
 */
function referenceBucketStart(tf: Timeframe, utcMs: number): number {
  switch (tf) {
    case "1m": return Math.floor(utcMs / MINUTE_MS) * MINUTE_MS;
    case "5m": return Math.floor(utcMs / (5 * MINUTE_MS)) * 5 * MINUTE_MS;
    case "15m": return Math.floor(utcMs / (15 * MINUTE_MS)) * 15 * MINUTE_MS;
    case "1h": return Math.floor(utcMs / HOUR_MS) * HOUR_MS;
    case "4h":
    case "1D": {
      const wall = newYorkWall(utcMs);
      const hoursSinceRoll = (wall.getUTCHours() + 24 - 17) % 24;
      const slotHours = tf === "1D" ? 0 : Math.floor(hoursSinceRoll / 4) * 4;
      const startWallMs = Date.UTC(wall.getUTCFullYear(), wall.getUTCMonth(), wall.getUTCDate(), wall.getUTCHours() - hoursSinceRoll + slotHours);
      // A trading-day wall clock has one offset all day (no DST switch on trading days).
      return startWallMs - zoneOffsetMs(NEW_YORK, utcMs);
    }
  }
}

interface StreamSpec {
  startMs: number;
  steps: { gapMs: number; bidStep: number; spread: number; clockFraction: number | null }[];
}

const streamArb: fc.Arbitrary<StreamSpec> = fc.record({
  startMs: fc.oneof(
    fc.integer({ min: Date.UTC(2005, 0, 1), max: Date.UTC(2020, 0, 1) }),
    // Within four days before a New York DST switch (old and post-2007 US rules), so streams cross it.
    fc
      .tuple(fc.constantFrom("2006-04-02", "2006-10-29", "2018-03-11", "2018-11-04", "2019-03-10", "2019-11-03"), fc.integer({ min: 0, max: 4 * 24 * HOUR_MS }))
      .map(([day, back]) => Date.parse(`${day}T12:00:00Z`) - back),
  ),
  steps: fc.array(
    fc.record({
      gapMs: fc.oneof(
        { weight: 10, arbitrary: fc.integer({ min: 0, max: 20_000 }) },
        { weight: 3, arbitrary: fc.integer({ min: 0, max: 20 * MINUTE_MS }) },
        { weight: 1, arbitrary: fc.integer({ min: 0, max: 3 * 24 * HOUR_MS }) },
      ),
      bidStep: fc.integer({ min: -30, max: 30 }),
      spread: fc.integer({ min: 0, max: 40 }),
      // Sometimes the actor's clock fires between ticks: a fraction of the gap to the next tick.
      clockFraction: fc.option(fc.double({ min: 0, max: 1, noNaN: true }), { nil: null }),
    }),
    { minLength: 1, maxLength: 400, size: "large" },
  ),
});

type Event = { kind: "tick"; tick: Tick } | { kind: "clock"; nowMs: number };

function buildEvents(spec: StreamSpec): Event[] {
  const events: Event[] = [];
  let ts = spec.startMs;
  let bid = 110_000;
  for (const step of spec.steps) {
    const next = ts + step.gapMs;
    if (step.clockFraction !== null) events.push({ kind: "clock", nowMs: ts + Math.floor(step.clockFraction * step.gapMs) });
    ts = next;
    bid += step.bidStep;
    events.push({ kind: "tick", tick: { ts, bid, ask: bid + step.spread } });
  }
  return events;
}

function run(agg: CandleAggregator, events: readonly Event[]): ClosedCandle[] {
  const out: ClosedCandle[] = [];
  for (const e of events) out.push(...(e.kind === "tick" ? agg.onTick(e.tick) : agg.closeDue(e.nowMs)));
  return out;
}

function runAll(events: readonly Event[]): ClosedCandle[] {
  const agg = new CandleAggregator();
  return run(agg, events).concat(agg.closeDue(Number.POSITIVE_INFINITY));
}

function byTf(closed: readonly ClosedCandle[], tf: Timeframe): Candle[] {
  return closed.filter((c) => c.tf === tf).map((c) => c.candle);
}

/** Merge 1m candles into buckets given by `startOf`, in order. */
function mergeInto(oneMinute: readonly Candle[], startOf: (t: number) => number): Candle[] {
  const out: Candle[] = [];
  for (const m of oneMinute) {
    const start = startOf(m.t);
    const last = out[out.length - 1];
    if (last && last.t === start) mergeCandle(last, m);
    else out.push({ ...m, t: start });
  }
  return out;
}

describe("CandleAggregator: 1m from ticks, higher timeframes from 1m", () => {
  it("property: 1m candles equal a naive per-minute aggregation of the ticks", () => {
    fc.assert(
      fc.property(streamArb, (spec) => {
        const events = buildEvents(spec);
        const ticks = events.flatMap((e) => (e.kind === "tick" ? [e.tick] : []));
        const expected: Candle[] = [];
        for (const k of ticks) {
          const t = Math.floor(k.ts / MINUTE_MS) * MINUTE_MS;
          const last = expected[expected.length - 1];
          if (last && last.t === t) {
            mergeCandle(last, { t, bo: k.bid, bh: k.bid, bl: k.bid, bc: k.bid, ao: k.ask, ah: k.ask, al: k.ask, ac: k.ask, n: 1 });
          } else {
            expected.push({ t, bo: k.bid, bh: k.bid, bl: k.bid, bc: k.bid, ao: k.ask, ah: k.ask, al: k.ask, ac: k.ask, n: 1 });
          }
        }
        expect(byTf(runAll(events), "1m")).toEqual(expected);
      }),
      { numRuns: 300 },
    );
  });

  it("property: every 5m/15m/1h/4h/1D candle is the merge of its 1m candles (fx-time buckets, weekends included)", () => {
    fc.assert(
      fc.property(streamArb, (spec) => {
        const closed = runAll(buildEvents(spec));
        const oneMinute = byTf(closed, "1m");
        for (const tf of TIMEFRAMES) {
          expect(byTf(closed, tf)).toEqual(mergeInto(oneMinute, (t) => bucketStart(tf, t)));
        }
      }),
      { numRuns: 300 },
    );
  });

  it("property: on trading days buckets follow the New York clock (Intl reference: 1D at 17:00, 4h at 17/21/01/05/09/13)", () => {
    fc.assert(
      fc.property(streamArb, (spec) => {
        const events = buildEvents(spec).filter((e) => e.kind === "clock" || !isNewYorkWeekend(e.tick.ts));
        const closed = runAll(events);
        const oneMinute = byTf(closed, "1m");
        for (const tf of TIMEFRAMES) {
          expect(byTf(closed, tf)).toEqual(mergeInto(oneMinute, (t) => referenceBucketStart(tf, t)));
        }
      }),
      { numRuns: 300 },
    );
  });

  it("1D candles start at 17:00 New York: 22:00Z in winter, 21:00Z in summer", () => {
    const winter = new CandleAggregator();
    winter.onTick({ ts: Date.parse("2018-01-10T12:00:00Z"), bid: 1, ask: 2 });
    expect(iso(winter.current("1D")!.t)).toBe("2018-01-09T22:00:00.000Z");
    const summer = new CandleAggregator();
    summer.onTick({ ts: Date.parse("2018-07-11T12:00:00Z"), bid: 1, ask: 2 });
    expect(iso(summer.current("1D")!.t)).toBe("2018-07-10T21:00:00.000Z");
    // The roll itself: 21:59:59.999Z is still the old winter day, 22:00Z the new one.
    const roll = new CandleAggregator();
    roll.onTick({ ts: Date.parse("2018-01-10T21:59:59.999Z"), bid: 1, ask: 2 });
    const closed = roll.onTick({ ts: Date.parse("2018-01-10T22:00:00Z"), bid: 1, ask: 2 });
    expect(closed.filter((c) => c.tf === "1D").map((c) => iso(c.candle.t))).toEqual(["2018-01-09T22:00:00.000Z"]);
    expect(iso(roll.current("1D")!.t)).toBe("2018-01-10T22:00:00.000Z");
  });

  it.each([
    ["winter", "2018-01-08T22:00:00Z"],
    ["summer", "2018-07-09T21:00:00Z"],
  ])("4h buckets start at 17/21/01/05/09/13 New York (%s)", (_season, dayStartIso) => {
    const dayStart = Date.parse(dayStartIso);
    const agg = new CandleAggregator();
    const closed: ClosedCandle[] = [];
    for (let ts = dayStart; ts < dayStart + 24 * HOUR_MS; ts += 30 * MINUTE_MS) closed.push(...agg.onTick({ ts, bid: 100, ask: 101 }));
    closed.push(...agg.closeDue(dayStart + 24 * HOUR_MS));
    const fourHour = byTf(closed, "4h");
    expect(fourHour.map((c) => newYorkWall(c.t).getUTCHours())).toEqual([17, 21, 1, 5, 9, 13]);
    expect(fourHour.map((c) => c.t - dayStart)).toEqual([0, 4, 8, 12, 16, 20].map((h) => h * HOUR_MS));
    expect(fourHour.every((c) => c.n === 8)).toBe(true);
    expect(byTf(closed, "1D")).toHaveLength(1);
    expect(byTf(closed, "1D")[0]!.t).toBe(dayStart);
  });

  it("reads a state persisted in the older shape (the open minute, and each higher period's closed minutes) as the same open candles", () => {
    const minute = (t: string, bid: number): Candle => ({ t: Date.parse(t), bo: bid, bh: bid, bl: bid, bc: bid, ao: bid + 1, ah: bid + 1, al: bid + 1, ac: bid + 1, n: 1 });
    // Ticks at 10:04 and 10:05 UTC: the 10:04 minute closed into the higher periods, 10:05 open.
    const fresh = new CandleAggregator();
    fresh.onTick({ ts: Date.parse("2018-01-10T10:04:10Z"), bid: 100, ask: 101 });
    fresh.onTick({ ts: Date.parse("2018-01-10T10:05:10Z"), bid: 103, ask: 104 });
    const higherOf = (tf: Timeframe): Candle => ({ ...minute("2018-01-10T10:04:00Z", 100), t: fresh.current(tf)!.t });
    const older = new CandleAggregator({
      base: minute("2018-01-10T10:05:00Z", 103),
      higher: { "15m": higherOf("15m"), "1h": higherOf("1h"), "4h": higherOf("4h"), "1D": higherOf("1D") },
      closedUntil: Date.parse("2018-01-10T10:05:00Z"),
    });
    for (const tf of TIMEFRAMES) expect(older.current(tf), tf).toEqual(fresh.current(tf));
    expect(older.closedUntil).toBe(fresh.closedUntil);
    expect(older.closeDue(Number.POSITIVE_INFINITY)).toEqual(fresh.closeDue(Number.POSITIVE_INFINITY));
  });

  it("closes a higher period an older-shape state held past its end (a 4h part of 21:00Z kept beyond the DST fall-back roll)", () => {
    const minute = (t: string, bid: number): Candle => ({ t: Date.parse(t), bo: bid, bh: bid, bl: bid, bc: bid, ao: bid + 2, ah: bid + 2, al: bid + 2, ac: bid + 2, n: 1 });
    // 2021-11-07: New York left summer time; the FX day, and a 4h candle, begin at 22:00Z. The older
    // release ended the 21:00Z 4h candle at 01:00Z, so its state at 22:01 still held it as a part.
    const stale = { ...minute("2021-11-07T21:10:00Z", 100_000), t: Date.parse("2021-11-07T21:00:00Z") };
    const agg = new CandleAggregator({ base: minute("2021-11-07T22:01:00Z", 100_002), higher: { "4h": stale }, closedUntil: Date.parse("2021-11-07T22:01:00Z") });
    const closed = agg.onTick({ ts: Date.parse("2021-11-08T03:00:00Z"), bid: 100_003, ask: 100_005 });
    expect(closed.filter((c) => c.tf === "4h").map((c) => [iso(c.candle.t), c.candle.n])).toEqual([
      ["2021-11-07T21:00:00.000Z", 1],
      ["2021-11-07T22:00:00.000Z", 1],
    ]);
  });

  it("writes a state the previous release can read (it looks up base and higher[tf]): a rollback restarts the open candles instead of failing", () => {
    const agg = new CandleAggregator();
    agg.onTick({ ts: Date.parse("2024-01-03T10:00:05Z"), bid: 100, ask: 102 });
    const persisted = JSON.parse(JSON.stringify(agg.state())) as { base: unknown; higher: Record<string, unknown>; open: Record<string, unknown> };
    expect(persisted.base).toBeNull();
    expect(TIMEFRAMES.map((tf) => persisted.higher[tf])).toEqual(TIMEFRAMES.map(() => undefined));
    expect(Object.keys(persisted.open)).toEqual([...TIMEFRAMES]);
  });

  it("fabricates nothing across a weekend gap", () => {
    const agg = new CandleAggregator();
    const friday = Date.parse("2018-01-12T21:59:30Z"); // 16:59:30 New York
    const sunday = Date.parse("2018-01-14T22:00:05Z"); // 17:00:05 New York
    expect(agg.onTick({ ts: friday, bid: 100, ask: 101 })).toEqual([]);
    const closed = agg.onTick({ ts: sunday, bid: 102, ask: 103 });
    expect(closed.map((c) => [c.tf, iso(c.candle.t)])).toEqual([
      ["1m", "2018-01-12T21:59:00.000Z"],
      ["5m", "2018-01-12T21:55:00.000Z"],
      ["15m", "2018-01-12T21:45:00.000Z"],
      ["1h", "2018-01-12T21:00:00.000Z"],
      ["4h", "2018-01-12T18:00:00.000Z"],
      ["1D", "2018-01-11T22:00:00.000Z"],
    ]);
    const after = agg.closeDue(Number.POSITIVE_INFINITY);
    expect(after.map((c) => [c.tf, iso(c.candle.t)])).toEqual([
      ["1m", "2018-01-14T22:00:00.000Z"],
      ["5m", "2018-01-14T22:00:00.000Z"],
      ["15m", "2018-01-14T22:00:00.000Z"],
      ["1h", "2018-01-14T22:00:00.000Z"],
      ["4h", "2018-01-14T22:00:00.000Z"],
      ["1D", "2018-01-14T22:00:00.000Z"],
    ]);
    expect([...closed, ...after].every((c) => c.candle.n === 1)).toBe(true);
  });

  it("closeDue closes each timeframe exactly at its end with no further tick", () => {
    const agg = new CandleAggregator();
    const ts = Date.parse("2018-01-10T10:00:30Z"); // 05:00:30 New York: 4h bucket 05-09, day from 17:00 on the 9th
    agg.onTick({ ts, bid: 100, ask: 101 });
    const at = (isoText: string): string[] => agg.closeDue(Date.parse(isoText)).map((c) => `${c.tf}@${iso(c.candle.t)}`);
    expect(agg.nextCloseAt()).toBe(Date.parse("2018-01-10T10:01:00Z"));
    expect(at("2018-01-10T10:00:59.999Z")).toEqual([]);
    expect(at("2018-01-10T10:01:00Z")).toEqual(["1m@2018-01-10T10:00:00.000Z"]);
    expect(agg.nextCloseAt()).toBe(Date.parse("2018-01-10T10:05:00Z"));
    expect(at("2018-01-10T10:04:59.999Z")).toEqual([]);
    expect(at("2018-01-10T10:05:00Z")).toEqual(["5m@2018-01-10T10:00:00.000Z"]);
    expect(at("2018-01-10T10:15:00Z")).toEqual(["15m@2018-01-10T10:00:00.000Z"]);
    expect(at("2018-01-10T10:59:59.999Z")).toEqual([]);
    expect(at("2018-01-10T11:00:00Z")).toEqual(["1h@2018-01-10T10:00:00.000Z"]);
    expect(at("2018-01-10T14:00:00Z")).toEqual(["4h@2018-01-10T10:00:00.000Z"]);
    expect(at("2018-01-10T21:59:59.999Z")).toEqual([]);
    expect(at("2018-01-10T22:00:00Z")).toEqual(["1D@2018-01-09T22:00:00.000Z"]);
    expect(agg.nextCloseAt()).toBeUndefined();
    expect(agg.closedUntil).toBe(Date.parse("2018-01-10T10:01:00Z"));
  });

  it("property: restoring from state() (JSON round trip) mid-stream gives identical output", () => {
    fc.assert(
      fc.property(streamArb, fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 4 }), (spec, cutFractions) => {
        const events = buildEvents(spec);
        const expected = runAll(events);
        const cuts = [...new Set(cutFractions.map((f) => Math.floor(f * events.length)))].sort((a, b) => a - b);
        let agg = new CandleAggregator();
        const got: ClosedCandle[] = [];
        let from = 0;
        for (const cut of [...cuts, events.length]) {
          got.push(...run(agg, events.slice(from, cut)));
          from = cut;
          // Persisted as JSON by the actor: -Infinity becomes null and must still restore.
          agg = new CandleAggregator(JSON.parse(JSON.stringify(agg.state())));
        }
        got.push(...agg.closeDue(Number.POSITIVE_INFINITY));
        expect(got).toEqual(expected);
      }),
      { numRuns: 300 },
    );
  });
});
