/**
 * OANDA's pricing stream: one long HTTP answer of JSON lines, prices and a
 * heartbeat every 5 s. A stream that stays silent past `heartbeatTimeoutMs`
 * (or ends, or errors) is dropped and reopened with exponential backoff and
 * full jitter; a line that is not valid v20 is counted and skipped. Prices
 * reach `onTick` as integer points, per instrument, in arrival order.
 */
import * as v from "valibot";
import type { Instrument } from "../../domain/instruments.ts";
import type { Tick } from "../../domain/candle.ts";
import { backoffMs, DEFAULT_RETRY, type OandaEndpoint, type RetryPolicy } from "./oanda-http.ts";
import { msOf, pointsOf, StreamLine } from "./v20.ts";

export type StreamState = "connecting" | "streaming" | "reconnecting" | "stopped";

export interface StreamStatus {
  state: StreamState;
  connects: number;
  prices: number;
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
}

export class PricingStream {
  private readonly byName: Map<string, Instrument>;
  private readonly heartbeatTimeoutMs: number;
  private readonly retry: RetryPolicy;
  private readonly maxLineBytes: number;
  private readonly status: StreamStatus = { state: "stopped", connects: 0, prices: 0, heartbeats: 0, badLines: 0, lastLineAt: null, lastError: null };
  private abort: AbortController | null = null;
  private running: Promise<void> | null = null;

  constructor(
    private readonly endpoint: OandaEndpoint,
    instruments: readonly Instrument[],
    private readonly onTick: (pair: string, tick: Tick) => void,
    private readonly options: PricingStreamOptions = {},
  ) {
    this.byName = new Map(instruments.map((i) => [i.symbol, i]));
    this.heartbeatTimeoutMs = options.heartbeatTimeoutMs ?? 10_000;
    this.retry = options.retry ?? DEFAULT_RETRY;
    this.maxLineBytes = options.maxLineBytes ?? 64 * 1024;
  }

  get state(): Readonly<StreamStatus> {
    return { ...this.status };
  }

  start(): void {
    if (this.running) return;
    this.setState("connecting");
    this.running = this.loop();
  }

  async stop(): Promise<void> {
    this.setState("stopped");
    this.abort?.abort();
    await this.running;
    this.running = null;
  }

  private async loop(): Promise<void> {
    let failures = 0;
    while (!this.stopped()) {
      const gotData = await this.connectOnce();
      if (this.stopped()) return;
      failures = gotData ? 0 : failures + 1;
      this.setState("reconnecting");
      await new Promise((r) => setTimeout(r, backoffMs(Math.min(failures, 10), this.retry)));
    }
  }

  /** One connection, until it ends, fails or goes silent; true if it delivered any line. */
  private async connectOnce(): Promise<boolean> {
    const abort = new AbortController();
    this.abort = abort;
    let delivered = false;
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
        this.status.lastError = `stream answered ${res.status}`;
        await res.body?.cancel();
        return false;
      }
      this.status.connects++;
      this.setState("streaming");
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) {
          this.status.lastError = "stream ended";
          return delivered;
        }
        buffer += value;
        let nl: number;
        while ((nl = buffer.indexOf("\n")) >= 0) {
          const line = buffer.slice(0, nl).trim();
          buffer = buffer.slice(nl + 1);
          if (line === "") continue;
          arm();
          delivered = true;
          this.onLine(line);
        }
        if (buffer.length > this.maxLineBytes) {
          this.status.lastError = `a line over ${this.maxLineBytes} bytes`;
          await reader.cancel();
          return delivered;
        }
      }
    } catch (err) {
      if (this.status.lastError === null || !abort.signal.aborted) this.status.lastError = String(err).slice(0, 200);
      return delivered;
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
    const bid = pointsOf(msg.bids[0]!.price, instrument);
    const ask = pointsOf(msg.asks[0]!.price, instrument);
    const ts = msOf(msg.time);
    if (!Number.isFinite(bid) || !Number.isFinite(ask) || !Number.isFinite(ts)) {
      this.status.badLines++;
      return;
    }
    this.status.prices++;
    this.onTick(instrument.symbol, { ts, bid, ask });
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
