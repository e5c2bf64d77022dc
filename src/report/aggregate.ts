/**
 * Trade tables for the backtest report: P&L by month, weekday, hour, strategy,
 * pair and direction, as plain JSON-able rows.
 *
 * Node only: arquero compiles its expressions with `new Function`, which
 * workerd refuses, so this must never be imported from the Worker.
 *
 * Expressions are arquero strings, not arrow functions: arquero parses a
 * function's source text, and whatever transpiler runs this file (tsx, Vite's
 * SSR transform) may rewrite that text (`aq.op` -> `__vi_import_0__.op`).
 * No user data goes into an expression; it only ever travels in columns.
 */
import * as aq from "arquero";
import type { BacktestResult, BacktestTrade } from "../replay/result.ts";

export interface TradeStats {
  trades: number;
  /** Trades with pnlAccountCents > 0 / < 0 (the same rule as the metrics; 0 is neither). */
  wins: number;
  losses: number;
  /** wins / trades. */
  winRate: number;
  /** Sum of the trades' realised P&L (after commission, before financing), USD cents. */
  pnlAccountCents: number;
  /** Sum of the financing charged on these trades, USD cents. */
  financingAccountCents: number;
  /** pnlAccountCents / trades rounded to the nearest cent (halves up). */
  avgPnlAccountCents: number;
  grossProfitAccountCents: number;
  /** Sum of the losing trades' P&L, <= 0. */
  grossLossAccountCents: number;
  /** grossProfit / |grossLoss|; null when nothing lost. */
  profitFactor: number | null;
}

export type MonthRow = { month: string } & TradeStats;
/** weekday: ISO, 1 = Monday .. 7 = Sunday. */
export type WeekdayRow = { weekday: number; weekdayName: string } & TradeStats;
export type HourRow = { hour: number } & TradeStats;
export type StrategyRow = { strategyId: string } & TradeStats;
export type PairRow = { pair: string } & TradeStats;
export type DirectionRow = { direction: "long" | "short" } & TradeStats;

export interface TradeAggregates {
  /** By UTC calendar month of the exit ("YYYY-MM"), ascending. */
  byMonth: MonthRow[];
  /** By UTC weekday of the entry, Monday first; only days with trades. */
  byWeekday: WeekdayRow[];
  /** By UTC hour of the entry, 0..23; only hours with trades. */
  byHour: HourRow[];
  /** By strategyId / pair (code-unit order). */
  byStrategy: StrategyRow[];
  byPair: PairRow[];
  /** Long (buy) then short (sell); only directions with trades. */
  byDirection: DirectionRow[];
}

const WEEKDAY_NAMES = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"] as const;

/** A trade with the pair and strategy it belongs to. */
type OwnedTrade = Pick<BacktestTrade, "side" | "entryT" | "exitT" | "pnlAccountCents" | "financingAccountCents"> & { pair: string; strategyId: string };

/** The table every grouping starts from: one row per trade. */
function tradeTable(trades: Iterable<OwnedTrade>): aq.ColumnTable {
  const cols = {
    strategyId: [] as string[],
    pair: [] as string[],
    side: [] as string[],
    entryT: [] as number[],
    exitT: [] as number[],
    pnlAccountCents: [] as number[],
    financingAccountCents: [] as number[],
  };
  for (const t of trades) {
    cols.strategyId.push(t.strategyId);
    cols.pair.push(t.pair);
    cols.side.push(t.side);
    cols.entryT.push(t.entryT);
    cols.exitT.push(t.exitT);
    cols.pnlAccountCents.push(t.pnlAccountCents);
    cols.financingAccountCents.push(t.financingAccountCents);
  }
  // aq.table rather than aq.from(rows): with no trades it still has the
  // columns, so the groupby below yields empty tables instead of throwing.
  return aq.table(cols).derive({
    month: "d => op.utcyear(d.exitT) + '-' + op.padstart(op.utcmonth(d.exitT) + 1 + '', 2, '0')",
    // arquero's utcdayofweek is JS's getUTCDay (0 = Sunday); shift to ISO.
    weekday: "d => (op.utcdayofweek(d.entryT) + 6) % 7 + 1",
    hour: "d => op.utchours(d.entryT)",
    direction: "d => d.side === 'buy' ? 'long' : 'short'",
    directionOrder: "d => d.side === 'buy' ? 0 : 1",
    win: "d => d.pnlAccountCents > 0 ? 1 : 0",
    loss: "d => d.pnlAccountCents < 0 ? 1 : 0",
    profitCents: "d => d.pnlAccountCents > 0 ? d.pnlAccountCents : 0",
    lossCents: "d => d.pnlAccountCents < 0 ? d.pnlAccountCents : 0",
  });
}

