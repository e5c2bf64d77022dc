import init from "./0001_init.sql";
import reservationsInMemory from "./0002_reservations_in_memory.sql";
import type { Migration } from "../../actors/migrate.ts";

/** Coordinator schema history, oldest first. Never edit a shipped file: add the next number. */
export const COORDINATOR_MIGRATIONS: readonly Migration[] = [
  { version: 1, name: "0001_init", sql: init },
  { version: 2, name: "0002_reservations_in_memory", sql: reservationsInMemory },
];
