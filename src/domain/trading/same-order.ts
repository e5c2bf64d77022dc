import type { OrderIntent } from "./types.ts";

/**
 * Whether two intents ask for the same order: what a client chose (side,
 * units, type, prices, protection). What the runtime derives at the time
 * (reduceOnly from the position then, createdAt) is left out, so a retry
 * after the first attempt filled is still recognised as the same order.
 */
export function sameOrder(a: OrderIntent, b: OrderIntent): boolean {
  return (
    a.pair === b.pair &&
    a.strategyId === b.strategyId &&
    a.side === b.side &&
    a.units === b.units &&
    a.type === b.type &&
    a.price === b.price &&
    a.stopLoss === b.stopLoss &&
    a.takeProfit === b.takeProfit &&
    a.trailingStopPips === b.trailingStopPips &&
    JSON.stringify(a.breakEven ?? null) === JSON.stringify(b.breakEven ?? null) &&
    JSON.stringify(a.addLevels ?? null) === JSON.stringify(b.addLevels ?? null)
  );
}
