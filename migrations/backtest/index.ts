import init from "./0001_init.sql";
import type { Migration } from "../../actors/migrate.ts";

export const BACKTEST_MIGRATIONS: readonly Migration[] = [{ version: 1, name: "0001_init", sql: init }];
