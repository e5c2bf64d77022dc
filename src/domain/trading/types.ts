/**
 * Shared vocabulary of the trading domain. Prices are integer points (see
 * ../price.ts); sizes are integer units of the base currency; times are epoch
 * ms. Pure data: no Cloudflare, no clock, no randomness.
 */
import type { Timeframe } from "../candle.ts";
import type { RiskRejection } from "../../../schemas/trading.ts";
import type { PortfolioRejection } from "../../../schemas/portfolio.ts";
import type { BrokerRejection } from "../../../schemas/trading-events.ts";

/** Why an order did not go out: per-pair risk, the portfolio, or the broker. */
export type OrderRejection = RiskRejection | PortfolioRejection | BrokerRejection;

export type Side = "buy" | "sell";

/** What a strategy asks for: enter long, enter short, or close its position. */
export type SignalType = "buy" | "sell" | "close";

export interface Signal {
  /** Deterministic from (pair, strategy, timeframe, candle, type): see client-order-id.ts. */
  id: string;
  pair: string;
  strategyId: string;
  type: SignalType;
  /** 0..1 */
  confidence: number;
  reason: string;
  timeframe: Timeframe;
  /** Start time of the closed candle that produced the signal. */
  candleT: number;
  /** Decision time (the candle's close time). */
  ts: number;
  /** Suggested protective levels, in points (absolute prices). */
  stopLoss?: number;
  takeProfit?: number;
  /** Units and protection of the order, when the strategy set them (else its configuration's). */
  order?: SignalOrder;
  metadata: Record<string, number | string | boolean | null>;
}

/** What a strategy's action asks of its order beyond the signal's side. */
export interface SignalOrder {
  /** Units to hold (else the strategy's configured units); for an entry, the units it adds. */
  units?: number;
  /** A resting entry instead of a market order: a limit or stop at `price` (points), cancelled at `expiresAtMs` unless filled. */
  entry?: { type: "limit" | "stop"; price: number; expiresAtMs: number };
  trailingStopPips?: number;
  breakEven?: { triggerPips: number; offsetPips: number };
  addLevels?: { maxLevels: number; offsetPips: number; sizeMultiplier: number };
}

export type OrderType = "market" | "limit" | "stop";

export interface OrderIntent {
  clientOrderId: string;
  pair: string;
  /** "manual" for orders placed through the API. */
  strategyId: string;
  side: Side;
  /** Positive integer units of the base currency. */
  units: number;
  type: OrderType;
  /** Limit/stop trigger price in points (required unless market). */
  price?: number;
  /** Good till: a resting limit or stop is cancelled at this instant unless filled (a strategy's entries always have one). */
  expiresAtMs?: number;
  stopLoss?: number;
  takeProfit?: number;
  trailingStopPips?: number;
  /** Move the stop to entry + offsetPips once price went triggerPips in favour (position.ts). */
  breakEven?: { triggerPips: number; offsetPips: number };
  /** Pyramiding: add units each offsetPips in favour, previous size x sizeMultiplier, maxLevels times. */
  addLevels?: { maxLevels: number; offsetPips: number; sizeMultiplier: number };
  /** This order executes the position's next add level. */
  addLevel?: boolean;
  /** Protective exit or kill-switch flatten: the only orders a HALTED portfolio still sends. */
  purpose?: "exit" | "flatten";
  /** The position an exit or flatten closes. */
  positionId?: string;
  /** Closes or shrinks an existing position only: never increases risk. */
  reduceOnly: boolean;
  /** Signal id that produced the intent, when any. */
  signalId?: string;
  createdAt: number;
}

export interface Fill {
  /** Deterministic: `${clientOrderId}:${n}` */
  id: string;
  clientOrderId: string;
  pair: string;
  side: Side;
  units: number;
  /** Execution price in points, slippage included. */
  price: number;
  /** Commission charged, in quote-currency micro units (1e-6). */
  commissionQuoteMicros: number;
  ts: number;
}

/** A quote at an instant, integer points. */
export interface Quote {
  ts: number;
  bid: number;
  ask: number;
}
