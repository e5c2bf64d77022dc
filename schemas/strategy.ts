import * as v from "valibot";
import { MANUAL_STRATEGY_ID } from "../src/domain/trading/risk.ts";
import { checkParams } from "../src/domain/strategy/catalog.ts";
import { STEP_BUDGET_OPS_MAX, STEP_BUDGET_OPS_MIN } from "../src/domain/strategy/meter.ts";
import { AddLevelsSchema, BreakEvenSchema, Pips } from "./trading-events.ts";

const StrategyId = v.pipe(
  v.string(),
  v.regex(/^[a-z0-9][a-z0-9-]{0,39}$/, "ids are 1-40 of a-z, 0-9 and -"),
  // Manual orders trade under "manual": a strategy of that name would share their position.
  v.check((id) => id !== MANUAL_STRATEGY_ID, `"${MANUAL_STRATEGY_ID}" is reserved for manual orders`),
);
const Units = v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(100_000_000));

/** Protective settings given to every position the strategy opens (its stop loss comes with each signal). */
const Protection = v.object({
  trailingStopPips: v.optional(Pips),
  breakEven: v.optional(BreakEvenSchema),
  addLevels: v.optional(AddLevelsSchema),
});

const common = {
  id: StrategyId,
  enabled: v.optional(v.boolean(), true),
  units: v.optional(Units, 10_000),
  protection: v.optional(Protection),
  /** Operations (loop iterations and calls of its own functions) one step may use; default STEP_BUDGET_OPS_DEFAULT. */
  stepBudgetOps: v.optional(v.pipe(v.number(), v.integer(), v.minValue(STEP_BUDGET_OPS_MIN), v.maxValue(STEP_BUDGET_OPS_MAX))),
};

/**
 * One strategy instance on one pair, as configured at run time. `kind` names
 * a file of strategies/ (src/domain/strategy/catalog.ts); its params are
 * checked against that strategy's schema strictly (defaults filled in, an
 * unknown key refused with the valid ones named).
 */
export const StrategyConfig = v.pipe(
  v.strictObject({
    ...common,
    kind: v.pipe(v.string(), v.maxLength(40)),
    params: v.optional(v.pipe(v.record(v.pipe(v.string(), v.maxLength(64)), v.unknown()), v.check((p) => Object.keys(p).length <= 64, "at most 64 parameters")), {}),
  }),
  // A check that also fills the defaults in, not a transform: after an issue, a transform stops
  // valibot from running the checks of the schemas around this one (a backtest's from < to), so a
  // request with two mistakes would be told of only one.
  v.rawCheck(({ dataset, addIssue }) => {
    if (!dataset.typed) return;
    const config = dataset.value;
    const checked = checkParams(config.kind, config.params);
    if (checked.ok) {
      dataset.value = { ...config, params: checked.params };
      return;
    }
    // The path down to the parameter at fault (params.fast), so an API error points at it.
    const keys = (checked.path ?? "params").split(".");
    let input: Record<string, unknown> = config;
    const path = keys.map((key) => {
      const value = input?.[key];
      const item = { type: "object" as const, origin: "value" as const, input, key, value };
      input = (value && typeof value === "object" ? value : {}) as Record<string, unknown>;
      return item;
    });
    addIssue({ message: checked.message, path: path as [typeof path[number], ...typeof path] });
  }),
);
export type StrategyConfig = v.InferOutput<typeof StrategyConfig>;
/** A strategy's name: the file strategies/<kind>.ts. */
export type StrategyKind = string;

export const STRATEGIES_PER_PAIR_MAX = 8;

export const StrategyConfigList = v.pipe(
  v.array(StrategyConfig),
  v.maxLength(STRATEGIES_PER_PAIR_MAX),
  v.check((list) => new Set(list.map((s) => s.id)).size === list.length, "strategy ids must be unique on a pair"),
);

/** `PUT /api/admin/pairs/:pair/strategies`. */
export const StrategiesBody = v.object({ strategies: StrategyConfigList });
