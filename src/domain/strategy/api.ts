/**
 * The strategy API: what a file in `strategies/` implements, through one
 * entry point, `defineStrategy`. A strategy is plain, synchronous code over
 * a context: it reads closed candles of the timeframes it watches, the
 * indicators it created (trading-signals), its own position, the account and
 * the instrument, and it acts (a target position, buy, sell, close, each with
 * protection; signals with confidence, reason and metadata). Its own state is
 * plain JSON, returned by each step and saved after it.
 *
 * The same definition runs live in a pair actor, in every backtest (CLI,
 * HTTP, sweeps, walk-forward) and in a replay, through the trading kernel:
 * same data, same decisions. docs/strategies.md is the tutorial and the
 * reference.
 */
import type * as v from "valibot";
import type { Timeframe } from "../candle.ts";

/** A valibot object schema (possibly piped through checks across its fields) for the parameters. */
export type ParamsSchema = v.GenericSchema<Record<string, unknown>, Record<string, unknown>>;

/** Candles a strategy may keep per timeframe (history and indicator warm-up alike). */
export const HISTORY_MAX = 1_000;
/** Indicators one strategy may create. */
export const INDICATORS_MAX = 32;
/** Largest saved state, in bytes of JSON: it is written after every step. */
export const STATE_BYTES_MAX = 65_536;

/** The price series a value is read from: bid, ask or their mid. */
export type PriceSource = "bid" | "ask" | "mid";

export interface Ohlc {
  readonly open: number;
  readonly high: number;
  readonly low: number;
  readonly close: number;
}

/** A closed candle as a strategy sees it: decimal prices (1.08512, 151.204). */
export interface CandleView extends Ohlc {
  readonly timeframe: Timeframe;
  /** Start, epoch ms UTC. */
  readonly time: number;
  /** End (the instant it closed), epoch ms UTC. */
  readonly closeTime: number;
  readonly bid: Ohlc;
  readonly ask: Ohlc;
  /** open/high/low/close above are the mid's; this is the same object. */
  readonly mid: Ohlc;
  /** Ticks (or one-minute bars' tick counts) in it. */
  readonly ticks: number;
}

/**
 * An indicator from trading-signals (or anything with the same two members),
 * fed by the runtime with each closed candle of its timeframe.
 */
export interface IndicatorLike<R = unknown> {
  add(input: never): unknown;
  getResult(): R | null;
  readonly isStable: boolean;
  /** Inputs it needs before its first value (trading-signals has it): sizes the warm-up after a restart. */
  getRequiredInputs?(): number;
}

export interface IndicatorSpec<I extends IndicatorLike = IndicatorLike> {
  timeframe: Timeframe;
  /** A new instance: called at start and again to rebuild it after a restart. */
  create: () => I;
  /** What the indicator is fed: the close (default) or { high, low, close } (ATR and the like). */
  input?: "close" | "hlc" | "ohlc";
  /** Which prices: mid (default), bid or ask. */
  price?: PriceSource;
}

/** What a strategy watches. */
export interface Watch {
  /** The timeframes whose closed candles step it (at least one). */
  timeframes: readonly Timeframe[];
  /** Closed candles kept per timeframe for `ctx.candles` (default 1, at most HISTORY_MAX). */
  history?: number;
  /** Also step on every tick (the definition's `onTick`), within the same budget per tick. */
  ticks?: boolean;
}

/** Break-even: once price went `triggerPips` in favour, the stop moves to entry + `offsetPips`. */
export interface BreakEvenSpec {
  triggerPips: number;
  offsetPips: number;
}

/** Pyramiding: add previous size x `sizeMultiplier` each `offsetPips` in favour, `maxLevels` times. */
export interface AddLevelsSpec {
  maxLevels: number;
  offsetPips: number;
  sizeMultiplier: number;
}

/** Protection of the position an action opens; each field overrides the strategy's configured protection. */
export interface Protection {
  /** Decimal prices. */
  stopLoss?: number;
  takeProfit?: number;
  trailingStopPips?: number;
  breakEven?: BreakEvenSpec;
  addLevels?: AddLevelsSpec;
}

/** What the signal of an action says: stored, streamed to the room and shown with the order. */
export interface SignalNote {
  /** 0..1, default 1. */
  confidence?: number;
  reason?: string;
  metadata?: Record<string, number | string | boolean | null>;
}

export interface ActionOptions extends Protection, SignalNote {
  /** Units to hold; default the units the strategy is configured with. */
  units?: number;
}

/** Entry orders may rest this long at least and at most. */
export const ENTRY_EXPIRY_MIN_MS = 60_000;
export const ENTRY_EXPIRY_MAX_MS = 30 * 86_400_000;

/** A resting entry: it adds `units` when the market reaches `price`, or is cancelled after `expiresAfterMs`. */
export interface EntryOptions extends Protection, SignalNote {
  side: "buy" | "sell";
  /** limit: buy at or below / sell at or above `price`; stop: buy at or above / sell at or below it. */
  type: "limit" | "stop";
  /** Decimal. */
  price: number;
  /** From the step's time; 1 minute to 30 days. */
  expiresAfterMs: number;
  /** Units it adds when filled; default the configured units. */
  units?: number;
}

