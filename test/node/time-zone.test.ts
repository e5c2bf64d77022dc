import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { localToUtcMs, parseZone, zoneOffsetMs, type Zone } from "../../src/ingest/time-zone.ts";

const HOUR_MS = 3_600_000;

/** Wall clock of an instant in an IANA zone, computed independently of the module under test. */
function wallClock(timeZone: string, utcMs: number): [number, number, number, number, number, number, number] {
  const f = new Intl.DateTimeFormat("en-US", {
    timeZone, hourCycle: "h23", year: "numeric", month: "numeric", day: "numeric", hour: "numeric", minute: "numeric", second: "numeric",
  });
  const p = Object.fromEntries(f.formatToParts(utcMs).map((x) => [x.type, Number(x.value)]));
  const ms = ((utcMs % 1000) + 1000) % 1000;
  return [p["year"] ?? 0, p["month"] ?? 0, p["day"] ?? 0, p["hour"] ?? 0, p["minute"] ?? 0, p["second"] ?? 0, ms];
}

function convert(zone: Zone, wall: readonly [number, number, number, number, number, number, number]): number {
  return localToUtcMs(zone, ...wall);
}

const iso = (ms: number): string => new Date(ms).toISOString();

describe("parseZone", () => {
  it("knows EST, UTC, fixed offsets and IANA names", () => {
    expect(parseZone("EST")).toMatchObject({ kind: "fixed", offsetMs: -5 * HOUR_MS });
    expect(parseZone("utc")).toMatchObject({ kind: "fixed", offsetMs: 0 });
    expect(parseZone("+02:00")).toMatchObject({ kind: "fixed", offsetMs: 2 * HOUR_MS });
    expect(parseZone("-05:00")).toMatchObject({ kind: "fixed", offsetMs: -5 * HOUR_MS });
    expect(parseZone("+0530")).toMatchObject({ kind: "fixed", offsetMs: 5.5 * HOUR_MS });
    expect(parseZone("America/New_York")).toMatchObject({ kind: "iana", name: "America/New_York" });
  });

  it("rejects unknown names and impossible offsets", () => {
    expect(() => parseZone("Mars/Olympus_Mons")).toThrow(RangeError);
    expect(() => parseZone("+25:00")).toThrow(RangeError);
    expect(() => parseZone("")).toThrow(RangeError);
  });
});

