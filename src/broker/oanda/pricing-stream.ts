/**
 * OANDA's pricing stream: one long HTTP answer of JSON lines, prices and a
 * heartbeat every 5 s. A stream that stays silent past `heartbeatTimeoutMs`
 * (or ends, or errors) is dropped and reopened, never faster than OANDA's 2
 * new connections a second (a limiter shared in the isolate) and with
 * exponential backoff and full jitter while connections keep dying young; a
 * 429 waits out OANDA's pause, and a 401 or 403 stops the stream
 * ("refused") until new credentials start a new one. A line that is not valid
 * v20 is counted and skipped. Only tradeable two-sided prices reach `onTick`,
 * as integer points, per instrument, in arrival order: a price OANDA marks
 * not tradeable, or with no bid or no ask, means the pair is closed until the
 * next tradeable one, and `onTradeable` hears of every such change.
 */
import * as v from "valibot";
import type { Instrument } from "../../domain/instruments.ts";
import type { Tick } from "../../domain/candle.ts";
import { backoffMs, type OandaEndpoint, type RetryPolicy } from "./oanda-http.ts";
import { retryAfterMs, sharedLimiter, type RateLimiter } from "./rate-limit.ts";
import { msOf, pointsOf, StreamLine } from "./v20.ts";

/** "refused": OANDA refused the token (401/403); nothing reconnects until a new stream is made. */
export type StreamState = "connecting" | "streaming" | "reconnecting" | "refused" | "stopped";

export interface StreamStatus {
  state: StreamState;
  connects: number;
  prices: number;
  /** Prices not passed on: marked not tradeable, or with an empty bid or ask list. */
  untradeable: number;
  /** Served instruments whose latest price was not tradeable (closed until a tradeable one comes). */
  closed: string[];
  heartbeats: number;
  badLines: number;
  lastLineAt: number | null;
  lastError: string | null;
}

export interface PricingStreamOptions {
  /** Silence after which the stream counts as dead (OANDA sends a heartbeat every 5 s). */
  heartbeatTimeoutMs?: number;
  retry?: RetryPolicy;
  /** A line longer than this is refused (a stuck or hostile server cannot grow the buffer without end). */
  maxLineBytes?: number;
  onState?: (status: StreamStatus) => void;
  /** An instrument became tradeable or not (its prices reach `onTick` only while tradeable). */
  onTradeable?: (pair: string, tradeable: boolean) => void;
  /** New connections (defaults to the isolate's limiter for the stream host: 2 a second). */
  connectLimiter?: RateLimiter;
}

/**
 * Reconnect backoff: 0.5 s doubling to 30 s while connections die young.
 * (`attempts` and `timeoutMs` mean nothing here: a stream is retried until stopped.)
 */
export const STREAM_RETRY: Readonly<RetryPolicy> = Object.freeze({ timeoutMs: 10_000, attempts: 1, baseDelayMs: 500, maxDelayMs: 30_000 });
/** Backoff steps counted at most (2^10 x the base is past any cap). */
const FAILURES_MAX = 10;

/** How one connection ended. */
type Ended = { kind: "lines"; livedMs: number } | { kind: "failed" } | { kind: "throttled"; retryAfterMs: number | null } | { kind: "refused" };

export class PricingStream {
  private readonly byName: Map<string, Instrument>;
  private readonly heartbeatTimeoutMs: number;
  private readonly retry: RetryPolicy;
  private readonly maxLineBytes: number;
  private readonly status: StreamStatus = { state: "stopped", connects: 0, prices: 0, untradeable: 0, closed: [], heartbeats: 0, badLines: 0, lastLineAt: null, lastError: null };
  private readonly connectLimiter: RateLimiter;
  /** Whether each instrument's latest price was tradeable (absent: no price yet). */
  private readonly tradeable = new Map<string, boolean>();
  private abort: AbortController | null = null;
  private running: Promise<void> | null = null;
  /** Ends a wait between connections at once when the stream is stopped. */
  private wake: (() => void) | null = null;

  constructor(
    private readonly endpoint: OandaEndpoint,
    instruments: readonly Instrument[],
    private readonly onTick: (pair: string, tick: Tick) => void,
    private readonly options: PricingStreamOptions = {},
  ) {
    this.byName = new Map(instruments.map((i) => [i.symbol, i]));
    this.heartbeatTimeoutMs = options.heartbeatTimeoutMs ?? 10_000;
    this.retry = options.retry ?? STREAM_RETRY;
    this.maxLineBytes = options.maxLineBytes ?? 64 * 1024;
    this.connectLimiter = options.connectLimiter ?? sharedLimiter("connect", endpoint.streamUrl);
  }

  get state(): Readonly<StreamStatus> {
    return { ...this.status, closed: [...this.status.closed] };
  }

  start(): void {
    if (this.running) return;
    this.setState("connecting");
    this.running = this.loop();
  }

  async stop(): Promise<void> {
    this.setState("stopped");
    this.abort?.abort();
    this.wake?.();
    await this.running;
    this.running = null;
  }

