/**
 * Orders, fills and positions on the wire (HTTP answers and room frames):
 * integer points become decimals with the pair's precision, micros and cents
 * become currency amounts.
 */
import type { Advice } from "./advisor/advisor.ts";
import type { Instrument } from "./domain/instruments.ts";
import { averagePriceDecimal, toDecimal } from "./domain/price.ts";
import { centsToDecimal, microsToDecimal } from "./domain/trading/money.ts";
import { breakEvenLevels, markToMarket, type Position } from "./domain/trading/position.ts";
import type { Fill, OrderIntent, Quote } from "./domain/trading/types.ts";
import type { WireFill, WireOrder, WirePosition } from "../schemas/trading-events.ts";

/** What the wire shows of a stored order. */
export interface StoredOrder {
  intent: OrderIntent;
  status: WireOrder["status"];
  rejectReason: string | null;
  advice: Advice | null;
  createdAt: number;
}

/** A stored order on the wire: decimal prices, its status and refusal reason. */
export function toWireOrder(o: StoredOrder, instrument: Instrument): WireOrder {
  const price = (points: number): number => toDecimal(points, instrument);
  const i = o.intent;
  return {
    clientOrderId: i.clientOrderId,
    pair: i.pair,
    strategyId: i.strategyId,
    side: i.side,
    units: i.units,
    type: i.type,
    ...(i.price !== undefined ? { price: price(i.price) } : {}),
    ...(i.stopLoss !== undefined ? { stopLoss: price(i.stopLoss) } : {}),
    ...(i.takeProfit !== undefined ? { takeProfit: price(i.takeProfit) } : {}),
    ...(i.trailingStopPips !== undefined ? { trailingStopPips: i.trailingStopPips } : {}),
    reduceOnly: i.reduceOnly,
    ...(i.signalId !== undefined ? { signalId: i.signalId } : {}),
    status: o.status,
    ...(o.rejectReason !== null ? { rejectReason: o.rejectReason } : {}),
    ...(o.advice ? { advice: o.advice } : {}),
    createdAt: o.createdAt,
  };
}

/** A fill on the wire: decimal price and commission. */
export function toWireFill(f: Fill, instrument: Instrument): WireFill {
  return {
    id: f.id,
    clientOrderId: f.clientOrderId,
    pair: f.pair,
    side: f.side,
    units: f.units,
    price: toDecimal(f.price, instrument),
    commission: microsToDecimal(f.commissionQuoteMicros),
    ts: f.ts,
  };
}

/** A position on the wire, marked to `quote` when open (unrealised P&L null without one). */
export function toWirePosition(p: Position, instrument: Instrument, quote: Quote | null): WirePosition {
  const price = (points: number): number => toDecimal(points, instrument);
  const mark = quote && p.status === "OPEN" ? markToMarket(p, quote, { instrument }) : null;
  const breakEven = breakEvenLevels(p, instrument);
  return {
    id: p.id,
    pair: p.pair,
    strategyId: p.strategyId,
    status: p.status,
    side: p.side,
    units: p.units,
    // The average entry can fall between two points: one more digit than the pair's precision.
    entryPrice: averagePriceDecimal(p.entryPrice, instrument),
    ...(p.stopLoss !== undefined ? { stopLoss: price(p.stopLoss) } : {}),
    ...(p.takeProfit !== undefined ? { takeProfit: price(p.takeProfit) } : {}),
    ...(p.trailingStopPips !== undefined ? { trailingStopPips: p.trailingStopPips } : {}),
    ...(p.trailingStopPrice !== undefined ? { trailingStopPrice: price(p.trailingStopPrice) } : {}),
    ...(breakEven ? { breakEvenStatus: p.breakEven!.status, breakEvenArmPrice: price(breakEven.arm), breakEvenPrice: price(breakEven.level) } : {}),
    accountCurrency: p.accountCurrency,
    realisedPnlQuote: microsToDecimal(p.realisedPnlQuoteMicros),
    realisedPnlAccount: centsToDecimal(p.realisedPnlAccountCents),
    unrealisedPnlQuote: mark?.ok ? microsToDecimal(mark.value.unrealisedPnlQuoteMicros) : p.status === "CLOSED" ? 0 : null,
    unrealisedPnlAccount: mark?.ok ? centsToDecimal(mark.value.unrealisedPnlAccountCents) : p.status === "CLOSED" ? 0 : null,
    commissionQuote: microsToDecimal(p.commissionQuoteMicros),
    openedAt: p.openedAt,
    ...(p.closedAt !== undefined ? { closedAt: p.closedAt } : {}),
    version: p.version,
  };
}