describe("localToUtcMs", () => {
  it("EST is UTC-05:00 all year (no DST)", () => {
    const est = parseZone("EST");
    expect(iso(localToUtcMs(est, 2018, 1, 1, 17, 0, 0, 0))).toBe("2018-01-01T22:00:00.000Z");
    expect(iso(localToUtcMs(est, 2018, 7, 1, 17, 0, 0, 0))).toBe("2018-07-01T22:00:00.000Z");
    expect(iso(localToUtcMs(est, 2020, 1, 1, 17, 0, 0, 65))).toBe("2020-01-01T22:00:00.065Z");
  });

  it("America/New_York across the 2018 spring-forward (2018-03-11 02:00 EST -> 03:00 EDT)", () => {
    const ny = parseZone("America/New_York");
    expect(iso(localToUtcMs(ny, 2018, 3, 10, 17, 0, 0, 0))).toBe("2018-03-10T22:00:00.000Z");
    expect(iso(localToUtcMs(ny, 2018, 3, 11, 1, 59, 59, 999))).toBe("2018-03-11T06:59:59.999Z");
    expect(iso(localToUtcMs(ny, 2018, 3, 11, 3, 0, 0, 0))).toBe("2018-03-11T07:00:00.000Z");
    // 02:30 does not exist that day: shifted forward by the gap (= 03:30 EDT).
    expect(iso(localToUtcMs(ny, 2018, 3, 11, 2, 30, 0, 0))).toBe("2018-03-11T07:30:00.000Z");
    expect(iso(localToUtcMs(ny, 2018, 3, 12, 17, 0, 0, 0))).toBe("2018-03-12T21:00:00.000Z");
  });

  it("America/New_York across the 2018 fall-back (2018-11-04 02:00 EDT -> 01:00 EST)", () => {
    const ny = parseZone("America/New_York");
    expect(iso(localToUtcMs(ny, 2018, 11, 2, 17, 0, 0, 0))).toBe("2018-11-02T21:00:00.000Z");
    expect(iso(localToUtcMs(ny, 2018, 11, 4, 0, 59, 59, 0))).toBe("2018-11-04T04:59:59.000Z");
    // 01:30 happens twice: the first occurrence (EDT) is chosen.
    expect(iso(localToUtcMs(ny, 2018, 11, 4, 1, 30, 0, 0))).toBe("2018-11-04T05:30:00.000Z");
    expect(iso(localToUtcMs(ny, 2018, 11, 4, 2, 0, 0, 0))).toBe("2018-11-04T07:00:00.000Z");
    expect(iso(localToUtcMs(ny, 2018, 11, 5, 17, 0, 0, 0))).toBe("2018-11-05T22:00:00.000Z");
  });

  it("fixed offsets and UTC", () => {
    expect(iso(localToUtcMs(parseZone("+02:00"), 2019, 6, 1, 0, 0, 0, 0))).toBe("2019-05-31T22:00:00.000Z");
    expect(iso(localToUtcMs(parseZone("UTC"), 2019, 6, 1, 0, 0, 0, 0))).toBe("2019-06-01T00:00:00.000Z");
  });

  const ZONES = ["America/New_York", "Europe/Berlin", "Australia/Lord_Howe", "Asia/Kolkata", "America/Sao_Paulo", "UTC"];

  it("property: the zone's wall clock of an instant converts back to the instant (outside repeated hours)", () => {
    const zones = new Map(ZONES.map((z) => [z, parseZone(z)]));
    fc.assert(
      fc.property(fc.constantFrom(...ZONES), fc.integer({ min: Date.UTC(1990, 0, 1), max: Date.UTC(2035, 0, 1) }), (name, u) => {
        const zone = zones.get(name)!;
        const wall = wallClock(name, u);
        const r = convert(zone, wall);
        // The result always reads as the same wall clock ...
        expect(wallClock(name, r)).toEqual(wall);
        if (r !== u) {
          // ... and differs only for the second pass through a repeated hour, where the first is chosen.
          expect(r).toBeLessThan(u);
          expect(u - r).toBeLessThanOrEqual(HOUR_MS);
          expect(zoneOffsetMs(zone, r)).toBeGreaterThan(zoneOffsetMs(zone, u));
        }
      }),
      { numRuns: 3000 },
    );
  });

  it("property: around the 2018 New York fall-back only the second 01:xx maps to the first", () => {
    const ny = parseZone("America/New_York");
    const firstPass = Date.UTC(2018, 10, 4, 5); // 01:00 EDT
    const secondPass = Date.UTC(2018, 10, 4, 6); // 01:00 EST
    fc.assert(
      fc.property(fc.integer({ min: Date.UTC(2018, 10, 4, 3), max: Date.UTC(2018, 10, 4, 9) }), (u) => {
        const r = convert(ny, wallClock("America/New_York", u));
        const inSecondPass = u >= secondPass && u < secondPass + HOUR_MS;
        expect(r).toBe(inSecondPass ? u - HOUR_MS : u);
        if (inSecondPass) expect(r).toBeGreaterThanOrEqual(firstPass);
      }),
      { numRuns: 2000 },
    );
  });

  it("is fast enough for a year of M1 rows in an IANA zone (cached per local hour)", () => {
    const chicago = parseZone("America/Chicago");
    const start = Date.UTC(2018, 0, 1);
    const rows = 372_000;
    const started = performance.now();
    let wrong = 0;
    for (let minute = 0; minute < rows; minute++) {
      const d = new Date(start + minute * 60_000); // the wall clock, read as if UTC
      const u = localToUtcMs(chicago, d.getUTCFullYear(), d.getUTCMonth() + 1, d.getUTCDate(), d.getUTCHours(), d.getUTCMinutes(), 0, 0);
      const offsetHours = (d.getTime() - u) / HOUR_MS;
      if (offsetHours !== -6 && offsetHours !== -5) wrong++;
    }
    const elapsedMs = performance.now() - started;
    expect(wrong).toBe(0);
    expect(elapsedMs).toBeLessThan(3_000);
  });
});
