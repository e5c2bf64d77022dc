/**
 * The pair's connection to its broker: created on first use (an OANDA
 * broker needs credentials that live in the coordinator), and watched: every
 * call's outcome feeds the broker state that metrics and the dashboard show.
 */
import type { Fill, OrderIntent, Quote } from "../domain/trading/types.ts";
import type { Broker, BrokerAnswer, BrokerCancel } from "./broker.ts";

export type BrokerState = "idle" | "ok" | "failing";

/** After a failed call the broker is not called again for this long, doubling per failure in a row, up to the cap. */
const BACKOFF_FIRST_MS = 1_000;
const BACKOFF_MAX_MS = 30_000;

export interface BrokerStatus {
  kind: "paper" | "oanda";
  state: BrokerState;
  /** While failing: no call before this time (calls meanwhile fail at once). */
  retryAt: number | null;
  calls: number;
  failures: number;
  /** Failures in a row; 0 once a call succeeds. */
  consecutiveFailures: number;
  lastOkAt: number | null;
  lastError: string | null;
  lastErrorAt: number | null;
}

/** A broker call that failed (no answer, refused credentials, ...): the order, if recorded, waits in the outbox. */
export class BrokerUnavailable extends Error {
  override name = "BrokerUnavailable";
}

export class BrokerLink implements Broker {
  private broker: Promise<Broker> | null = null;
  /** The broker once created (the promise above settled), for calls that make no request. */
  private connected: Broker | null = null;
  private readonly status: BrokerStatus;
  readonly openUnits?: () => Promise<number>;

  constructor(
    kind: BrokerStatus["kind"],
    private readonly create: () => Promise<Broker>,
    /** Whether the broker keeps its own book to reconcile against (not paper). */
    reconcilable: boolean,
    private readonly clock: () => number = () => Date.now(),
  ) {
    this.status = { kind, state: "idle", retryAt: null, calls: 0, failures: 0, consecutiveFailures: 0, lastOkAt: null, lastError: null, lastErrorAt: null };
    if (reconcilable) {
      this.openUnits = () =>
        this.call(async (b) => {
          if (!b.openUnits) throw new Error("this broker cannot report its positions");
          return b.openUnits();
        });
    }
  }

  /** Forget the connection: the next call creates it again (new credentials), at once. */
  reset(): void {
    this.broker = null;
    this.connected = null;
    this.status.retryAt = null;
  }

  /**
   * Whether a call would go out now. A failing broker is left alone for a
   * while (1 s, doubling to 30 s): calls meanwhile fail at once instead of each
   * waiting out a timeout, so a broker outage never holds up the pair's ticks.
   */
  available(): boolean {
    return this.status.retryAt === null || this.clock() >= this.status.retryAt;
  }

  get state(): Readonly<BrokerStatus> {
    return { ...this.status };
  }

  place(intent: OrderIntent, quote: Quote): Promise<BrokerAnswer> {
    return this.call((b) => b.place(intent, quote));
  }

  onQuote(quote: Quote): Promise<Fill[]> {
    return this.call((b) => b.onQuote(quote));
  }

  /** No call: what the connected broker has already seen (nothing before it exists). */
  takeCancelled(): BrokerCancel[] {
    return this.connected?.takeCancelled?.() ?? [];
  }

  lookup(clientOrderId: string): Promise<BrokerAnswer | null> {
    return this.call((b) => b.lookup(clientOrderId));
  }

  cancel(clientOrderId: string): Promise<BrokerAnswer | null> {
    return this.call((b) => b.cancel(clientOrderId));
  }

  private async call<T>(fn: (broker: Broker) => Promise<T>): Promise<T> {
    if (!this.available()) {
      throw new BrokerUnavailable(`broker unavailable (${this.status.consecutiveFailures} failed calls, next try in ${Math.ceil((this.status.retryAt! - this.clock()) / 1000)} s): ${this.status.lastError}`);
    }
    this.status.calls++;
    try {
      // A failed creation (no credentials yet) is tried again on the next call.
      this.broker ??= this.create().catch((err: unknown) => {
        this.broker = null;
        throw err;
      });
      this.connected = await this.broker;
      const out = await fn(this.connected);
      this.status.state = "ok";
      this.status.retryAt = null;
      this.status.consecutiveFailures = 0;
      this.status.lastOkAt = this.clock();
      return out;
    } catch (err) {
      this.status.state = "failing";
      this.status.failures++;
      this.status.consecutiveFailures++;
      this.status.lastError = String(err instanceof Error ? err.message : err).slice(0, 300);
      this.status.lastErrorAt = this.clock();
      this.status.retryAt = this.clock() + Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** (this.status.consecutiveFailures - 1));
      throw new BrokerUnavailable(this.status.lastError, { cause: err });
    }
  }
}
