import type { BrokerAnswer } from "../src/broker/broker.ts";
import type { PaperBook } from "../src/broker/paper-broker.ts";
import type { Position } from "../src/domain/trading/position.ts";
import type { Fill, OrderIntent, OrderRejection, Signal } from "../src/domain/trading/types.ts";

export type { OrderRejection };
import type { Advice } from "../src/advisor/advisor.ts";
import { writeAudit } from "./audit-entry.ts";

export type OrderStatus = "pending" | "working" | "filled" | "rejected";

/** actor_state key: realised P&L carried over from closed positions deleted by retention. */
const PRUNED_REALISED_KEY = "realised_pruned_account_cents";

export interface OrderRecord {
  intent: OrderIntent;
  advice: Advice | null;
  status: OrderStatus;
  rejectReason: string | null;
  createdAt: number;
  updatedAt: number;
}

type OrderRow = {
  intent_json: string;
  status: string;
  reject_reason: string | null;
  advice_json: string | null;
  created_at: number;
  updated_at: number;
};

/** SQL of orders, the outbox, the paper broker's book, fills, positions and risk rejections. */
export class OrderStore {
  private realisedCents: number | null = null;

  constructor(private readonly sql: SqlStorage) {}

  // ---- signals waiting for their decision -----------------------------------------

  queueSignal(signal: Signal, nowMs: number): void {
    this.sql.exec("INSERT OR IGNORE INTO pending_signals (signal_id, signal_json, created_at) VALUES (?, ?, ?)", signal.id, JSON.stringify(signal), nowMs);
  }

  pendingSignals(): Signal[] {
    return this.sql
      .exec<{ signal_json: string }>("SELECT signal_json FROM pending_signals ORDER BY created_at, signal_id")
      .toArray()
      .map((r) => JSON.parse(r.signal_json) as Signal);
  }

  signalDecided(signalId: string): void {
    this.sql.exec("DELETE FROM pending_signals WHERE signal_id = ?", signalId);
  }

  // ---- orders and outbox ---------------------------------------------------------

  getOrder(clientOrderId: string): OrderRecord | undefined {
    const row = this.sql.exec<OrderRow>("SELECT * FROM orders WHERE client_order_id = ?", clientOrderId).toArray()[0];
    return row ? toOrder(row) : undefined;
  }

  /** Order + outbox entry, meant to run inside the caller's transaction. */
  insertOrderWithOutbox(intent: OrderIntent, advice: Advice | null, nowMs: number): void {
    this.sql.exec(
      "INSERT INTO orders (client_order_id, strategy_id, intent_json, status, advice_json, created_at, updated_at) VALUES (?, ?, ?, 'pending', ?, ?, ?)",
      intent.clientOrderId, intent.strategyId, JSON.stringify(intent), advice ? JSON.stringify(advice) : null, nowMs, nowMs,
    );
    this.sql.exec("INSERT INTO outbox (client_order_id, created_at) VALUES (?, ?)", intent.clientOrderId, nowMs);
    writeAudit(this.sql, nowMs, `strategy:${intent.strategyId}`, "order.create", intent.clientOrderId, null, { status: "pending", side: intent.side, units: intent.units, type: intent.type });
  }

  /** An order refused before it reached the broker (the advisor vetoed it): recorded, never sent. */
  insertRejectedOrder(intent: OrderIntent, reason: string, advice: Advice | null, nowMs: number): void {
    this.sql.exec(
      "INSERT INTO orders (client_order_id, strategy_id, intent_json, status, reject_reason, advice_json, created_at, updated_at) VALUES (?, ?, ?, 'rejected', ?, ?, ?, ?)",
      intent.clientOrderId, intent.strategyId, JSON.stringify(intent), reason, advice ? JSON.stringify(advice) : null, nowMs, nowMs,
    );
  }

  setOrderStatus(clientOrderId: string, status: OrderStatus, nowMs: number, rejectReason: string | null = null): void {
    const before = this.sql.exec<{ status: string }>("SELECT status FROM orders WHERE client_order_id = ?", clientOrderId).toArray()[0]?.status ?? null;
    if (before !== status) writeAudit(this.sql, nowMs, "broker", "order.status", clientOrderId, before, { status, ...(rejectReason ? { rejectReason } : {}) });
    this.sql.exec(
      "UPDATE orders SET status = ?, reject_reason = ?, updated_at = ? WHERE client_order_id = ?",
      status, rejectReason, nowMs, clientOrderId,
    );
  }

  removeFromOutbox(clientOrderId: string): void {
    this.sql.exec("DELETE FROM outbox WHERE client_order_id = ?", clientOrderId);
  }

