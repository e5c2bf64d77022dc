/**
 * The pair's connection to its broker: created on first use (an OANDA
 * broker needs credentials that live in the coordinator), and watched: every
 * call's outcome feeds the broker state that metrics and the dashboard show.
 */
import type { Fill, OrderIntent, Quote } from "../domain/trading/types.ts";
import type { Broker, BrokerAnswer } from "./broker.ts";

export type BrokerState = "idle" | "ok" | "failing";

export interface BrokerStatus {
  kind: "paper" | "oanda";
  state: BrokerState;
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
  private readonly status: BrokerStatus;
  readonly openUnits?: () => Promise<number>;

  constructor(
    kind: BrokerStatus["kind"],
    private readonly create: () => Promise<Broker>,
    /** Whether the broker keeps its own book to reconcile against (not paper). */
    reconcilable: boolean,
    private readonly clock: () => number = () => Date.now(),
  ) {
    this.status = { kind, state: "idle", calls: 0, failures: 0, consecutiveFailures: 0, lastOkAt: null, lastError: null, lastErrorAt: null };
    if (reconcilable) {
      this.openUnits = () =>
        this.call(async (b) => {
          if (!b.openUnits) throw new Error("this broker cannot report its positions");
          return b.openUnits();
        });
    }
  }

  /** Forget the connection: the next call creates it again (new credentials). */
  reset(): void {
    this.broker = null;
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

  private async call<T>(fn: (broker: Broker) => Promise<T>): Promise<T> {
    this.status.calls++;
    try {
      // A failed creation (no credentials yet) is tried again on the next call.
      this.broker ??= this.create().catch((err: unknown) => {
        this.broker = null;
        throw err;
      });
      const out = await fn(await this.broker);
      this.status.state = "ok";
      this.status.consecutiveFailures = 0;
      this.status.lastOkAt = this.clock();
      return out;
    } catch (err) {
      this.status.state = "failing";
      this.status.failures++;
      this.status.consecutiveFailures++;
      this.status.lastError = String(err instanceof Error ? err.message : err).slice(0, 300);
      this.status.lastErrorAt = this.clock();
      throw new BrokerUnavailable(this.status.lastError, { cause: err });
    }
  }
}
