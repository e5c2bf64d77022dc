/**
 * The part of OANDA's v20 REST and streaming protocol the adapter speaks, as
 * valibot schemas (answers are validated, never trusted), and the conversions
 * between v20's decimal strings and the runtime's integer points and units.
 * v20 writes every number as a decimal string; sells are negative units.
 */
import * as v from "valibot";
import type { Instrument } from "../../domain/instruments.ts";
import { toDecimal, toPoints } from "../../domain/price.ts";
import type { OrderIntent, Side } from "../../domain/trading/types.ts";

const Decimal = v.pipe(v.string(), v.regex(/^-?\d+(\.\d+)?$/, "a v20 decimal string"));

export const ClientExtensions = v.object({ id: v.optional(v.string()), tag: v.optional(v.string()), comment: v.optional(v.string()) });

/** Order request body: `POST /v3/accounts/{id}/orders`. */
export interface V20OrderRequest {
  order: {
    type: "MARKET" | "LIMIT" | "STOP";
    instrument: string;
    units: string;
    price?: string;
    timeInForce: "FOK" | "GTC" | "GTD";
    /** With GTD: when OANDA cancels the order unless filled (RFC 3339). */
    gtdTime?: string;
    positionFill: "DEFAULT" | "REDUCE_ONLY";
    clientExtensions: { id: string; tag: string };
    stopLossOnFill?: { price: string };
    takeProfitOnFill?: { price: string };
    trailingStopLossOnFill?: { distance: string };
  };
}

const TradeChange = v.object({ tradeID: v.string(), units: Decimal, price: v.optional(Decimal) });

export const OrderFillTransaction = v.object({
  type: v.literal("ORDER_FILL"),
  id: v.string(),
  time: v.string(),
  orderID: v.string(),
  clientOrderID: v.optional(v.string()),
  instrument: v.string(),
  units: Decimal,
  /** The price every unit of this fill got (absent guaranteed stops, as here). */
  fullVWAP: v.optional(Decimal),
  price: v.optional(Decimal),
  /** Always a positive amount of the account's home currency. */
  commission: v.optional(Decimal),
  /** Quote currency -> home currency factor for losses (and so costs) of this fill. */
  lossQuoteHomeConversionFactor: v.optional(Decimal),
  tradeOpened: v.optional(TradeChange),
  tradeReduced: v.optional(TradeChange),
  tradesClosed: v.optional(v.array(TradeChange)),
});
export type OrderFillTransaction = v.InferOutput<typeof OrderFillTransaction>;

/** An order OANDA cancelled: the rest of a FOK market order, or a resting order (by hand, margin, a market halt, ...). */
export const OrderCancelTransaction = v.object({
  type: v.literal("ORDER_CANCEL"),
  id: v.string(),
  orderID: v.string(),
  /** Present when the order had a client order id. */
  clientOrderID: v.optional(v.string()),
  reason: v.string(),
});
export type OrderCancelTransaction = v.InferOutput<typeof OrderCancelTransaction>;

const Reject = v.object({ type: v.string(), id: v.optional(v.string()), rejectReason: v.optional(v.string()) });

/** 201 answer to an order request. A FOK market order is filled, or cancelled (e.g. MARKET_HALTED). */
export const OrderCreated = v.object({
  orderCreateTransaction: v.object({ id: v.string(), type: v.string() }),
  orderFillTransaction: v.optional(OrderFillTransaction),
  orderCancelTransaction: v.optional(OrderCancelTransaction),
  lastTransactionID: v.string(),
});
export type OrderCreated = v.InferOutput<typeof OrderCreated>;

/** 400 / 404 answer to an order request, and any v20 error body. */
export const V20Error = v.object({
  errorMessage: v.string(),
  errorCode: v.optional(v.string()),
  orderRejectTransaction: v.optional(Reject),
  lastTransactionID: v.optional(v.string()),
});

/** `PUT /v3/accounts/{id}/orders/{specifier}/cancel`, 200: the order was cancelled (its transaction is read back by the lookup after it). */
export const CancelAnswer = v.object({
  orderCancelTransaction: v.object({ id: v.string(), orderID: v.string() }),
  lastTransactionID: v.string(),
});

/** `GET /v3/accounts/{id}/orders/@{clientOrderId}`: an order found by its client id. */
export const OrderLookup = v.object({
  order: v.object({
    /** Also the id of the transaction that created it: its fills come after. */
    id: v.string(),
    /** Signed units asked for (market, limit and stop orders all have them). */
    units: Decimal,
    state: v.picklist(["PENDING", "FILLED", "TRIGGERED", "CANCELLED"]),
    clientExtensions: v.optional(ClientExtensions),
    fillingTransactionID: v.optional(v.string()),
    cancellingTransactionID: v.optional(v.string()),
  }),
  lastTransactionID: v.string(),
});

/** `GET /v3/accounts/{id}/transactions/idrange` or `/sinceid`: transactions, oldest first. */
export const TransactionPage = v.object({
  transactions: v.array(v.looseObject({ id: v.string(), type: v.string() })),
  lastTransactionID: v.string(),
});

export const AccountSummary = v.object({
  account: v.looseObject({
    id: v.string(),
    currency: v.string(),
    balance: Decimal,
    NAV: v.optional(Decimal),
    unrealizedPL: v.optional(Decimal),
    marginAvailable: v.optional(Decimal),
    openTradeCount: v.optional(v.number()),
    openPositionCount: v.optional(v.number()),
    pendingOrderCount: v.optional(v.number()),
    lastTransactionID: v.string(),
  }),
  lastTransactionID: v.string(),
});

export const AccountInstruments = v.object({
  instruments: v.array(v.looseObject({ name: v.string(), type: v.string(), displayPrecision: v.number(), pipLocation: v.number() })),
});

