import type { Fill, OrderIntent, Quote } from "../domain/trading/types.ts";

/** What a broker did with an order. */
export type BrokerAnswer =
  | { status: "filled"; fills: Fill[] }
  /** Resting (limit/stop) until a quote triggers it; with the fills of a part already filled (OANDA). */
  | { status: "working"; fills: Fill[] }
  | { status: "rejected"; reason: string; fills: [] };

/** The reason a working order cancelled at our request is closed with (OANDA's own word for it). */
export const CANCELLED_ON_REQUEST = "CLIENT_REQUEST";

/** A working order the broker cancelled on its own, with its reason. */
export interface BrokerCancel {
  clientOrderId: string;
  reason: string;
}

/**
 * A broker behind the pair actor. `place` must be idempotent by client order
 * id: sending the same intent again returns what was already done, never a
 * second order (OANDA's clientExtensions id; the paper broker's own book).
 */
export interface Broker {
  place(intent: OrderIntent, quote: Quote): Promise<BrokerAnswer>;
  /** Give the broker a new quote; returns fills of resting orders it triggered. */
  onQuote(quote: Quote): Promise<Fill[]>;
  /**
   * Working orders the broker cancelled on its own (OANDA: by hand on its
   * platform, margin, a market halt), seen since the last call; absent when it
   * never does (paper). One lost with a dying actor is found by the restart
   * reconciliation's lookup.
   */
  takeCancelled?(): BrokerCancel[];
  /**
   * What the broker did with an order of ours, by client order id (null: it
   * never got it). Restart reconciliation asks it for every order the runtime
   * still holds as working, since a fill may have happened while the actor was
   * down, or been taken from the broker but never applied.
   */
  lookup(clientOrderId: string): Promise<BrokerAnswer | null>;
  /**
   * Cancel a working order of ours (a strategy withdrew its entry). Answers
   * what became of the order, as `lookup` does: `rejected` once cancelled,
   * `filled` when it filled first, null when the broker never got it. Throws
   * when the order still works (the cancel did not take): ask again later.
   */
  cancel(clientOrderId: string): Promise<BrokerAnswer | null>;
  /**
   * The account's net units in the pair as the broker holds them (longs
   * positive), to reconcile against the runtime's positions; absent when the
   * broker's book is the runtime's own (paper).
   */
  openUnits?(): Promise<number>;
  /** False while calls would fail at once (a broker that just failed is given time); absent = always. */
  available?(): boolean;
}