/** Group by `keys`, roll up the stats, sort by `order`, return plain rows. */
function groupStats(table: aq.ColumnTable, keys: string[], order: string): Record<string, unknown>[] {
  return table
    .groupby(...keys)
    .rollup({
      trades: aq.op.count(),
      wins: aq.op.sum("win"),
      losses: aq.op.sum("loss"),
      pnlAccountCents: aq.op.sum("pnlAccountCents"),
      financingAccountCents: aq.op.sum("financingAccountCents"),
      grossProfitAccountCents: aq.op.sum("profitCents"),
      grossLossAccountCents: aq.op.sum("lossCents"),
    })
    .derive({
      winRate: "d => d.wins / d.trades",
      avgPnlAccountCents: "d => op.round(d.pnlAccountCents / d.trades)",
      profitFactor: "d => d.grossLossAccountCents === 0 ? null : d.grossProfitAccountCents / -d.grossLossAccountCents",
    })
    .orderby(order)
    .objects() as Record<string, unknown>[];
}

function num(row: Record<string, unknown>, key: string): number {
  const v = row[key];
  if (typeof v !== "number" || !Number.isFinite(v)) throw new Error(`aggregate: ${key} is not a finite number: ${String(v)}`);
  return v;
}

function str(row: Record<string, unknown>, key: string): string {
  const v = row[key];
  if (typeof v !== "string") throw new Error(`aggregate: ${key} is not a string: ${String(v)}`);
  return v;
}

/** The stats in a fixed key order, so the JSON text does not depend on arquero's column order. */
function stats(row: Record<string, unknown>): TradeStats {
  const pf = row["profitFactor"];
  return {
    trades: num(row, "trades"),
    wins: num(row, "wins"),
    losses: num(row, "losses"),
    winRate: num(row, "winRate"),
    pnlAccountCents: num(row, "pnlAccountCents"),
    financingAccountCents: num(row, "financingAccountCents"),
    avgPnlAccountCents: num(row, "avgPnlAccountCents"),
    grossProfitAccountCents: num(row, "grossProfitAccountCents"),
    grossLossAccountCents: num(row, "grossLossAccountCents"),
    profitFactor: pf === null ? null : num(row, "profitFactor"),
  };
}

/** The trades of single-pair results, grouped. */
export function aggregateTrades(results: readonly BacktestResult[]): TradeAggregates {
  return aggregateOwnedTrades(results.flatMap((r) => r.trades.map((t) => ({ ...t, pair: r.pair, strategyId: r.strategyId }))));
}

/** Trades that name their pair and strategy (a portfolio's), grouped. */
export function aggregateOwnedTrades(trades: Iterable<OwnedTrade>): TradeAggregates {
  const t = tradeTable(trades);
  return {
    byMonth: groupStats(t, ["month"], "month").map((r) => ({ month: str(r, "month"), ...stats(r) })),
    byWeekday: groupStats(t, ["weekday"], "weekday").map((r) => {
      const weekday = num(r, "weekday");
      return { weekday, weekdayName: WEEKDAY_NAMES[weekday - 1] ?? String(weekday), ...stats(r) };
    }),
    byHour: groupStats(t, ["hour"], "hour").map((r) => ({ hour: num(r, "hour"), ...stats(r) })),
    byStrategy: groupStats(t, ["strategyId"], "strategyId").map((r) => ({ strategyId: str(r, "strategyId"), ...stats(r) })),
    byPair: groupStats(t, ["pair"], "pair").map((r) => ({ pair: str(r, "pair"), ...stats(r) })),
    byDirection: groupStats(t, ["direction", "directionOrder"], "directionOrder").map((r) => ({
      direction: str(r, "direction") === "long" ? ("long" as const) : ("short" as const),
      ...stats(r),
    })),
  };
}