  outbox(): OrderIntent[] {
    return this.sql
      .exec<{ intent_json: string }>(
        // CROSS JOIN keeps the outbox (a handful of rows) as the outer loop: with a plain JOIN SQLite
        // walked every order ever made and probed the outbox for each, on every tick.
        "SELECT o.intent_json FROM outbox x CROSS JOIN orders o ON o.client_order_id = x.client_order_id ORDER BY x.created_at, x.client_order_id",
      )
      .toArray()
      .map((r) => JSON.parse(r.intent_json) as OrderIntent);
  }

  /** A strategy withdrew a resting entry: the trader cancels it at the broker (inside the caller's transaction). */
  requestCancel(clientOrderId: string, nowMs: number): void {
    this.sql.exec("INSERT OR IGNORE INTO cancel_requests (client_order_id, requested_at) VALUES (?, ?)", clientOrderId, nowMs);
  }

  /** Entries to cancel at the broker, oldest request first. */
  cancelRequests(limit = 1_000): string[] {
    return this.sql.exec<{ id: string }>("SELECT client_order_id AS id FROM cancel_requests ORDER BY requested_at, client_order_id LIMIT ?", limit).toArray().map((r) => r.id);
  }

  cancelSettled(clientOrderId: string): void {
    this.sql.exec("DELETE FROM cancel_requests WHERE client_order_id = ?", clientOrderId);
  }

  /** Orders acknowledged as resting at the broker, oldest first (bounded: the broker follows at most this many). */
  workingOrders(limit = 1_000): OrderRecord[] {
    return this.sql.exec<OrderRow>("SELECT * FROM orders WHERE status = 'working' ORDER BY created_at, client_order_id LIMIT ?", limit).toArray().map(toOrder);
  }

  recentOrders(limit: number): OrderRecord[] {
    return this.sql.exec<OrderRow>("SELECT * FROM orders ORDER BY created_at DESC, client_order_id DESC LIMIT ?", limit).toArray().map(toOrder);
  }

  /** How many accepted orders were created since `sinceMs` (read from the index alone). */
  ordersSince(sinceMs: number): number {
    return this.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM orders WHERE created_at >= ? AND status != 'rejected'", sinceMs).one().n;
  }

  /** Creation times of accepted orders since `sinceMs`, newest first, at most `limit` (enough to judge a rate limit). */
  orderTimesSince(sinceMs: number, limit: number): number[] {
    return this.sql
      .exec<{ created_at: number }>(
        "SELECT created_at FROM orders WHERE created_at >= ? AND status != 'rejected' ORDER BY created_at DESC LIMIT ?",
        sinceMs, limit,
      )
      .toArray()
      .map((r) => r.created_at);
  }

  // ---- fills and positions ---------------------------------------------------------

  /** False when the fill was already applied (a re-sent order answered again). */
  insertFill(fill: Fill): boolean {
    if (this.sql.exec("SELECT 1 FROM fills WHERE id = ?", fill.id).toArray().length > 0) return false;
    this.sql.exec(
      "INSERT INTO fills (id, client_order_id, fill_json, ts, seq) VALUES (?, ?, ?, ?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM fills))",
      fill.id, fill.clientOrderId, JSON.stringify(fill), fill.ts,
    );
    return true;
  }

  fillsOf(clientOrderId: string): Fill[] {
    return this.sql
      .exec<{ fill_json: string }>("SELECT fill_json FROM fills WHERE client_order_id = ? ORDER BY id", clientOrderId)
      .toArray()
      .map((r) => JSON.parse(r.fill_json) as Fill);
  }

  openPosition(strategyId: string): Position | undefined {
    const row = this.sql
      .exec<{ json: string }>("SELECT json FROM positions WHERE status = 'OPEN' AND strategy_id = ?", strategyId)
      .toArray()[0];
    return row ? (JSON.parse(row.json) as Position) : undefined;
  }

  /** Whether any position is open or any order rests at the broker: indexed reads, asked once per part of a tick batch. */
  hasOpenPositionOrWorkingOrder(): boolean {
    return (
      this.sql.exec("SELECT 1 FROM positions WHERE status = 'OPEN' LIMIT 1").toArray().length > 0 ||
      this.sql.exec("SELECT 1 FROM orders WHERE status = 'working' LIMIT 1").toArray().length > 0
    );
  }

  openPositions(): Position[] {
    return this.sql.exec<{ json: string }>("SELECT json FROM positions WHERE status = 'OPEN' ORDER BY id").toArray().map((r) => JSON.parse(r.json) as Position);
  }

  recentPositions(limit: number): Position[] {
    return this.sql
      .exec<{ json: string }>("SELECT json FROM positions ORDER BY updated_at DESC, id DESC LIMIT ?", limit)
      .toArray()
      .map((r) => JSON.parse(r.json) as Position);
  }