/** A trade's dependent order (stop loss, take profit: a price; trailing stop: a distance). */
const DependentOrder = v.looseObject({ id: v.string(), price: v.optional(Decimal), distance: v.optional(Decimal) });

/** An open trade: its id is the id of the fill that opened it; units signed, shorts negative. */
export const Trade = v.looseObject({
  id: v.string(),
  instrument: v.string(),
  price: Decimal,
  openTime: v.string(),
  initialUnits: Decimal,
  currentUnits: Decimal,
  clientExtensions: v.optional(ClientExtensions),
  stopLossOrder: v.optional(DependentOrder),
  takeProfitOrder: v.optional(DependentOrder),
  trailingStopLossOrder: v.optional(DependentOrder),
});
export type Trade = v.InferOutput<typeof Trade>;

/** `GET /openTrades` (every instrument) and `GET /trades?state=OPEN&instrument=...` (newest first, at most `count`). */
export const OpenTrades = v.object({ trades: v.array(Trade), lastTransactionID: v.string() });

export const OpenPositions = v.object({
  positions: v.array(
    v.looseObject({
      instrument: v.string(),
      long: v.looseObject({ units: Decimal }),
      short: v.looseObject({ units: Decimal }),
    }),
  ),
  lastTransactionID: v.string(),
});

const PriceBucket = v.looseObject({ price: Decimal, liquidity: v.optional(v.number()) });

/** A stream line is at most 64 KiB (PricingStream), so no list in it is longer than this. */
const PRICE_BUCKETS_MAX = 1_000;

/**
 * One line of the pricing stream: a price, or a heartbeat (every 5 s). A
 * price's bids or asks may be empty (OANDA: no liquidity on that side now),
 * and `tradeable` false means OANDA will not fill at it (a halt, the market
 * closed): neither is malformed, neither is a price to trade on.
 */
export const StreamLine = v.variant("type", [
  v.looseObject({
    type: v.literal("PRICE"),
    instrument: v.string(),
    time: v.string(),
    tradeable: v.optional(v.boolean()),
    /** Deprecated by OANDA in favour of `tradeable`; still read, since "non-tradeable" or "invalid" must not trade either. */
    status: v.optional(v.string()),
    bids: v.pipe(v.array(PriceBucket), v.maxLength(PRICE_BUCKETS_MAX)),
    asks: v.pipe(v.array(PriceBucket), v.maxLength(PRICE_BUCKETS_MAX)),
  }),
  v.looseObject({ type: v.literal("HEARTBEAT"), time: v.string() }),
]);
export type StreamLine = v.InferOutput<typeof StreamLine>;

// ---- conversions ----------------------------------------------------------------------

export const v20Price = (points: number, instrument: Instrument): string => toDecimal(points, instrument).toFixed(instrument.displayPrecision);

export const pointsOf = (price: string, instrument: Instrument): number => toPoints(Number(price), instrument);

/** `GET /positions/{instrument}`: the account's long and short side in one instrument (short units negative). */
export const PositionAnswer = v.object({
  position: v.object({
    instrument: v.string(),
    long: v.object({ units: v.string() }),
    short: v.object({ units: v.string() }),
  }),
});

export const v20Units = (side: Side, units: number): string => String(side === "buy" ? units : -units);

/**
 * v20's time in epoch ms: RFC 3339 in UTC with up to nine decimals of a
 * second (OANDA sends nanoseconds), cut to the millisecond; NaN for anything
 * else, which callers refuse.
 */
export function msOf(time: string): number {
  const m = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?Z$/.exec(time);
  if (!m) return Number.NaN;
  return Date.parse(`${m[1]}.${(m[2] ?? "").padEnd(3, "0").slice(0, 3)}Z`);
}

/** The v20 order for an intent: its client order id rides in clientExtensions, so a retry can find it. */
export function orderRequest(intent: OrderIntent, instrument: Instrument, protectionOnFill = true): V20OrderRequest {
  const pip = 10 ** instrument.pipLocation;
  // Without protection on fill the runtime manages exits itself (see OandaBroker).
  const protect: Pick<OrderIntent, "stopLoss" | "takeProfit" | "trailingStopPips"> = protectionOnFill ? intent : {};
  return {
    order: {
      type: intent.type === "market" ? "MARKET" : intent.type === "limit" ? "LIMIT" : "STOP",
      instrument: instrument.symbol,
      units: v20Units(intent.side, intent.units),
      ...(intent.type !== "market" && intent.price !== undefined ? { price: v20Price(intent.price, instrument) } : {}),
      // A strategy's entry rests until its expiry, which OANDA enforces (GTD); others until filled or cancelled.
      ...(intent.type === "market"
        ? { timeInForce: "FOK" as const }
        : intent.expiresAtMs !== undefined
          ? { timeInForce: "GTD" as const, gtdTime: new Date(intent.expiresAtMs).toISOString() }
          : { timeInForce: "GTC" as const }),
      positionFill: intent.reduceOnly ? "REDUCE_ONLY" : "DEFAULT",
      clientExtensions: { id: intent.clientOrderId, tag: intent.strategyId },
      ...(protect.stopLoss !== undefined ? { stopLossOnFill: { price: v20Price(protect.stopLoss, instrument) } } : {}),
      ...(protect.takeProfit !== undefined ? { takeProfitOnFill: { price: v20Price(protect.takeProfit, instrument) } } : {}),
      ...(protect.trailingStopPips !== undefined
        ? { trailingStopLossOnFill: { distance: (protect.trailingStopPips * pip).toFixed(instrument.displayPrecision) } }
        : {}),
    },
  };
}
