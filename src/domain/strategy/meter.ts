/**
 * The budget of a strategy's step, counted in operations: every loop
 * iteration and every call of a function written in strategies/. The build
 * (scripts/meter-source.ts) puts a call of `meter()` at the head of each loop
 * body and each function body of the strategy files; the runtime runs the
 * user's code inside `metered(budget, ...)`, and the call that goes past the
 * budget throws.
 *
 * Why operations and not milliseconds: workerd does not advance its clocks
 * while JavaScript runs (a Spectre defence), so a step cannot be timed from
 * inside, and a count is the same on every run: a step over budget live is
 * over budget in every backtest of the same data. What it does not count:
 * one call into a library (a sort of 1,000 candles, an indicator's update)
 * is one operation, whatever it costs; the platform's CPU limit per request
 * is the backstop for those.
 */

/** Operations a step may run unless its configuration says otherwise: the built-ins use under 0.1% of it. */
export const STEP_BUDGET_OPS_DEFAULT = 1_000_000;
export const STEP_BUDGET_OPS_MIN = 1_000;
export const STEP_BUDGET_OPS_MAX = 100_000_000;

export class StrategyBudgetError extends Error {
  override readonly name = "StrategyBudgetError";
  constructor(readonly budgetOps: number) {
    super(`the step ran past its budget of ${budgetOps} operations (loop iterations and calls of the strategy's own functions)`);
  }
}

let active = false;
let budget = 0;
let left = 0;
/** Set once the budget is spent: a strategy that catches the error is still over budget. */
let over = false;
let lastUsed = 0;

/** Called by the strategies' code (inserted by the build): one operation. Outside `metered`, free. */
export function meter(): void {
  if (!active) return;
  if (left > 0) {
    left--;
    return;
  }
  over = true;
  throw new StrategyBudgetError(budget);
}

/**
 * Run `fn` (the user's code) within `budgetOps` operations; throws
 * StrategyBudgetError when it went past them, even if the strategy caught
 * the error itself. Nested calls count against the outer budget.
 */
export function metered<T>(budgetOps: number, fn: () => T): T {
  if (active) return fn();
  active = true;
  budget = budgetOps;
  left = budgetOps;
  over = false;
  try {
    const out = fn();
    if (!over) return out;
  } catch (err) {
    if (!over) throw err;
  } finally {
    active = false;
    lastUsed = budgetOps - left;
  }
  throw new StrategyBudgetError(budgetOps);
}

/** Operations the last `metered` call used (for the measurements of what a step costs). */
export function lastOpsUsed(): number {
  return lastUsed;
}