/** One of the strategy's entries resting at the broker, as the step starts. */
export interface EntryView {
  /** Its client order id: what `ctx.cancel` takes. */
  id: string;
  side: "buy" | "sell";
  type: "limit" | "stop";
  price: number;
  units: number;
  expiresAt: number;
}

/** The strategy's own position on the pair, as it stands before this step. */
export interface PositionView {
  side: "long" | "short";
  /** Signed: > 0 long, < 0 short. */
  units: number;
  /** Average entry, decimal. */
  averagePrice: number;
  /** At the step's close (mid), in the quote currency and in the account currency. */
  unrealizedPnlQuote: number;
  stopLoss: number | null;
  takeProfit: number | null;
  trailingStop: number | null;
  /** Whether break-even has moved the stop already. */
  breakEvenDone: boolean;
  openedAt: number;
}

/** The account as the strategy's step finds it. */
export interface StrategyAccount {
  /** The account currency (USD unless configured otherwise). */
  readonly currency: string;
  /**
   * Balance + realised + unrealised P&L of every pair, in the account
   * currency. In a backtest: the initial balance and the run's P&L, marked at
   * the close (or the tick). Live: the coordinator's figure (ACCOUNT_BALANCE and
   * what every pair reported) as the pair last asked for it, at its start and
   * every minute; null until a fresh pair has heard it.
   */
  readonly equity: number | null;
}

export interface InstrumentView {
  symbol: string;
  base: string;
  quote: string;
  /** One pip, decimal: 0.0001, or 0.01 for JPY quotes. */
  pip: number;
  /** Digits after the decimal point of a price. */
  precision: number;
}

/** A price as a tick step sees it: decimal. */
export interface QuoteView {
  /** Epoch ms UTC. */
  readonly time: number;
  readonly bid: number;
  readonly ask: number;
  readonly mid: number;
}

/**
 * What an `onTick` step sees: the context of a candle step, with the tick as
 * `quote` and the latest closed candle of the first watched timeframe as
 * `candle` (null before the first closes). Its clock `now` is the tick's time.
 */
export interface TickContext<P> extends Omit<StrategyContext<P>, "candle"> {
  readonly quote: QuoteView;
  readonly candle: CandleView | null;
}

export interface StrategyContext<P> {
  readonly params: Readonly<P>;
  readonly instrument: InstrumentView;
  readonly account: StrategyAccount;
  /** The step's time: the close of the candle that stepped it (epoch ms). Strategies have no other clock. */
  readonly now: number;
  /** The candle that closed. */
  readonly candle: CandleView;
  /** Closed candles of a watched timeframe, oldest first, the latest last (at most `history`). */
  candles(timeframe: Timeframe): readonly CandleView[];
  /** An indicator's value: null until it is stable (warm). */
  indicator<R = number>(name: string): R | null;
  /** The strategy's position, null when flat. */
  readonly position: PositionView | null;
  /** The strategy's entries resting at the broker (placed by earlier steps, not yet filled or expired). */
  readonly orders: readonly EntryView[];
  /** A uniform number in [0, 1) from a generator seeded by the pair, the strategy and the step: the same on every run. */
  random(): number;

  /** Hold `units` long (default: the configured units); from short, a reversal. */
  buy(options?: ActionOptions): void;
  /** Hold `units` short. */
  sell(options?: ActionOptions): void;
  /** Be flat. */
  close(note?: SignalNote): void;
  /** Hold exactly `units` (signed: > 0 long, < 0 short, 0 flat). */
  target(units: number, options?: Omit<ActionOptions, "units">): void;
  /** Place a resting limit or stop entry that expires (it is this step's one action). */
  enter(options: EntryOptions): void;
  /**
   * Withdraw a resting entry (an id of `ctx.orders`), or every one when no id
   * is given. Not the step's action: a step may cancel and enter anew. An id
   * that no longer rests (filled or expired since) is passed over.
   */
  cancel(id?: string): void;
}

export interface StrategyDefinition<P extends Record<string, unknown> = Record<string, unknown>, S = unknown> {
  /** The kind a pair or a backtest names it by: 1-40 of a-z, 0-9 and -. */
  name: string;
  /** One line: shown by `fxrt strategy list` and the dashboard. */
  description: string;
  /** Parameters: a valibot object schema with defaults; unknown keys are refused. */
  params: v.GenericSchema<Record<string, unknown>, P>;
  watch(params: P): Watch;
  /** Indicators by name, created with the strategy's parameters; fed before each step. */
  indicators?(params: P): Record<string, IndicatorSpec>;
  /** The state before the first step: plain JSON. */
  init(params: P): S;
  /** A candle of a watched timeframe closed: decide, and return the next state (plain JSON). */
  onCandle(ctx: StrategyContext<P>, state: S): S;
  /** A tick, when `watch` asks for ticks: decide as on a candle. Runs after the candles that tick closed. */
  onTick?(ctx: TickContext<P>, state: S): S;
}

/** The entry point of a strategy file: `export default defineStrategy({ ... })`. */
export function defineStrategy<P extends Record<string, unknown>, S>(definition: StrategyDefinition<P, S>): StrategyDefinition<P, S> {
  return definition;
}
