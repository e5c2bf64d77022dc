import * as v from "valibot";
import { PairSymbol } from "./common.ts";
import { PortfolioLimits } from "./portfolio.ts";
import { StrategyConfig, StrategyConfigList } from "./strategy.ts";
import { FillModelConfig, RiskLimits } from "./trading.ts";
import { findInstrument } from "../src/domain/instruments.ts";

/*
 * A backtest request: the same body for `POST /api/backtest/run` and for the
 * CLI (`npm run backtest`), so that both run exactly the same thing. Two
 * shapes: one strategy on one pair (`pair`, `strategy`), or a portfolio
 * (`pairs`, each with its strategies, and the portfolio's limits).
 */

/** Longest range one run may cover: bounds CPU (about a second per year of 1-minute bars) and memory. */
export const BACKTEST_RANGE_YEARS_MAX = 20;
const DAY_MS = 86_400_000;

/** A date (`2018-01-01`, UTC midnight) or an ISO timestamp with a zone. */
const Instant = v.pipe(
  v.string(),
  v.maxLength(40),
  v.regex(/^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?(Z|[+-]\d{2}:\d{2}))?$/, "dates are YYYY-MM-DD or ISO 8601 with a zone"),
  v.transform((s) => Date.parse(s.length === 10 ? `${s}T00:00:00Z` : s)),
  v.check((ms) => Number.isFinite(ms), "not a valid date"),
);

const Pct = v.pipe(v.number(), v.finite(), v.minValue(-100), v.maxValue(100));

/** The strategy to test: StrategyConfig with backtest defaults (id = kind, 100,000 units). */
const BacktestStrategy = v.pipe(
  v.looseObject({ kind: v.string(), id: v.optional(v.string()), units: v.optional(v.number()) }),
  v.transform((s) => ({ ...s, id: s.id ?? s.kind, units: s.units ?? 100_000 })),
  StrategyConfig,
);

export const BacktestRequest = v.pipe(
  v.strictObject({
    pair: PairSymbol,
    /** Inclusive start and exclusive end. */
    from: Instant,
    to: Instant,
    strategy: BacktestStrategy,
    /** What to replay: the pair's 1-minute candles, or its ticks (when a tick file was imported). */
    data: v.optional(v.picklist(["candles", "ticks"]), "candles"),
    /**
     * Ask = bid + this spread; null = the data's own ask. Default: 1 pip on
     * candles (histdata M1 files are bid-only), the data's ask on ticks.
     */
    spreadPips: v.optional(v.nullable(v.pipe(v.number(), v.finite(), v.minValue(0), v.maxValue(100)))),
    fillModel: v.optional(FillModelConfig, {}),
    financingLongPct: v.optional(Pct, 0),
    financingShortPct: v.optional(Pct, 0),
    initialBalanceUsd: v.optional(v.pipe(v.number(), v.finite(), v.minValue(1), v.maxValue(1e12)), 100_000),
    /** Per-pair risk limits to apply to every order, as the actor does; omitted = none. */
    risk: v.optional(RiskLimits),
  }),
  v.check((r) => r.from < r.to, "from must be before to"),
  v.check((r) => r.to - r.from <= BACKTEST_RANGE_YEARS_MAX * 366 * DAY_MS, `a backtest covers at most ${BACKTEST_RANGE_YEARS_MAX} years`),
);
export type BacktestRequestInput = v.InferInput<typeof BacktestRequest>;
export type BacktestRequest = v.InferOutput<typeof BacktestRequest>;

/** What a sweep ranks its combinations by. */
export const OBJECTIVES = ["sharpe", "pnl", "profitFactor", "sortino"] as const;
export type Objective = (typeof OBJECTIVES)[number];

/** Values one sweep key may take. */
const SWEEP_VALUES_MAX = 50;
/** Combinations run at most per sweep (each is a full engine in memory, or an actor). */
export const SWEEP_COMBINATIONS_MAX = 500;

/**
 * A sweep over a portfolio: every combination of the grid's values, each a
 * whole portfolio backtest (keys: limits.NAME, STRATEGY.PARAM or
 * PAIR/STRATEGY.PARAM; src/replay/portfolio-sweep.ts), ranked by `objective`.
 */
const SweepSpec = v.strictObject({
  grid: v.pipe(
    v.record(v.pipe(v.string(), v.maxLength(80)), v.pipe(v.array(v.union([v.pipe(v.number(), v.finite()), v.pipe(v.string(), v.maxLength(40)), v.boolean()])), v.minLength(1), v.maxLength(SWEEP_VALUES_MAX))),
    v.check((g) => Object.keys(g).length >= 1 && Object.keys(g).length <= 8, "a grid has 1 to 8 keys"),
    v.check((g) => Object.values(g).reduce((n, values) => n * values.length, 1) <= SWEEP_COMBINATIONS_MAX, `a sweep runs at most ${SWEEP_COMBINATIONS_MAX} combinations`),
  ),
  objective: v.optional(v.picklist(OBJECTIVES), "sharpe"),
});

