import init from "./0001_init.sql";
import indicatorValues from "./0002_indicator_values.sql";
import strategiesSignals from "./0003_strategies_signals.sql";
import ordersPositions from "./0004_orders_positions.sql";
import fillSequence from "./0005_fill_sequence.sql";
import fillsByOrder from "./0006_fills_by_order.sql";
import ordersWorking from "./0007_orders_working.sql";
import hotPathIndexes from "./0008_hot_path_indexes.sql";
import tickBatches from "./0009_tick_batches.sql";
import strategySuspension from "./0010_strategy_suspension.sql";
import cancelRequests from "./0011_cancel_requests.sql";
import type { Migration } from "../../actors/migrate.ts";

/** Pair actor schema history, oldest first. Never edit a shipped file: add the next number. */
export const PAIR_MIGRATIONS: readonly Migration[] = [
  { version: 1, name: "0001_init", sql: init },
  { version: 2, name: "0002_indicator_values", sql: indicatorValues },
  { version: 3, name: "0003_strategies_signals", sql: strategiesSignals },
  { version: 4, name: "0004_orders_positions", sql: ordersPositions },
  { version: 5, name: "0005_fill_sequence", sql: fillSequence },
  { version: 6, name: "0006_fills_by_order", sql: fillsByOrder },
  { version: 7, name: "0007_orders_working", sql: ordersWorking },
  { version: 8, name: "0008_hot_path_indexes", sql: hotPathIndexes },
  { version: 9, name: "0009_tick_batches", sql: tickBatches },
  { version: 10, name: "0010_strategy_suspension", sql: strategySuspension },
  { version: 11, name: "0011_cancel_requests", sql: cancelRequests },
];