  /**
   * Write a position if the stored one is at `expectedVersion` (0 = new).
   * The optimistic check guards against two paths updating one position.
   */
  savePosition(p: Position, expectedVersion: number, nowMs: number): void {
    const stored = this.sql.exec<{ version: number; json: string }>("SELECT version, json FROM positions WHERE id = ?", p.id).toArray()[0];
    if ((stored?.version ?? 0) !== expectedVersion) {
      throw new Error(`position ${p.id} is at version ${stored?.version ?? 0}, expected ${expectedVersion}`);
    }
    if (this.realisedCents !== null) {
      const old = stored ? (JSON.parse(stored.json) as Position) : null;
      this.realisedCents += netRealised(p) - (old ? netRealised(old) : 0);
    }
    this.sql.exec(
      "INSERT OR REPLACE INTO positions (id, strategy_id, status, version, json, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
      p.id, p.strategyId, p.status, p.version, JSON.stringify(p), nowMs,
    );
  }

  /**
   * Realised P&L net of commission over every position the pair ever had,
   * account cents: summed once, then kept up to date by savePosition.
   */
  realisedAccountCents(): number {
    this.realisedCents ??=
      (this.sql
        .exec<{ c: number | null }>(
          "SELECT SUM(json_extract(json, '$.realisedPnlAccountCents') - json_extract(json, '$.commissionAccountCents')) AS c FROM positions",
        )
        .one().c ?? 0) + this.prunedRealisedCents();
    return this.realisedCents;
  }

  /**
   * Net realised P&L of closed positions retention deleted, account cents: the
   * total reported to the coordinator (equity, drawdown) must not change when
   * an old position's row goes. Call in the transaction that deletes them.
   */
  carryPrunedRealised(cents: number): void {
    this.sql.exec(
      "INSERT OR REPLACE INTO actor_state (key, value) VALUES (?, ?)", PRUNED_REALISED_KEY, JSON.stringify(this.prunedRealisedCents() + cents),
    );
  }

  private prunedRealisedCents(): number {
    const row = this.sql.exec<{ value: string }>("SELECT value FROM actor_state WHERE key = ?", PRUNED_REALISED_KEY).toArray()[0];
    return row ? (JSON.parse(row.value) as number) : 0;
  }

  /** Reset the cached total (after a rolled-back transaction). */
  forgetTotals(): void {
    this.realisedCents = null;
  }

  storedVersion(positionId: string): number {
    return this.sql.exec<{ version: number }>("SELECT version FROM positions WHERE id = ?", positionId).toArray()[0]?.version ?? 0;
  }

  insertRejection(clientOrderId: string, strategyId: string, rejection: OrderRejection, nowMs: number): void {
    this.sql.exec(
      "INSERT INTO risk_rejections (client_order_id, strategy_id, rejection_json, time) VALUES (?, ?, ?, ?)",
      clientOrderId, strategyId, JSON.stringify(rejection), nowMs,
    );
  }

  hasRejection(clientOrderId: string): boolean {
    return this.sql.exec("SELECT 1 FROM risk_rejections WHERE client_order_id = ? LIMIT 1", clientOrderId).toArray().length > 0;
  }

  recentRejections(limit: number): { clientOrderId: string; strategyId: string; rejection: OrderRejection; time: number }[] {
    return this.sql
      .exec<{ client_order_id: string; strategy_id: string; rejection_json: string; time: number }>(
        "SELECT * FROM risk_rejections ORDER BY id DESC LIMIT ?", limit,
      )
      .toArray()
      .map((r) => ({ clientOrderId: r.client_order_id, strategyId: r.strategy_id, rejection: JSON.parse(r.rejection_json) as OrderRejection, time: r.time }));
  }

  // ---- the paper broker's book -------------------------------------------------------

  paperBook(): PaperBook {
    const sql = this.sql;
    return {
      get(clientOrderId) {
        const row = sql
          .exec<{ intent_json: string; fills_json: string; status: string }>("SELECT * FROM paper_orders WHERE client_order_id = ?", clientOrderId)
          .toArray()[0];
        if (!row) return undefined;
        return { intent: JSON.parse(row.intent_json) as OrderIntent, answer: JSON.parse(row.fills_json) as BrokerAnswer };
      },
      put(intent, answer) {
        sql.exec(
          "INSERT OR REPLACE INTO paper_orders (client_order_id, intent_json, status, fills_json) VALUES (?, ?, ?, ?)",
          intent.clientOrderId, JSON.stringify(intent), answer.status, JSON.stringify(answer),
        );
      },
      working() {
        return sql
          .exec<{ intent_json: string }>("SELECT intent_json FROM paper_orders WHERE status = 'working' ORDER BY client_order_id")
          .toArray()
          .map((r) => JSON.parse(r.intent_json) as OrderIntent);
      },
    };
  }
}

function netRealised(p: Position): number {
  return p.realisedPnlAccountCents - p.commissionAccountCents;
}

function toOrder(row: OrderRow): OrderRecord {
  return {
    intent: JSON.parse(row.intent_json) as OrderIntent,
    advice: row.advice_json ? (JSON.parse(row.advice_json) as Advice) : null,
    status: row.status as OrderStatus,
    rejectReason: row.reject_reason,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}
