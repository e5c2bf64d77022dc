/**
 * OANDA's published limits, kept on our side so OANDA never has to enforce
 * them: REST at most 120 requests a second (HTTP 429 beyond, per requesting
 * IP; best practices ask 100 a second on a connection), and at most 2 new
 * connections a second. Grants are spaced evenly, never in a burst: a burst
 * granted at once reaches OANDA spread by the network and the client's own
 * queue, and then lands in the same second as the next grants. `limit` grants
 * per 1.25 s (one every 12.5 ms for REST, one every 625 ms for connections)
 * keep any second at OANDA under its limit, jitter included. After a 429
 * every call through the limiter waits out a pause (Retry-After, else 1 s
 * doubling per 429 in a row, up to 30 s).
 */

/** OANDA's best practices ask for 100 a second on one persistent connection (the development guide allows 120 per IP): the stricter figure is ours. */
export const REST_REQUESTS_PER_SECOND = 100;
/** OANDA's development guide and best practices: no more than 2 new connections a second. */
export const NEW_CONNECTIONS_PER_SECOND = 2;

/** The span `limit` grants are spread over: a little over OANDA's second, for the jitter between our clock and its arrivals. */
const WINDOW_MS = 1_250;
const PAUSE_FIRST_MS = 1_000;
const PAUSE_MAX_MS = 30_000;
/** A Retry-After longer than this is taken as this (a broken header must not park the runtime for hours). */
const RETRY_AFTER_MAX_MS = 60_000;

export class RateLimiter {
  private readonly gapMs: number;
  /** The earliest time of the next grant. */
  private nextAt = 0;
  private pausedUntil = 0;
  private throttledInARow = 0;

  constructor(
    readonly limit: number,
    private readonly now: () => number = () => Date.now(),
  ) {
    if (!Number.isInteger(limit) || limit < 1) throw new Error(`a limiter needs a positive whole limit, got ${limit}`);
    this.gapMs = WINDOW_MS / limit;
  }

  /**
   * Reserve the next slot: how long to wait before using it (0 = now), or
   * null when that is more than `maxWaitMs` away (nothing is reserved then,
   * so a refused caller takes no slot from the others).
   */
  reserve(maxWaitMs: number): number | null {
    const now = this.now();
    const at = Math.max(now, this.pausedUntil, this.nextAt);
    if (at - now > maxWaitMs) return null;
    this.nextAt = at + this.gapMs;
    return at - now;
  }

  /** OANDA answered 429: nothing goes out until the pause is over. */
  throttled(retryAfterMs: number | null): number {
    this.throttledInARow++;
    const backoff = Math.min(PAUSE_MAX_MS, PAUSE_FIRST_MS * 2 ** (this.throttledInARow - 1));
    const wait = Math.max(backoff, Math.min(RETRY_AFTER_MAX_MS, retryAfterMs ?? 0));
    this.pausedUntil = Math.max(this.pausedUntil, this.now() + wait);
    return wait;
  }

  /** A call went through without a 429: the next 429 starts the pause over from its first step. */
  passed(): void {
    this.throttledInARow = 0;
  }
}

/** `Retry-After` (seconds, or an HTTP date) in ms; null when absent or unreadable. */
export function retryAfterMs(header: string | null, now: number = Date.now()): number | null {
  if (header === null) return null;
  const seconds = Number(header);
  if (header.trim() !== "" && Number.isFinite(seconds)) return Math.max(0, seconds * 1_000);
  const at = Date.parse(header);
  return Number.isFinite(at) ? Math.max(0, at - now) : null;
}

/**
 * One limiter per OANDA host in this isolate: OANDA counts per requesting IP,
 * so every pair's client (and the account reader) draws from the same window.
 * Actors in other isolates or machines are not counted here (see docs/trading.md).
 */
const shared = new Map<string, RateLimiter>();
/** Hosts this isolate may know: practice and live, REST and stream, plus test stand-ins. */
const SHARED_MAX = 64;

export function sharedLimiter(kind: "rest" | "connect", baseUrl: string): RateLimiter {
  const key = `${kind} ${new URL(baseUrl).origin}`;
  let limiter = shared.get(key);
  if (!limiter) {
    if (shared.size >= SHARED_MAX) shared.delete(shared.keys().next().value!);
    limiter = new RateLimiter(kind === "rest" ? REST_REQUESTS_PER_SECOND : NEW_CONNECTIONS_PER_SECOND);
    shared.set(key, limiter);
  }
  return limiter;
}
