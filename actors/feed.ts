import { DurableObject } from "cloudflare:workers";
import { configFor } from "../src/config.ts";
import type { Tick } from "../src/domain/candle.ts";
import { getInstrument } from "../src/domain/instruments.ts";
import { toDecimal } from "../src/domain/price.ts";
import { PricingStream, type StreamStatus } from "../src/broker/oanda/pricing-stream.ts";
import { logEvent } from "../src/log.ts";
import { fnv1a64Hex } from "../src/domain/trading/client-order-id.ts";
import type { WireTick } from "../schemas/tick.ts";

/** The alarm re-checks the stream this often (and, in production, keeps the actor in memory). */
const KEEPALIVE_MS = 30_000;
/** A batch a pair failed to take is sent again this many times in all (safe: it carries a batchId). */
const SEND_ATTEMPTS = 3;
/** Prices waiting for one pair while its previous batch is being ingested; the oldest go beyond it. */
const QUEUE_MAX = 1_000;

export interface FeedStatus {
  feed: "synthetic" | "off" | "oanda";
  stream: StreamStatus | null;
  /** Prices handed to the pair actors. */
  forwarded: number;
  /** Prices dropped because a pair's queue was full (the pair could not keep up). */
  dropped: number;
  ingestErrors: number;
  lastError: string | null;
}

interface PairQueue {
  pending: WireTick[];
  sending: boolean;
}

/**
 * The market data connection (FEED=oanda): one OANDA pricing stream for
 * every served pair, its prices forwarded to the pair actors as tick
 * batches, in order per pair. One instance ("main"). The stream reconnects
 * by itself when heartbeats stop (PricingStream); the alarm restarts it if it
 * ever stopped, and the cron wakes the actor every minute.
 */
export class Feed extends DurableObject<Env> {
  private stream: PricingStream | null = null;
  private starting: Promise<void> | null = null;
  private readonly queues = new Map<string, PairQueue>();
  private counters = { forwarded: 0, dropped: 0, ingestErrors: 0, lastError: null as string | null };
  /** This life of the feed and its batches so far: the batchIds it sends the pairs. */
  private readonly life = crypto.randomUUID();
  private batches = 0;

  /** Start the stream if FEED=oanda and it is not running; idempotent (the cron calls it every minute). */
  async wake(): Promise<FeedStatus> {
    await this.ensureStreaming();
    return this.status();
  }

  override async alarm(): Promise<void> {
    await this.ensureStreaming();
  }

  status(): FeedStatus {
    return { feed: configFor(this.env).feed, stream: this.stream?.state ?? null, ...this.counters };
  }

  /** Reopen the stream (after new credentials). */
  async restart(): Promise<FeedStatus> {
    this.stream?.stop();
    this.stream = null;
    return this.wake();
  }

  private async ensureStreaming(): Promise<void> {
    const config = configFor(this.env);
    if (config.feed !== "oanda") return;
    await this.ctx.storage.setAlarm(Date.now() + KEEPALIVE_MS);
    if (this.stream && this.stream.state.state !== "stopped") return;
    this.starting ??= this.open(config.pairs).finally(() => (this.starting = null));
    await this.starting;
  }

  private async open(pairs: readonly string[]): Promise<void> {
    try {
      const endpoint = await this.env.Coordinator.getByName("main").brokerEndpoint();
      this.stream = new PricingStream(endpoint, pairs.map(getInstrument), (pair, tick) => this.forward(pair, tick), {
        onState: (s) => logEvent(s.state === "streaming" ? "info" : "warn", "feed.state", { state: s.state, connects: s.connects, lastError: s.lastError }),
        // The pair refuses orders while OANDA would cancel them (MARKET_HALTED).
        onTradeable: (pair, tradeable) =>
          void this.env.Pair.getByName(pair).setTradeable(tradeable).catch((err: unknown) => logEvent("error", "feed.tradeable_failed", { pair, tradeable, error: String(err).slice(0, 200) })),
      });
      this.stream.start();
    } catch (err) {
      this.counters.lastError = String(err instanceof Error ? err.message : err).slice(0, 300);
      logEvent("error", "feed.start_failed", { error: this.counters.lastError });
    }
  }

  private forward(pair: string, tick: Tick): void {
    const instrument = getInstrument(pair);
    let queue = this.queues.get(pair);
    if (!queue) this.queues.set(pair, (queue = { pending: [], sending: false }));
    queue.pending.push({ ts: tick.ts, bid: toDecimal(tick.bid, instrument), ask: toDecimal(tick.ask, instrument) });
    if (queue.pending.length > QUEUE_MAX) {
      queue.pending.shift();
      this.counters.dropped++;
    }
    if (!queue.sending) void this.send(pair, queue);
  }

  /** One batch per pair in flight: prices that arrive meanwhile go in the next batch, in order. */
  private async send(pair: string, queue: PairQueue): Promise<void> {
    queue.sending = true;
    try {
      while (queue.pending.length > 0) {
        const batch = queue.pending.splice(0, queue.pending.length);
        // Named, so a batch whose answer was lost (a pair restarting) can go again and is stored once;
        // in the runtime's own form (ending in a hash), which no client's batchId may take.
        const seq = ++this.batches;
        const batchId = `feed-${seq}-${fnv1a64Hex(`${this.life}:${seq}`)}`;
        for (let attempt = 1; ; attempt++) {
          try {
            const result = await this.env.Pair.getByName(pair).ingestBatch(batch, false, batchId);
            if ("conflict" in result) throw new Error(`batch ${batchId} refused as a conflict`);
            this.counters.forwarded += batch.length;
            break;
          } catch (err) {
            this.counters.ingestErrors++;
            this.counters.lastError = `${pair}: ${String(err).slice(0, 250)}`;
            if (attempt >= SEND_ATTEMPTS) break;
          }
        }
      }
    } finally {
      queue.sending = false;
    }
  }
}
