/**
 * Reservations: room held for an approved order until its pair reports the
 * fill (or the order ends without one). Kept in memory, never written: the
 * durable record of an approved order is the pair's own (its outbox, then its
 * position), so a new life of the portfolio rebuilds them from what the pairs
 * hold in flight (rebuild). Pure: time is passed in.
 */
import type { PairBook } from "./exposure.ts";
import type { ApprovalRequest, PairInFlight } from "./messages.ts";

/** A reservation not settled by then (its pair died mid-order) stops counting. */
export const RESERVATION_TTL_MS = 60_000;

export interface Reservation {
  pair: string;
  deltaUnits: number;
  mid: number;
  opensPosition: boolean;
  expiresAt: number;
  /**
   * Rebuilt from a pair's approval still in flight when this life began: the
   * previous life may or may not have granted it, so it counts (the safe
   * side), and when the request itself arrives it is judged afresh.
   */
  undecided: boolean;
}

export function reservationOf(req: ApprovalRequest, expiresAt: number, undecided: boolean): Reservation {
  return { pair: req.pair, deltaUnits: req.deltaUnits, mid: req.mid, opensPosition: req.opensPosition, expiresAt, undecided };
}

/** The outstanding reservations by client order id, in the order they were made. */
export class Reservations {
  private readonly byId = new Map<string, Reservation>();

  get size(): number {
    return this.byId.size;
  }

  get(clientOrderId: string): Reservation | undefined {
    return this.byId.get(clientOrderId);
  }

  values(): IterableIterator<Reservation> {
    return this.byId.values();
  }

  /** Hold the room of an approved request until `nowMs` + the TTL. */
  hold(req: ApprovalRequest, nowMs: number): void {
    this.byId.set(req.clientOrderId, reservationOf(req, nowMs + RESERVATION_TTL_MS, false));
  }

  release(clientOrderId: string): void {
    this.byId.delete(clientOrderId);
  }

  /** Drop every reservation whose time is up at `nowMs`. */
  expire(nowMs: number): void {
    for (const [id, r] of this.byId) if (r.expiresAt <= nowMs) this.byId.delete(id);
  }

  clear(): void {
    this.byId.clear();
  }

  /**
   * A new life: reserve again every order an approval of an earlier life may
   * cover. Recorded, unsettled orders were approved (decided); requests still
   * being asked for may or may not have been (undecided, unless already held).
   */
  rebuild(answers: readonly Pick<PairInFlight, "orders" | "asking">[], nowMs: number): void {
    const expiresAt = nowMs + RESERVATION_TTL_MS;
    for (const { orders, asking } of answers) {
      for (const r of orders) this.byId.set(r.clientOrderId, reservationOf(r, expiresAt, false));
      for (const r of asking) if (!this.byId.has(r.clientOrderId)) this.byId.set(r.clientOrderId, reservationOf(r, expiresAt, true));
    }
  }

  /** `book` with every reservation's units added (a pair not in it yet enters at the reservation's mid). Changes `book`. */
  addTo(book: Record<string, PairBook>): Record<string, PairBook> {
    for (const r of this.byId.values()) {
      const b = book[r.pair] ?? { netUnits: 0, mid: r.mid };
      book[r.pair] = { netUnits: b.netUnits + r.deltaUnits, mid: b.mid };
    }
    return book;
  }

  /** Reservations that open a new position. */
  opening(): number {
    let n = 0;
    for (const r of this.byId.values()) if (r.opensPosition) n++;
    return n;
  }
}
