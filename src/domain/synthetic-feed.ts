import type { Tick } from "./candle.ts";
import { isWeekendClosed, newYorkOffsetMs } from "./fx-time.ts";
import { pointsPerPip, type Instrument } from "./instruments.ts";
import { hashSeed, SeededRandom } from "./random.ts";

/** Where each pair's random walk starts, in decimal price (roughly late-2026 levels). */
const START_MID: Readonly<Record<string, number>> = {
  EUR_USD: 1.085, USD_JPY: 151.2, GBP_USD: 1.27, AUD_USD: 0.655, USD_CHF: 0.885,
  USD_CAD: 1.37, EUR_JPY: 164.1, GBP_JPY: 192.0, NZD_USD: 0.6, EUR_GBP: 0.855,
};

export interface SyntheticFeedState {
  rng: number;
  /** Mid price in points, as a float: the walk itself is continuous, quotes are rounded. */
  mid: number;
  /** Volatility regime: 0 calm, 1 normal, 2 stressed. */
  regime: number;
  lastTs: number;
}

/** Longest stretch generated in one call; a feed that slept longer resumes with a gap, not a flood. */
export const FEED_MAX_CATCH_UP_MS = 60_000;

const REGIME_VOL_PIPS_PER_SQRT_S = [0.05, 0.12, 0.35];
const REGIME_SWITCH_PER_S = 1 / 1800;

/**
 * A seeded, resumable tick generator that looks like FX: a random-walk mid
 * with volatility regimes, tick rates and spreads that follow the sessions
 * (busy in London/New York, thin and wide around the 17:00 New York roll), and
 * no ticks while the market is closed for the weekend (when `hours` is "fx").
 */
export class SyntheticFeed {
  private readonly rng: SeededRandom;
  private mid: number;
  private regime: number;
  private lastTs: number;

  constructor(
    private readonly instrument: Instrument,
    seed: number,
    private readonly hours: "fx" | "always",
    startMs: number,
    state?: SyntheticFeedState,
  ) {
    this.rng = new SeededRandom(state?.rng ?? hashSeed(seed, instrument.symbol));
    this.mid = state?.mid ?? (START_MID[instrument.symbol] ?? 1) * 10 ** instrument.displayPrecision;
    this.regime = state?.regime ?? 1;
    this.lastTs = state?.lastTs ?? startMs;
  }

  state(): SyntheticFeedState {
    return { rng: this.rng.state, mid: this.mid, regime: this.regime, lastTs: this.lastTs };
  }

  /** Ticks stamped in (lastTs, untilMs], in time order, prices in points. */
  generate(untilMs: number): Tick[] {
    if (untilMs - this.lastTs > FEED_MAX_CATCH_UP_MS) this.lastTs = untilMs - FEED_MAX_CATCH_UP_MS;
    const ticks: Tick[] = [];
    const pip = pointsPerPip(this.instrument);
    for (;;) {
      const hour = this.newYorkHour(this.lastTs);
      const meanGapMs = this.meanGapMs(hour);
      const next = this.lastTs + Math.max(1, Math.round(this.rng.exponential(meanGapMs)));
      if (next > untilMs) break;
      const dtS = (next - this.lastTs) / 1000;
      this.lastTs = next;
      if (this.hours === "fx" && isWeekendClosed(next)) continue;
      if (this.rng.next() < REGIME_SWITCH_PER_S * dtS) this.regime = Math.floor(this.rng.next() * 3);
      const volPips = REGIME_VOL_PIPS_PER_SQRT_S[this.regime] ?? 0.12;
      this.mid += this.rng.normal() * volPips * pip * Math.sqrt(dtS);
      this.mid = Math.max(this.mid, 100 * pip);
      const spread = Math.max(1, Math.round(this.spreadPips(hour) * pip * (0.8 + 0.4 * this.rng.next())));
      const bid = Math.round(this.mid - spread / 2);
      ticks.push({ ts: next, bid, ask: bid + spread });
    }
    return ticks;
  }

  private newYorkHour(ts: number): number {
    return new Date(ts + newYorkOffsetMs(ts)).getUTCHours();
  }

  /** Busy when London and New York overlap, quiet in the late New York afternoon. */
  private meanGapMs(nyHour: number): number {
    if (nyHour >= 3 && nyHour < 12) return 250;
    if (nyHour >= 16 && nyHour < 19) return 2_000;
    return 700;
  }

  /** Typical spread in pips: tight in session, wide around the daily roll. */
  private spreadPips(nyHour: number): number {
    const base = this.instrument.quote === "JPY" || this.instrument.base === "GBP" ? 1.2 : 0.8;
    if (nyHour === 16 || nyHour === 17) return base * 6;
    if (nyHour >= 18 || nyHour < 2) return base * 2;
    return base;
  }
}
