import * as v from "valibot";
import { PairSymbol } from "./common.ts";
import { StrategyConfig } from "./strategy.ts";
import { FillModelConfig, RiskLimits } from "./trading.ts";

/*
 * A backtest request: the same body for `POST /api/backtest/run` and for the
 * CLI (`npm run backtest`), so that both run exactly the same thing.
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
