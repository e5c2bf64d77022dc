/**
 * Wall-clock time zones for history files. Data vendors stamp rows in local
 * time (histdata: "EST", LEAN FXCM: UTC-05:00, others UTC), so every parser
 * needs "this local reading in that zone -> epoch ms". Pure: no Node imports,
 * so the same code can run in a Worker. IANA zones go through
 * Intl.DateTimeFormat, which is slow (~microseconds per call), so answers are
 * cached per zone per local hour; a year of M1 bars touches ~8,800 hours.
 */

const MINUTE_MS = 60_000;
const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;

/** Cap on cached local hours per zone (about 11 years); the cache is dropped when full. */
const HOUR_CACHE_SIZE_MAX = 100_000;

export type Zone =
  | { readonly kind: "fixed"; readonly name: string; readonly offsetMs: number }
  | { readonly kind: "iana"; readonly name: string; readonly formatter: Intl.DateTimeFormat; readonly hourOffsetMs: Map<number, number> };

function fixed(name: string, offsetMs: number): Zone {
  return { kind: "fixed", name, offsetMs };
}

const FIXED_OFFSET = /^([+-])(\d{2}):?(\d{2})?$/;

/**
 * Parse a zone name: "EST" (fixed UTC-05:00 all year, histdata's documented
 * clock; note its stored 2018 files actually follow America/New_York),
 * "UTC"/"GMT"/"Z", a fixed offset "+02:00" / "-0500" / "+02", or an IANA name
 * such as "America/New_York". Throws RangeError for anything else, since a
 * wrong zone silently shifts every row.
 */
export function parseZone(name: string): Zone {
  const upper = name.toUpperCase();
  if (upper === "EST") return fixed("EST", -5 * HOUR_MS);
  if (upper === "UTC" || upper === "GMT" || upper === "Z") return fixed("UTC", 0);
  const m = FIXED_OFFSET.exec(name);
  if (m) {
    const hours = Number(m[2]);
    const minutes = Number(m[3] ?? "0");
    if (hours > 23 || minutes > 59) throw new RangeError(`bad UTC offset ${name}`);
    const sign = m[1] === "-" ? -1 : 1;
    return fixed(name, sign * (hours * HOUR_MS + minutes * MINUTE_MS));
  }
  let formatter: Intl.DateTimeFormat;
  try {
    formatter = new Intl.DateTimeFormat("en-US", {
      timeZone: name,
      hourCycle: "h23",
      year: "numeric",
      month: "numeric",
      day: "numeric",
      hour: "numeric",
      minute: "numeric",
      second: "numeric",
    });
  } catch {
    throw new RangeError(`unknown time zone ${name}`);
  }
  return { kind: "iana", name: formatter.resolvedOptions().timeZone, formatter, hourOffsetMs: new Map() };
}

/** The zone's UTC offset (ms, local minus UTC) at a UTC instant. */
export function zoneOffsetMs(zone: Zone, utcMs: number): number {
  if (zone.kind === "fixed") return zone.offsetMs;
  // Offsets are whole seconds in every tz database zone; drop the ms so the
  // formatted wall clock (which has no ms) compares exactly.
  const wholeSecondMs = Math.floor(utcMs / 1000) * 1000;
  let year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  for (const part of zone.formatter.formatToParts(wholeSecondMs)) {
    switch (part.type) {
      case "year": year = Number(part.value); break;
      case "month": month = Number(part.value); break;
      case "day": day = Number(part.value); break;
      case "hour": hour = Number(part.value); break;
      case "minute": minute = Number(part.value); break;
      case "second": second = Number(part.value); break;
      default: break;
    }
  }
  return civilMs(year, month, day, hour, minute, second, 0) - wholeSecondMs;
}

/** Epoch-like ms of a civil reading taken as if it were UTC. */
function civilMs(year: number, month1: number, day: number, hour: number, minute: number, second: number, ms: number): number {
  if (year >= 100) return Date.UTC(year, month1 - 1, day, hour, minute, second, ms);
  // Date.UTC maps years 0-99 to 1900-1999; setUTCFullYear does not.
  const d = new Date(0);
  d.setUTCFullYear(year, month1 - 1, day);
  return d.setUTCHours(hour, minute, second, ms);
}

/**
 * Offset for a local reading (ms, as-if-UTC). The offsets a day before and a
 * day after bracket any single transition; each is valid when it maps back to
 * itself. Two valid offsets = the repeated hour when clocks go back: take the
 * larger offset, which is the earlier instant (the first occurrence). No valid
 * offset = the skipped hour when clocks go forward: use the offset from before
 * the jump, which moves the reading forward by the jump (as Temporal's
 * "compatible" disambiguation does: 02:30 New York on spring day -> 03:30 EDT).
 */
function offsetForLocal(zone: Zone, localMs: number): { offsetMs: number; unique: boolean } {
  const before = zoneOffsetMs(zone, localMs - DAY_MS);
  const after = zoneOffsetMs(zone, localMs + DAY_MS);
  const beforeValid = zoneOffsetMs(zone, localMs - before) === before;
  if (before === after) {
    // No transition nearby (or one that went there and back, not seen in real zones).
    return { offsetMs: before, unique: beforeValid };
  }
  const afterValid = zoneOffsetMs(zone, localMs - after) === after;
  if (beforeValid && afterValid) return { offsetMs: Math.max(before, after), unique: false };
  if (beforeValid) return { offsetMs: before, unique: true };
  if (afterValid) return { offsetMs: after, unique: true };
  return { offsetMs: before, unique: false };
}

/**
 * Convert a wall-clock reading in `zone` to epoch ms UTC. Fields are not
 * validated here (the parsers do that); out-of-range fields roll over as in
 * Date.UTC. Ambiguous readings (the repeated hour when DST ends) resolve to
 * the first occurrence; readings in the skipped hour shift forward by the gap.
 */
export function localToUtcMs(
  zone: Zone,
  year: number,
  month1: number,
  day: number,
  hour: number,
  minute: number,
  second: number,
  ms: number,
): number {
  const localMs = civilMs(year, month1, day, hour, minute, second, ms);
  if (zone.kind === "fixed") return localMs - zone.offsetMs;
  const hourKey = Math.floor(localMs / HOUR_MS);
  const cached = zone.hourOffsetMs.get(hourKey);
  if (cached !== undefined) return localMs - cached;
  const start = offsetForLocal(zone, hourKey * HOUR_MS);
  const end = offsetForLocal(zone, hourKey * HOUR_MS + HOUR_MS - 1);
  // Cache only hours with one unambiguous offset throughout; a transition hour
  // (rare: a few per year) is answered exactly for each reading.
  if (start.unique && end.unique && start.offsetMs === end.offsetMs) {
    if (zone.hourOffsetMs.size >= HOUR_CACHE_SIZE_MAX) zone.hourOffsetMs.clear();
    zone.hourOffsetMs.set(hourKey, start.offsetMs);
    return localMs - start.offsetMs;
  }
  return localMs - offsetForLocal(zone, localMs).offsetMs;
}