  private async loop(): Promise<void> {
    let failures = 0;
    while (!this.stopped()) {
      // OANDA's 2 new connections a second: wait for a slot (the limiter never refuses an unbounded wait).
      const slot = this.connectLimiter.reserve(Number.POSITIVE_INFINITY) ?? 0;
      if (slot > 0 && (await this.pause(slot))) return;
      const ended = await this.connectOnce();
      if (this.stopped()) return;
      if (ended.kind === "refused") {
        // Sending a refused token again changes nothing: stop, and let the state raise the alert.
        this.setState("refused");
        return;
      }
      if (ended.kind === "throttled") this.connectLimiter.throttled(ended.retryAfterMs);
      // Only a connection that lived past a heartbeat timeout resets the backoff: one that dies young is a failure.
      failures = ended.kind === "lines" && ended.livedMs >= this.heartbeatTimeoutMs ? 0 : Math.min(failures + 1, FAILURES_MAX);
      this.setState("reconnecting");
      if (await this.pause(backoffMs(failures, this.retry))) return;
    }
  }

  /** Wait `ms`, or less if the stream is stopped meanwhile; whether it was. */
  private async pause(ms: number): Promise<boolean> {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    this.wake = null;
    return this.stopped();
  }

  /** One connection, until it ends, fails or goes silent: how it ended. */
  private async connectOnce(): Promise<Ended> {
    const abort = new AbortController();
    this.abort = abort;
    let openedAt: number | null = null;
    const lived = (): Ended => (openedAt === null ? { kind: "failed" } : { kind: "lines", livedMs: Date.now() - openedAt });
    let watchdog: ReturnType<typeof setTimeout> | undefined;
    const arm = () => {
      clearTimeout(watchdog);
      watchdog = setTimeout(() => {
        this.status.lastError = `no line for ${this.heartbeatTimeoutMs} ms`;
        abort.abort();
      }, this.heartbeatTimeoutMs);
    };
    try {
      arm();
      const names = [...this.byName.keys()].join(",");
      const res = await fetch(`${this.endpoint.streamUrl}/v3/accounts/${this.endpoint.accountId}/pricing/stream?instruments=${encodeURIComponent(names)}`, {
        headers: { authorization: `Bearer ${this.endpoint.token}`, "accept-datetime-format": "RFC3339" },
        signal: abort.signal,
      });
      if (!res.ok || !res.body) {
        const detail = (await res.text().catch(() => "")).slice(0, 150);
        this.status.lastError = `stream answered ${res.status}${detail ? `: ${detail}` : ""}`;
        if (res.status === 401 || res.status === 403) return { kind: "refused" };
        if (res.status === 429) return { kind: "throttled", retryAfterMs: retryAfterMs(res.headers.get("retry-after")) };
        return { kind: "failed" };
      }
      this.status.connects++;
      this.setState("streaming");
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) {
          this.status.lastError = "stream ended";
          return lived();
        }
        buffer += value;
        let nl: number;
        while ((nl = buffer.indexOf("\n")) >= 0) {
          const line = buffer.slice(0, nl).trim();
          buffer = buffer.slice(nl + 1);
          if (line === "") continue;
          arm();
          openedAt ??= Date.now();
          this.onLine(line);
        }
        if (buffer.length > this.maxLineBytes) {
          this.status.lastError = `a line over ${this.maxLineBytes} bytes`;
          await reader.cancel();
          return lived();
        }
      }
    } catch (err) {
      if (this.status.lastError === null || !abort.signal.aborted) this.status.lastError = String(err).slice(0, 200);
      return lived();
    } finally {
      clearTimeout(watchdog);
      abort.abort();
    }
  }

  private onLine(line: string): void {
    this.status.lastLineAt = Date.now();
    let json: unknown;
    try {
      json = JSON.parse(line);
    } catch {
      this.status.badLines++;
      return;
    }
    const parsed = v.safeParse(StreamLine, json);
    if (!parsed.success) {
      this.status.badLines++;
      return;
    }
    const msg = parsed.output;
    if (msg.type === "HEARTBEAT") {
      this.status.heartbeats++;
      return;
    }
    const instrument = this.byName.get(msg.instrument);
    if (!instrument) return; // not one of ours
    const ts = msOf(msg.time);
    const bid = msg.bids[0] === undefined ? null : pointsOf(msg.bids[0].price, instrument);
    const ask = msg.asks[0] === undefined ? null : pointsOf(msg.asks[0].price, instrument);
    if (!Number.isFinite(ts) || (bid !== null && !(bid > 0)) || (ask !== null && !(ask > 0))) {
      this.status.badLines++;
      return;
    }
    // Tradeable only when OANDA says so and both sides have a price: an exit
    // decided on anything else would be cancelled by OANDA (MARKET_HALTED).
    const tradeable = msg.tradeable === true && (msg.status === undefined || msg.status === "tradeable") && bid !== null && ask !== null;
    this.markTradeable(instrument.symbol, tradeable);
    if (!tradeable || bid === null || ask === null) {
      this.status.untradeable++;
      return;
    }
    this.status.prices++;
    this.onTick(instrument.symbol, { ts, bid, ask });
  }

  private markTradeable(pair: string, tradeable: boolean): void {
    if (this.tradeable.get(pair) === tradeable) return;
    this.tradeable.set(pair, tradeable);
    this.status.closed = [...this.tradeable].filter(([, ok]) => !ok).map(([name]) => name).sort();
    this.options.onTradeable?.(pair, tradeable);
  }

  /** A method, not a field read: stop() changes the state while the loop awaits. */
  private stopped(): boolean {
    return this.status.state === "stopped";
  }

  private setState(state: StreamState): void {
    if (this.status.state === "stopped" && state !== "connecting") return;
    this.status.state = state;
    this.options.onState?.(this.state);
  }
}
