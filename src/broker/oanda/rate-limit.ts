/**
 * OANDA's published limits, kept on our side so OANDA never has to enforce
 * them: REST at most 120 requests a second (HTTP 429 beyond, per requesting
 * IP; best practices ask 100 a second on a connection), and at most 2 new
 * connections a second. Grants are spaced evenly, `gap` apart, with a
 * small burst allowance (a tenth of the limit) so that an idle runtime's
 * order, two calls (the id looked up, then the order), goes out at once; a
 * busy one is spaced and never bursts past the allowance. At most `limit`
 * grants fall in any 1.25 s (burst + 1.25 s / gap), and a call reaches OANDA
 * up to 0.25 s after its grant (the network, the client's own queue), so any
 * second at OANDA holds calls granted within one 1.25 s window here: never
 * more than the limit. After a 429
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
  /** Grants beyond the even spacing an idle limiter allows at once. */
  private readonly burst: number;
  private readonly gapMs: number;
  /** When the limiter would be idle again: the next grant's even slot (a grant may come `burst` gaps earlier). */
  private evenAt = 0;
  private pausedUntil = 0;
  private throttledInARow = 0;

  constructor(
    readonly limit: number,
    private readonly now: () => number = () => Date.now(),
  ) {
    if (!Number.isInteger(limit) || limit < 1) throw new Error(`a limiter needs a positive whole limit, got ${limit}`);
    this.burst = Math.floor(limit / 10);
    this.gapMs = WINDOW_MS / (limit - this.burst);
  }

  /**
   * Reserve the next slot: how long to wait before using it (0 = now), or
   * null when that is more than `maxWaitMs` away (nothing is reserved then,
   * so a refused caller takes no slot from the others).
   */
  reserve(maxWaitMs: number): number | null {
    const now = this.now();
    const at = Math.max(now, this.pausedUntil, this.evenAt - this.burst * this.gapMs);
    if (at - now > maxWaitMs) return null;
    this.evenAt = Math.max(at, this.evenAt) + this.gapMs;
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
