import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { Pair } from "../../actors/pair.ts";
import { OrderStore } from "../../actors/order-store.ts";
import { stub } from "./pair-kit.ts";

/**
 * The reads a pair makes on every tick or order must not grow with its
 * history. Counted in rows SQLite read (the cursor's rowsRead), not in time:
 * the outbox read once walked every order ever made, on every tick.
 */
describe("hot-path reads stay off the history", () => {
  it("outbox, pyramiding refusal and order-rate reads touch a handful of rows with 3,000 orders and 500 rejections stored", async () => {
    await runInDurableObject(stub("GBP_JPY"), (_i: Pair, state: DurableObjectState) => {
      const sql = state.storage.sql;
      const t0 = Date.UTC(2030, 0, 1);
      state.storage.transactionSync(() => {
        for (let n = 0; n < 3_000; n++) {
          sql.exec(
            "INSERT INTO orders (client_order_id, strategy_id, intent_json, status, created_at, updated_at) VALUES (?, 'hist', '{}', 'filled', ?, ?)",
            `hist-${n}`, t0 + n * 1_000, t0 + n * 1_000,
          );
        }
        for (let n = 0; n < 500; n++) {
          sql.exec("INSERT INTO risk_rejections (client_order_id, strategy_id, rejection_json, time) VALUES (?, 'hist', '{}', ?)", `refused-${n}`, t0 + n);
        }
        sql.exec("INSERT INTO orders (client_order_id, strategy_id, intent_json, status, created_at, updated_at) VALUES ('waiting', 'hist', '{\"clientOrderId\":\"waiting\"}', 'pending', ?, ?)", t0, t0);
        sql.exec("INSERT INTO outbox (client_order_id, created_at) VALUES ('waiting', ?)", t0);
      });

      let rowsRead = 0;
      const counting = {
        exec: (query: string, ...bindings: unknown[]) => {
          const cursor = sql.exec(query, ...bindings);
          const rows = cursor.toArray();
          // The cursor counts what SQLite read once it is drained.
          rowsRead += cursor.rowsRead;
          return { toArray: () => rows, one: () => rows[0] };
        },
      } as unknown as SqlStorage;
      const store = new OrderStore(counting);
      const measure = (read: () => unknown): number => {
        rowsRead = 0;
        read();
        return rowsRead;
      };

      expect(store.outbox().map((i) => i.clientOrderId)).toEqual(["waiting"]);
      expect(measure(() => store.outbox())).toBeLessThanOrEqual(5);
      expect(store.hasRejection("refused-250")).toBe(true);
      expect(measure(() => store.hasRejection("refused-250"))).toBeLessThanOrEqual(5);
      // The last minute of the history: 60 orders (one a second).
      const lastMinute = t0 + 2_940_000;
      expect(store.ordersSince(lastMinute)).toBe(60);
      expect(measure(() => store.ordersSince(lastMinute))).toBeLessThanOrEqual(70);
      expect(measure(() => store.orderTimesSince(lastMinute, 10_000))).toBeLessThanOrEqual(70);

      // Clean up: other tests may use this pair.
      state.storage.transactionSync(() => {
        sql.exec("DELETE FROM outbox");
        sql.exec("DELETE FROM orders WHERE strategy_id = 'hist'");
        sql.exec("DELETE FROM risk_rejections WHERE strategy_id = 'hist'");
      });
    });
  });
});
