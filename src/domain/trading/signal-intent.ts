import type { StrategyConfig } from "../../../schemas/strategy.ts";
import { clientOrderId } from "./client-order-id.ts";
import type { AddLevelDue, Position, Protection } from "./position.ts";
import type { OrderIntent, Signal } from "./types.ts";

export type IntentProtection = Pick<OrderIntent, "trailingStopPips" | "breakEven" | "addLevels">;

/** What an order puts on the position it opens (applyFill's `protection`), shared by the actor and the backtester. */
export function protectionOfIntent(intent: OrderIntent): Protection {
  return {
    ...(intent.stopLoss !== undefined ? { stopLoss: intent.stopLoss } : {}),
    ...(intent.takeProfit !== undefined ? { takeProfit: intent.takeProfit } : {}),
    ...(intent.trailingStopPips !== undefined ? { trailingStopPips: intent.trailingStopPips } : {}),
    ...(intent.breakEven !== undefined ? { breakEven: intent.breakEven } : {}),
    ...(intent.addLevels !== undefined ? { addLevels: intent.addLevels } : {}),
  };
}

/** The protection a strategy's configuration puts on the positions it opens. */
export function protectionOf(config: StrategyConfig): IntentProtection {
  const p = config.protection;
  return {
    ...(p?.trailingStopPips !== undefined ? { trailingStopPips: p.trailingStopPips } : {}),
    ...(p?.breakEven ? { breakEven: p.breakEven } : {}),
    ...(p?.addLevels ? { addLevels: p.addLevels } : {}),
  };
}

/** The protection a strategy's action set on its signal (it overrides the configured one, field by field). */
function protectionOfSignal(signal: Signal): IntentProtection {
  const o = signal.order;
  if (!o) return {};
  return {
    ...(o.trailingStopPips !== undefined ? { trailingStopPips: o.trailingStopPips } : {}),
    ...(o.breakEven ? { breakEven: o.breakEven } : {}),
    ...(o.addLevels ? { addLevels: o.addLevels } : {}),
  };
}

/**
 * The order that moves a strategy's net position (`currentNetUnits`, signed)
 * to what its signal asks: buy = +units, sell = -units (a reversal when on the
 * other side), close = flat; units are the signal's own when its strategy set
 * them, else the configured ones. Null when already there. Shared by the pair actor
 * and backtests, so both turn the same signal into the same order.
 */
export function intentForSignal(signal: Signal, currentNetUnits: number, configuredUnits: number, configured: IntentProtection = {}): OrderIntent | null {
  const units = signal.order?.units ?? configuredUnits;
  const entry = signal.type === "close" ? undefined : signal.order?.entry;
  let side: OrderIntent["side"];
  let orderUnits: number;
  let opening: boolean;
  let reduceOnly: boolean;
  if (entry) {
    // A resting entry adds its units when it fills: no target, whatever is held now.
    side = signal.type as OrderIntent["side"];
    orderUnits = units;
    opening = true;
    reduceOnly = false;
  } else {
    const target = signal.type === "buy" ? units : signal.type === "sell" ? -units : 0;
    const delta = target - currentNetUnits;
    if (delta === 0) return null;
    side = delta > 0 ? "buy" : "sell";
    orderUnits = Math.abs(delta);
    opening = target !== 0;
    reduceOnly = !opening || (Math.sign(target) === Math.sign(currentNetUnits) && Math.abs(target) < Math.abs(currentNetUnits));
  }
  return {
    clientOrderId: clientOrderId(signal.pair, signal.strategyId, signal.id),
    pair: signal.pair,
    strategyId: signal.strategyId,
    side,
    units: orderUnits,
    type: entry?.type ?? "market",
    ...(entry ? { price: entry.price, expiresAtMs: entry.expiresAtMs } : {}),
    ...(opening && signal.stopLoss !== undefined ? { stopLoss: signal.stopLoss } : {}),
    ...(opening && signal.takeProfit !== undefined ? { takeProfit: signal.takeProfit } : {}),
    ...(opening ? { ...configured, ...protectionOfSignal(signal) } : {}),
    reduceOnly,
    signalId: signal.id,
    createdAt: signal.ts,
  };
}

/**
 * The reduce-only market order that closes `position`: a protective exit
 * (stop loss, take profit, trailing stop: `purpose` "exit") or the kill
 * switch's flatten. Its id comes from the position and the attempt number
 * (1, 2, ...), never from the reason: while one attempt is on its way, every
 * later report of an exit, whatever its reason, finds it and sends nothing
 * more; an attempt the broker refused is followed by the next one.
 */
export function closeIntent(position: Position, purpose: "exit" | "flatten", attempt: number, createdAt: number): OrderIntent {
  return {
    clientOrderId: clientOrderId(position.pair, position.strategyId, `${position.id}:close:${attempt}`),
    pair: position.pair,
    strategyId: position.strategyId,
    side: position.side === "buy" ? "sell" : "buy",
    units: position.units,
    type: "market",
    reduceOnly: true,
    purpose,
    positionId: position.id,
    createdAt,
  };
}

/** The market order for the add level nextAddLevel reported; one id per position and level. */
export function addLevelIntent(position: Position, due: AddLevelDue, createdAt: number): OrderIntent {
  return {
    clientOrderId: clientOrderId(position.pair, position.strategyId, `${position.id}:add:${due.level}`),
    pair: position.pair,
    strategyId: position.strategyId,
    side: position.side,
    units: due.units,
    type: "market",
    addLevel: true,
    reduceOnly: false,
    createdAt,
  };
}