/** Pairs in one portfolio backtest (every major and cross a deployment serves fits). */
export const PORTFOLIO_PAIRS_MAX = 28;

const Currency = v.pipe(v.string(), v.regex(/^[A-Z]{3}$/, "a currency is a 3-letter code such as USD"));

/** One pair of a portfolio: its strategies exactly as `PUT /api/admin/pairs/:pair/strategies` takes them, its risk and fill model. */
const PortfolioPair = v.strictObject({
  pair: v.pipe(
    PairSymbol,
    v.check((p) => findInstrument(p) !== undefined, "not a pair this runtime knows"),
  ),
  /** May be empty: the pair then only prices currencies (as a served pair without strategies does live). */
  strategies: StrategyConfigList,
  /** Per-pair risk limits on every order, as the actor; omitted = none. */
  risk: v.optional(RiskLimits),
  fillModel: v.optional(FillModelConfig, {}),
});

/**
 * Currencies of the portfolio's pairs that no pair of it values in the
 * account currency (EUR_GBP needs GBP_USD or USD_GBP in a USD account), with
 * the pairs that would: a backtest never values money at a silent zero.
 */
export function missingConversions(pairs: readonly string[], account: string): { currency: string; pair: string; add: string[] }[] {
  const listed = new Set(pairs);
  const missing: { currency: string; pair: string; add: string[] }[] = [];
  for (const pair of pairs) {
    for (const currency of pair.split("_")) {
      if (currency === account || listed.has(`${currency}_${account}`) || listed.has(`${account}_${currency}`)) continue;
      if (missing.some((m) => m.currency === currency)) continue;
      missing.push({ currency, pair, add: [`${currency}_${account}`, `${account}_${currency}`].filter((p) => findInstrument(p) !== undefined) });
    }
  }
  return missing;
}

export const PortfolioBacktestRequest = v.pipe(
  v.strictObject({
    from: Instant,
    to: Instant,
    pairs: v.pipe(
      v.array(PortfolioPair),
      v.minLength(1, "a portfolio has at least one pair"),
      v.maxLength(PORTFOLIO_PAIRS_MAX),
      v.check((list) => new Set(list.map((p) => p.pair)).size === list.length, "each pair is listed once"),
      v.check((list) => list.some((p) => p.strategies.length > 0), "at least one pair has a strategy"),
    ),
    /** Portfolio limits in the shape `PUT /api/admin/limits` takes; omitted = no portfolio limits at all (`{}` = the defaults). */
    limits: v.optional(PortfolioLimits),
    accountCurrency: v.optional(Currency, "USD"),
    initialBalance: v.optional(v.pipe(v.number(), v.finite(), v.minValue(1), v.maxValue(1e12), v.check((n) => Math.abs(n * 100 - Math.round(n * 100)) < 1e-6, "whole cents")), 100_000),
    data: v.optional(v.picklist(["candles", "ticks"]), "candles"),
    /** As in the single-pair request, for every pair. */
    spreadPips: v.optional(v.nullable(v.pipe(v.number(), v.finite(), v.minValue(0), v.maxValue(100)))),
    financingLongPct: v.optional(Pct, 0),
    financingShortPct: v.optional(Pct, 0),
    /** Run a grid of combinations instead of the one portfolio (`POST /api/backtest/run` spreads them over Backtest actors). */
    sweep: v.optional(SweepSpec),
  }),
  v.check((r) => r.from < r.to, "from must be before to"),
  v.check((r) => r.to - r.from <= BACKTEST_RANGE_YEARS_MAX * 366 * DAY_MS, `a backtest covers at most ${BACKTEST_RANGE_YEARS_MAX} years`),
  v.rawCheck(({ dataset, addIssue }) => {
    if (!dataset.typed) return;
    const r = dataset.value;
    for (const m of missingConversions(r.pairs.map((p) => p.pair), r.accountCurrency)) {
      addIssue({ message: `${m.pair} needs a ${m.currency}/${r.accountCurrency} price to be valued in ${r.accountCurrency}: add ${m.add.join(" or ") || `a ${m.currency} pair`} to pairs (it may have no strategies)` });
    }
  }),
);
export type PortfolioBacktestRequestInput = v.InferInput<typeof PortfolioBacktestRequest>;
export type PortfolioBacktestRequest = v.InferOutput<typeof PortfolioBacktestRequest>;

/** The schema a body is read with: one with `pairs` is a portfolio, any other the single-pair shape (so errors speak of the shape meant). */
export function backtestSchemaFor(body: unknown): typeof PortfolioBacktestRequest | typeof BacktestRequest {
  return body !== null && typeof body === "object" && "pairs" in body ? PortfolioBacktestRequest : BacktestRequest;
}
