/**
 * The paper broker's fill model, shared with the backtester so that a backtest
 * fills exactly as paper trading would. Quote-based: live trading passes each
 * tick's quote; a bar backtest passes each bar as quotes in time order (open,
 * then the high and low in the order the bar most likely visited them, then
 * close; each quote is that point's bid and ask). No partial fills: an order
 * fills completely or not at all.
 *
 * Prices are integer points, so every price computed here is exact.
 */
import type { FillModelConfig } from "../../../schemas/trading.ts";
import type { Instrument } from "../instruments.ts";
import { pipsToPoints } from "../price.ts";
import type { Fill, OrderIntent, Quote } from "./types.ts";

/**
 * When a pending order is looked at: "arrival" is the first quote after it was
 * placed (a limit already through the market is marketable and takes the
 * touch), "resting" every later quote (the market moved through the limit).
 */
export type PendingPhase = "arrival" | "resting";

export function slippagePoints(model: FillModelConfig, instrument: Instrument): number {
  return pipsToPoints(model.slippagePips, instrument);
}

/**
 * Commission in quote-currency micro units: units * rate / 10^6 quote = units *
 * rate micros. The rate is whole cents per million (schema), so the product is
 * computed in hundredths of a micro as an exact integer and rounded half up.
 */
export function commissionQuoteMicros(units: number, commissionPerMillion: number): number {
  const centsPerMillion = Math.round(commissionPerMillion * 100);
  const hundredths = units * centsPerMillion + 50;
  // Integer remainder instead of a float division: exact for any safe integer.
  return (hundredths - (hundredths % 100)) / 100;
}

/** Executes the intent at market now, whatever its type: buy at ask + slippage, sell at bid - slippage. */
export function fillMarket(intent: OrderIntent, quote: Quote, model: FillModelConfig, instrument: Instrument, fillSeq: number): Fill {
  const slip = slippagePoints(model, instrument);
  // A price is at least one point: slippage must not make it zero or negative.
  const price = intent.side === "buy" ? quote.ask + slip : Math.max(1, quote.bid - slip);
  return makeFill(intent, quote, price, model, fillSeq);
}

/** A resting order whose good-till time has come on this quote's clock: cancelled, never triggered, from then on. */
export function expired(intent: OrderIntent, quote: Quote): boolean {
  return intent.expiresAtMs !== undefined && quote.ts >= intent.expiresAtMs;
}

/** True when `quote` reaches the trigger of a limit or stop intent (market intents always are). */
export function isTriggered(intent: OrderIntent, quote: Quote): boolean {
  if (intent.type === "market") return true;
  const price = triggerPrice(intent);
  const buy = intent.side === "buy";
  if (intent.type === "limit") return buy ? quote.ask <= price : quote.bid >= price;
  return buy ? quote.ask >= price : quote.bid <= price;
}

/**
 * Fills a pending entry order if `quote` triggers it, else returns null.
 *
 * - Limit: a buy triggers when ask <= price, a sell when bid >= price, and
 *   always fills at its price or better. Resting, it fills at exactly its
 *   price: between two quotes the market passed through it (in a bar
 *   backtest, literally), so claiming a gapped better price would flatter
 *   backtests; no slippage, since a limit never fills worse than its price.
 *   On arrival, a marketable limit is a market order capped at its price:
 *   min(price, ask + slippage) for a buy, max(price, bid - slippage) for a sell.
 * - Stop: a buy triggers when ask >= price, a sell when bid <= price, and then
 *   becomes a market order (fillMarket: touch plus slippage). In a bar backtest
 *   a stop triggered by the high/low quote fills at that extreme, pessimistic
 *   by design.
 * - Market: fills now (fillMarket), so callers can treat all orders alike.
 *
 * In every case a buy fills at or above the quote's ask and a sell at or below
 * its bid.
 */
export function triggerPending(
  intent: OrderIntent,
  quote: Quote,
  model: FillModelConfig,
  instrument: Instrument,
  fillSeq: number,
  phase: PendingPhase = "resting",
): Fill | null {
  if (!isTriggered(intent, quote)) return null;
  if (intent.type !== "limit") return fillMarket(intent, quote, model, instrument, fillSeq);
  const limit = triggerPrice(intent);
  if (phase === "resting") return makeFill(intent, quote, limit, model, fillSeq);
  const slip = slippagePoints(model, instrument);
  const price = intent.side === "buy" ? Math.min(limit, quote.ask + slip) : Math.max(limit, quote.bid - slip);
  return makeFill(intent, quote, price, model, fillSeq);
}

function triggerPrice(intent: OrderIntent): number {
  // Validated upstream (a limit/stop without a price never reaches here); a
  // missing price is a bug, and guessing a trigger would trade at random.
  if (intent.price === undefined || !Number.isSafeInteger(intent.price) || intent.price <= 0) {
    throw new Error(`${intent.type} order ${intent.clientOrderId} has no valid trigger price`);
  }
  return intent.price;
}

function makeFill(intent: OrderIntent, quote: Quote, price: number, model: FillModelConfig, fillSeq: number): Fill {
  if (!Number.isSafeInteger(intent.units) || intent.units <= 0) {
    throw new Error(`order ${intent.clientOrderId} has invalid units ${intent.units}`);
  }
  if (!Number.isSafeInteger(price) || price <= 0) {
    throw new Error(`order ${intent.clientOrderId} would fill at invalid price ${price}`);
  }
  return {
    id: `${intent.clientOrderId}:${fillSeq}`,
    clientOrderId: intent.clientOrderId,
    pair: intent.pair,
    side: intent.side,
    units: intent.units,
    price,
    commissionQuoteMicros: commissionQuoteMicros(intent.units, model.commissionPerMillion),
    ts: quote.ts,
  };
}
