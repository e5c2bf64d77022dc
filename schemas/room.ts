import * as v from "valibot";
import { WireCandle } from "./candle.ts";
import { EpochMs, PairSymbol, TimeframeSchema } from "./common.ts";
import { IndicatorValuesSchema } from "./indicators.ts";
import { SignalMessage } from "./signal.ts";
import { BatchId, TickRejectionSchema, WireTick } from "./tick.ts";
import { TRADING_MESSAGES } from "./trading-events.ts";

/** Frames larger than this are refused by the room without being parsed. */
export const ROOM_MESSAGE_MAX_BYTES = 4096;
/** Candles per timeframe sent in a snapshot. */
export const SNAPSHOT_CANDLES_DEFAULT = 300;
export const SNAPSHOT_CANDLES_MAX = 1000;

const Timeframes = v.pipe(v.array(TimeframeSchema), v.minLength(1), v.maxLength(6));
/** Ticks one room message may carry: a feed sends ticks as they come (bulk loads use POST, 1,000 a batch). */
export const ROOM_TICKS_MAX = 50;
/** Messages a connection may send a second; over it each message is refused (`rate_limited`). */
export const ROOM_MESSAGES_PER_SECOND = 2000;

// ---- client -> server -------------------------------------------------------

export const ClientMessage = v.variant("type", [
  /** Add timeframes to this connection; a snapshot for each new one follows. */
  v.object({ type: v.literal("subscribe"), timeframes: Timeframes }),
  v.object({ type: v.literal("unsubscribe"), timeframes: Timeframes }),
  /** Liveness check; answered with a pong carrying the same id. */
  v.object({ type: v.literal("ping"), id: v.optional(v.pipe(v.string(), v.maxLength(64))) }),
  /**
   * Feed ticks in over the room's socket (trader or admin key): the same
   * validation and storage as POST /api/pairs/:pair/ticks, without an HTTP
   * request per tick. Answered to the sender with "ticks_result".
   */
  v.object({
    type: v.literal("ticks"),
    id: v.optional(v.pipe(v.string(), v.maxLength(64))),
    ticks: v.pipe(v.array(WireTick), v.minLength(1), v.maxLength(ROOM_TICKS_MAX)),
    /** As on POST /ticks: a batch sent again under its batchId is answered with what was stored. */
    batchId: v.optional(BatchId),
  }),
]);
export type ClientMessage = v.InferOutput<typeof ClientMessage>;

// ---- server -> client -------------------------------------------------------

export const WireTickEvent = v.object({
  type: v.literal("tick"),
  pair: PairSymbol,
  ts: EpochMs,
  bid: v.number(),
  ask: v.number(),
  /** Ticks merged into this frame by coalescing (1 = not coalesced). */
  merged: v.number(),
  /**
   * The candles in progress (complete: false) of the connection's timeframes,
   * after this tick. One frame per tick and client instead of one per
   * timeframe: sends per tick are the room's cost at hundreds of clients.
   * Closed candles come as "candle" frames.
   */
  candles: v.array(v.object({ tf: TimeframeSchema, candle: WireCandle })),
});

export const TimeframeSnapshot = v.object({
  tf: TimeframeSchema,
  /** Oldest first; the last one may be the candle in progress (complete: false). */
  candles: v.array(WireCandle),
  indicators: v.nullable(IndicatorValuesSchema),
});

export const ServerMessage = v.variant("type", [
  v.object({
    type: v.literal("snapshot"),
    pair: PairSymbol,
    tick: v.nullable(v.object({ ts: EpochMs, bid: v.number(), ask: v.number() })),
    timeframes: v.array(TimeframeSnapshot),
  }),
  WireTickEvent,
  /** A candle closed (complete: true), with its timeframe's indicators. */
  v.object({
    type: v.literal("candle"),
    pair: PairSymbol,
    tf: TimeframeSchema,
    candle: WireCandle,
    /** Present on close: the timeframe's indicators including this candle. */
    indicators: v.optional(IndicatorValuesSchema),
  }),
  /** A strategy on this pair emitted a signal. */
  SignalMessage,
  ...TRADING_MESSAGES,
  v.object({ type: v.literal("subscribed"), timeframes: v.array(TimeframeSchema) }),
  v.object({ type: v.literal("pong"), id: v.optional(v.string()) }),
  /** What became of a "ticks" message, to its sender only (as POST /ticks answers). */
  v.object({
    type: v.literal("ticks_result"),
    id: v.optional(v.string()),
    accepted: v.number(),
    rejected: v.array(v.object({ index: v.number(), reason: TickRejectionSchema })),
  }),
  v.object({
    type: v.literal("error"),
    code: v.string(),
    message: v.string(),
    details: v.optional(v.unknown()),
  }),
]);
export type ServerMessage = v.InferOutput<typeof ServerMessage>;
export type SnapshotMessage = Extract<ServerMessage, { type: "snapshot" }>;
export type CandleMessage = Extract<ServerMessage, { type: "candle" }>;
export type TickMessage = Extract<ServerMessage, { type: "tick" }>;
